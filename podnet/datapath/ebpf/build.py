"""Compile the tc programs with clang into a cache directory, once per source and compiler version.

The object is never committed: it is built at install or first use (``podnet`` calls
:func:`ensure_object`), named by a digest of the sources and the compiler's version, and written
atomically so two processes compiling at once both end with a whole file.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from podnet.errors import PodnetError

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("podnet.bpf.c", "podnet.h")
CLANGS = ("clang", "clang-14")


class BuildError(PodnetError):
    """The eBPF object could not be compiled."""

    cni_code = 111


def cache_dir() -> Path:
    env = os.environ.get("PODNET_CACHE_DIR")
    if env:
        return Path(env) / "ebpf"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "podnet" / "ebpf"


def find_clang() -> str:
    for name in CLANGS:
        found = shutil.which(name)
        if found:
            return found
    raise BuildError("clang not found: install Debian's clang (scripts/debian-packages.txt)")


def _multiarch_include() -> list[str]:
    arch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    inc = Path("/usr/include") / str(arch)
    return [f"-I{inc}"] if inc.is_dir() else []


def ensure_object(out_dir: Path | None = None) -> Path:
    """The path of the compiled object, compiling it first when the cache lacks it."""
    clang = find_clang()
    version = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False).stdout
    digest = hashlib.sha256(version.encode())
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    target_dir = out_dir or cache_dir()
    target = target_dir / f"podnet-{digest.hexdigest()[:16]}.o"
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".podnet-", suffix=".o", dir=target_dir)
    os.close(fd)
    cmd = [clang, "-target", "bpf", "-O2", "-g", "-Wall", "-Werror", *_multiarch_include()]
    cmd += ["-c", str(SOURCE_DIR / "podnet.bpf.c"), "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise BuildError(f"compiling {SOURCE_DIR / 'podnet.bpf.c'} failed", proc.stderr)
    os.replace(tmp, target)
    return target
