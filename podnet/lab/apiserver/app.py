"""The lab API server over HTTP: FastAPI routes one catch-all path to :class:`~podnet.lab.apiserver.api.Api`.

FastAPI/uvicorn (the stack the agent already uses) because watches are long-lived streams: each is an async
generator on the one event loop, woken by the store's commit listener, so hundreds of watchers cost no
threads, and every request sees the store from the same thread. Listening is on loopback only; when a
token is configured every request must carry it (``Authorization: Bearer``), so other local users cannot
steer the lab's root agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
import yaml
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from podnet.datapath.netns import entered
from podnet.errors import PodnetError, UsageError
from podnet.lab.apiserver import status as st
from podnet.lab.apiserver.api import Api, Reply, Watcher
from podnet.lab.apiserver.kubeconfig import ensure_certificate, ensure_token, write_kubeconfig
from podnet.lab.apiserver.store import Event, Store

DB_FILE = "apiserver.db"
TOKEN_FILE = "token"
CERT_FILE = "apiserver.crt"
KEY_FILE = "apiserver.key"
KUBECONFIG_FILE = "kubeconfig"
WAKE_SECONDS = 1.0
BOOKMARK_SECONDS = 30.0


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class Hub:
    """Wakes waiting watch streams after every commit. Thread-safe: a write from another thread is
    handed to the event loop."""

    def __init__(self, store: Store) -> None:
        self._waiters: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        store.subscribe(self._on_event)

    def register(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        ev = asyncio.Event()
        self._waiters.add(ev)
        return ev

    def unregister(self, ev: asyncio.Event) -> None:
        self._waiters.discard(ev)

    def _wake(self) -> None:
        for ev in list(self._waiters):
            ev.set()

    def _on_event(self, event: Event) -> None:
        if self._loop is None:
            return
        if threading.get_ident() == self._thread:
            self._wake()
        else:
            self._loop.call_soon_threadsafe(self._wake)


@dataclass
class Options:
    token: str | None = None
    bookmark_seconds: float = BOOKMARK_SECONDS
    closing: Callable[[], bool] = lambda: False


def create_app(api: Api, options: Options | None = None) -> FastAPI:
    opts = options or Options()
    hub = Hub(api.store)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    async def stream(watcher: Watcher, first: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        timeout = watcher.plan.timeout_seconds
        deadline = loop.time() + timeout if timeout is not None else None
        next_bookmark = loop.time() + opts.bookmark_seconds
        wake = hub.register()
        try:
            for event in first:
                yield _line(event)
            while not watcher.done and not opts.closing():
                wake.clear()
                batch = watcher.poll()
                if batch:
                    yield b"".join(_line(e) for e in batch)
                    continue
                now = loop.time()
                if deadline is not None and now >= deadline:
                    return
                if watcher.plan.bookmarks and now >= next_bookmark:
                    next_bookmark = now + opts.bookmark_seconds
                    yield _line(watcher.bookmark())
                wait = WAKE_SECONDS
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if watcher.plan.bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.0))
        finally:
            hub.unregister(wake)

    async def handle(request: Request) -> Response:
        if opts.token is not None:
            auth = request.headers.get("authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {opts.token}".encode()):
                body = st.failure(401, "Unauthorized", "Unauthorized")
                return Response(json.dumps(body), status_code=401, media_type="application/json")
        result = api.handle(
            request.method,
            request.url.path,
            dict(request.query_params),
            await request.body(),
            request.headers.get("content-type", "application/json"),
            request.headers.get("accept", "application/json"),
        )
        if isinstance(result, Reply):
            if isinstance(result.body, str):
                return PlainTextResponse(result.body, status_code=result.code)
            return Response(json.dumps(result.body), status_code=result.code, media_type="application/json")
        watcher = api.watcher(result)
        first = watcher.poll()
        return StreamingResponse(stream(watcher, first), media_type="application/json")

    app.add_api_route(
        "/{path:path}", handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on a loopback address; anything else is refused."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--host {host!r}: must be a loopback IP address") from None
    if not addr.is_loopback:
        raise UsageError(f"--host {host}: the lab API server listens on loopback addresses only")
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it
    # every response waits ~40 ms for a delayed ACK.
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise PodnetError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


def _previous_port(kubeconfig: Path, host: str) -> int:
    """The port of the last run (from its kubeconfig) if it is free again, so clients keep working; else 0."""
    try:
        config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        port = int(urlsplit(config["clusters"][0]["cluster"]["server"]).port or 0)
    except (OSError, ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return 0
    try:
        probe = bind(host, port)
    except PodnetError:
        return 0
    probe.close()
    return port


def server_url(sock: socket.socket, tls: bool = True) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def serve(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    auth: bool = True,
    event_log_size: int = 10000,
    name: str = "podnet-lab",
    announce: Callable[[str, Path], None] | None = None,
    also_in_netns: Sequence[str] = (),
) -> None:
    """Run the API server until SIGINT/SIGTERM: SQLite under ``state_dir``, kubeconfig written once listening.

    With ``auth`` (the default) it serves HTTPS with a self-signed certificate and requires the static token
    of ``state_dir/token``; both go into the kubeconfig. Without, plain HTTP and no token.
    ``also_in_netns``: network namespaces (paths) where it listens too, on the same address and port,
    so processes there (a lab node's agent) reach it with the same kubeconfig.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = ensure_token(state_dir / TOKEN_FILE) if auth else None
    cert, key = state_dir / CERT_FILE, state_dir / KEY_FILE
    if auth:
        ensure_certificate(cert, key)
    sock = bind(host, port or _previous_port(state_dir / KUBECONFIG_FILE, host))
    extra: list[socket.socket] = []
    for path in also_in_netns:
        with entered(path):
            extra.append(bind(host, sock.getsockname()[1]))
    store = Store(state_dir / DB_FILE, event_log_size)
    api = Api(store)
    url = server_url(sock, tls=auth)
    ca_pem = cert.read_bytes() if auth else None
    kubeconfig = write_kubeconfig(state_dir / KUBECONFIG_FILE, url, token, ca_pem, name)
    servers: list[uvicorn.Server] = []
    app = create_app(api, Options(token=token, closing=lambda: any(s.should_exit for s in servers)))
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        ssl_certfile=str(cert) if auth else None,
        ssl_keyfile=str(key) if auth else None,
    )
    server = uvicorn.Server(config)
    servers.append(server)
    if announce is not None:
        announce(url, kubeconfig)
    else:
        print(f"podnet lab apiserver listening on {url}; kubeconfig {kubeconfig}", flush=True)
    try:
        server.run(sockets=[sock, *extra])
    finally:
        store.close()
        sock.close()
        for other in extra:
            other.close()
        sys.stdout.flush()
