"""Background processes of a lab (agents, API server, probe servers): start, check, stop.

A process is remembered as (pid, marker): it counts as ours only while ``/proc/<pid>/cmdline``
still contains the marker, so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    marker: str

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "marker": self.marker}

    @staticmethod
    def from_json(doc: dict[str, object]) -> Proc:
        return Proc(int(str(doc["pid"])), str(doc["marker"]))


def start(argv: Sequence[str], log: Path, marker: str, netns: str | None = None) -> Proc:
    """Start ``argv`` detached (own session), output appended to ``log``; inside ``netns`` when given."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = list(argv) if netns is None else ["ip", "netns", "exec", netns, *argv]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(proc.pid, marker)


def alive(proc: Proc) -> bool:
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    except OSError:
        return False
    try:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    # An empty cmdline is a process in the middle of execve (``ip netns exec`` becoming its command).
    return state != "Z" and (not cmdline or proc.marker.encode() in cmdline)


def stop(proc: Proc, timeout: float = 5.0) -> None:
    """TERM, then KILL after ``timeout``; a process already gone (or no longer ours) is fine."""
    if not alive(proc):
        reap(proc.pid)
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(proc.pid)
        if not alive(proc):
            return
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        reap(proc.pid)
        if not alive(proc):
            return
        time.sleep(0.02)


def reap(pid: int) -> None:
    """Collect the exit status of a child of ours that ended, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
