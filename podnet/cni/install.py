"""``podnet install-cni``: write the plugin executable and a conflist.

The executable is one self-contained file behind a shebang naming the real interpreter with ``-IS``
(isolated, no site). The pyenv shim is never used: it costs ~40 ms a start. It carries the stdlib-only
:mod:`podnet.cni.shim` precompiled: Python never caches the bytecode of the script it runs, and
compiling the shim's source cost ~2 ms of every CNI call (more on a busy machine), where
``marshal.loads`` of the installed code object takes ~0.01 ms. The code object is tied to the bytecode
format of the installing interpreter, so the file checks the running interpreter's magic number and,
should it differ (another ``--interpreter``, an upgraded Python), compiles the shim's source, which it
carries as well.
Both files are written to a temporary name and renamed, so a runtime never execs half a file.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import podnet
from podnet.errors import UsageError

PLUGIN_NAME = "podnet"
CHAINABLE: dict[str, dict[str, Any]] = {
    "portmap": {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
    "bandwidth": {"type": "bandwidth", "capabilities": {"bandwidth": True}},
    "tuning": {"type": "tuning"},
}


def real_interpreter() -> str:
    """The interpreter binary itself, resolving venv links and refusing version-manager shims."""
    candidate = getattr(sys, "_base_executable", "") or sys.executable
    path = os.path.realpath(candidate)
    if "/shims/" in path or not os.access(path, os.X_OK):
        raise UsageError(f"cannot find the real Python interpreter (got {path})")
    return path


def build_executable(interpreter: str) -> bytes:
    """The plugin file: shebang line, the shim precompiled, and its source as the fallback (see above).

    The shim imports nothing outside the stdlib; the lines around it use only ``sys`` and ``marshal``,
    which the interpreter has loaded before it runs a script.
    """
    path = Path(podnet.__file__).parent / "cni" / "shim.py"
    source = path.read_text(encoding="utf-8")
    code = marshal.dumps(compile(source, str(path), "exec", optimize=2))
    return (
        f"#!{interpreter} -IS\n"
        "# podnet CNI plugin, written by `podnet install-cni` from podnet/cni/shim.py (precompiled).\n"
        "import sys, marshal\n"
        f"if sys.modules['_frozen_importlib_external'].MAGIC_NUMBER == {importlib.util.MAGIC_NUMBER!r}:\n"
        f"    exec(marshal.loads({code!r}))\n"
        "else:\n"
        f"    exec(compile({source!r}, __file__, 'exec'))\n"
    ).encode()


def conflist(
    name: str, socket_path: str, cni_version: str, mtu: int | None, log_file: str | None, chain: Sequence[str]
) -> dict[str, Any]:
    plugin: dict[str, Any] = {"type": PLUGIN_NAME, "agentSocket": socket_path}
    if mtu is not None:
        plugin["mtu"] = mtu
    if log_file:
        plugin["logFile"] = log_file
    plugins = [plugin]
    for extra in chain:
        if extra not in CHAINABLE:
            raise UsageError(f"--chain {extra!r}: podnet chains {', '.join(sorted(CHAINABLE))}")
        plugins.append(dict(CHAINABLE[extra]))
    return {"cniVersion": cni_version, "name": name, "plugins": plugins}


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def install(
    bin_dir: Path,
    conf_dir: Path,
    *,
    name: str = "podnet",
    socket_path: str = "/run/podnet/agent.sock",
    cni_version: str = "1.0.0",
    mtu: int | None = None,
    log_file: str | None = None,
    chain: Sequence[str] = (),
    interpreter: str | None = None,
) -> tuple[Path, Path]:
    """Install the plugin and ``<conf_dir>/10-<name>.conflist``; return both paths."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    conf_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / PLUGIN_NAME
    _atomic_write(exe, build_executable(interpreter or real_interpreter()), 0o755)
    conf = conf_dir / f"10-{name}.conflist"
    doc = conflist(name, socket_path, cni_version, mtu, log_file, chain)
    _atomic_write(conf, (json.dumps(doc, indent=2) + "\n").encode(), 0o644)
    return exe, conf
