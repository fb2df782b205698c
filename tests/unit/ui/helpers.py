"""Serving an ASGI app for real (uvicorn in a thread, on loopback TCP or a unix socket) and reading SSE."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn


@contextmanager
def serve(app: Any, uds: str | None = None) -> Iterator[tuple[str, uvicorn.Server]]:
    """Yields (base URL, server); the URL is http://127.0.0.1:PORT, or http://agent for a unix socket."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, uds=uds, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.01)
    url = "http://agent" if uds is not None else f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield url, server
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "uvicorn did not stop"


@dataclass(frozen=True)
class Event:
    event: str
    data: Any


def events(response: httpx.Response) -> Iterator[Event]:
    """Server-sent events of a streaming response (comments skipped)."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield Event(name, json.loads(data))
            name, data = "message", ""
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
