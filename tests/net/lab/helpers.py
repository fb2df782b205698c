"""Driving a real lab from tests: the podnet CLI as a user runs it, and waiting for the lab to converge."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podnet.lab import manager

ROOT = Path(__file__).resolve().parents[3]


def podnet(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def pods(lab: manager.Lab) -> list[dict[str, Any]]:
    out = podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def wait_for(pred: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
