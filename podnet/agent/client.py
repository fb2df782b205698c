"""A small client of the agent's API for the CLI (http.client over the unix socket)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

from podnet.errors import TryAgainLater


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def get_json(socket_path: str, path: str, timeout: float = 10.0) -> Any:
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        raise TryAgainLater(f"podnet agent at {socket_path} is not reachable: {exc}") from exc
    finally:
        conn.close()
    if response.status != 200:
        raise TryAgainLater(f"podnet agent answered HTTP {response.status} for {path}")
    return json.loads(body)


def stream_lines(socket_path: str, path: str, timeout: float | None = 10.0) -> Iterator[str]:
    """GET ``path`` and yield the answer's lines as they arrive (``timeout`` None: wait forever)."""
    conn = _UnixConnection(socket_path, timeout if timeout is not None else 0.0)
    if timeout is None:
        conn.timeout = None
    try:
        try:
            conn.request("GET", path)
            response = conn.getresponse()
        except OSError as exc:
            raise TryAgainLater(f"podnet agent at {socket_path} is not reachable: {exc}") from exc
        if response.status != 200:
            detail = response.read().decode(errors="replace").strip()
            raise TryAgainLater(f"podnet agent at {socket_path} answered HTTP {response.status}: {detail}")
        while True:
            line = response.readline()
            if not line:
                return
            yield line.decode()
    finally:
        conn.close()
