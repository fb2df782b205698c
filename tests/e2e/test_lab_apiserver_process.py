"""The lab API server as a lab's background process: start once, find it, stop it, recover after a crash."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from kubernetes import client

from podnet.kube.client import api_client
from podnet.lab.apiserver import process


def test_start_is_idempotent_and_stop_is_safe_to_repeat(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    first = process.start(state)
    try:
        assert first.url.startswith("https://127.0.0.1:")
        v1 = client.CoreV1Api(api_client(first.kubeconfig))
        assert [n.metadata.name for n in v1.list_namespace().items] == ["default"]
        again = process.start(state)
        assert again.pid == first.pid and again.url == first.url
        found = process.running(state)
        assert found is not None and found.pid == first.pid
    finally:
        assert process.stop(state) is True
    assert process.running(state) is None
    assert process.stop(state) is False
    assert not (state / process.PID_FILE).exists()


def test_a_crashed_server_is_not_mistaken_for_a_running_one(tmp_path: Path) -> None:
    state = tmp_path / "lab"
    first = process.start(state)
    os.kill(first.pid, signal.SIGKILL)
    for _ in range(100):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(first.pid, os.WNOHANG)  # reap our child so it stops existing
        if process.running(state) is None:
            break
        time.sleep(0.05)
    assert process.running(state) is None
    (state / process.PID_FILE).write_text(f"{os.getpid()}\n")  # a pid that is not an API server of this lab
    assert process.running(state) is None
    second = process.start(state)
    try:
        assert second.pid != first.pid and second.url == first.url  # same port again
        v1 = client.CoreV1Api(api_client(second.kubeconfig))
        assert v1.read_namespace("default").status.phase == "Active"
    finally:
        process.stop(state)
