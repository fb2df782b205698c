"""The lab API server as a background process of a lab: start (idempotent), find, stop (also after a crash).

``state_dir/apiserver.pid`` names the process; like every lab process (``podnet.lab.procs``) it counts as ours
only while ``/proc/<pid>/cmdline`` holds its marker, here ``apiserver --state-dir DIR`` for this state
directory, so a stale pid file after a crash or a reused pid never leads to signalling someone else's
process. Output goes to ``state_dir/apiserver.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from podnet.errors import PodnetError
from podnet.lab import procs
from podnet.lab.apiserver.app import KUBECONFIG_FILE

PID_FILE = "apiserver.pid"
LOG_FILE = "apiserver.log"
READY_MARK = "listening on "


@dataclass(frozen=True, slots=True)
class ApiServerProcess:
    pid: int
    url: str
    kubeconfig: Path


def _proc(pid: int, state_dir: Path) -> procs.Proc:
    return procs.Proc(pid, f"\0apiserver\0--state-dir\0{state_dir.resolve()}\0")


def _url(state_dir: Path) -> str:
    for line in reversed((state_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()):
        if READY_MARK in line:
            return line.split(READY_MARK, 1)[1].split(";", 1)[0].strip()
    return ""


def running(state_dir: Path) -> ApiServerProcess | None:
    """The API server process of ``state_dir`` if it is alive."""
    try:
        pid = int((state_dir / PID_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    if not _ours(_proc(pid, state_dir)):
        return None
    return ApiServerProcess(pid, _url(state_dir), state_dir / KUBECONFIG_FILE)


def start(
    state_dir: Path,
    port: int = 0,
    event_log_size: int = 10000,
    timeout: float = 20.0,
    extra_args: tuple[str, ...] = (),
) -> ApiServerProcess:
    """Start the API server in the background (or return the one already running) once it listens.

    ``extra_args`` are more ``podnet lab apiserver`` options (``--host``, ``--name``, ``--no-auth``)."""
    existing = running(state_dir)
    if existing is not None:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = state_dir / LOG_FILE
    cmd = [
        sys.executable, "-m", "podnet.cli.main", "lab", "apiserver", "--state-dir", str(state_dir.resolve()),
        "--port", str(port), "--event-log-size", str(event_log_size), *extra_args,
    ]  # fmt: skip
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    (state_dir / PID_FILE).write_text(f"{proc.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (state_dir / PID_FILE).unlink(missing_ok=True)
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise PodnetError(f"the lab API server exited with status {proc.returncode}: {' | '.join(tail)}")
        url = _url(state_dir)
        if url:
            return ApiServerProcess(proc.pid, url, state_dir / KUBECONFIG_FILE)
        time.sleep(0.05)
    stop(state_dir)
    raise PodnetError(f"the lab API server did not start within {timeout:.0f} s (log: {log_path})")


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the API server of ``state_dir``; True if one was running. Safe to repeat."""
    found = running(state_dir)
    if found is not None:
        procs.stop(_proc(found.pid, state_dir), timeout)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    return found is not None


def _ours(proc: procs.Proc) -> bool:
    # Started directly (never through ``ip netns exec``), so an empty cmdline is not ours.
    try:
        return procs.alive(proc) and Path(f"/proc/{proc.pid}/cmdline").read_bytes() != b""
    except OSError:
        return False
