"""The agent's HTTP API (FastAPI). Served on a unix socket only root may open.

Threading rule: every handler hands its work to one worker thread (``ThreadPoolExecutor(1)``), so the
CNI service, the registry and the netlink sockets are only ever touched by that thread, and the
event loop stays free to accept the next connection.

``POST /v1/cni``, paid on every pod start, is answered by a plain ASGI middleware in front of
FastAPI (:class:`CniFastPath`): no routing, request object or response class, ~0.1 ms less per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from podnet import __version__
from podnet.agent.service import CniService, env_from_headers
from podnet.errors import UsageError
from podnet.flows.query import FlowQuery
from podnet.flows.store import FlowStore

T = TypeVar("T")


FOLLOW_POLL_S = 0.1
CNI_PATH = "/v1/cni"


class CniFastPath:
    """ASGI middleware: ``POST /v1/cni`` straight to the CNI service on the worker; the rest to ``app``.

    The plugin sends the ``CNI_*`` variables as UTF-8 headers (:mod:`podnet.cni.shim`); they are
    decoded the same way here.
    """

    def __init__(self, app: ASGIApp, service: CniService, worker: ThreadPoolExecutor) -> None:
        self.app = app
        self.service = service
        self.worker = worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CNI_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1"): v.decode("utf-8", "surrogateescape") for k, v in scope["headers"]}
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self.worker, self.service.call, env_from_headers(headers), b"".join(chunks))
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": head})
        await send({"type": "http.response.body", "body": answer.body})


def create_app(service: CniService, flows: FlowStore | None = None) -> FastAPI:
    app = FastAPI(title="podnet agent", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podnet-worker")

    async def on_worker(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    app.add_middleware(CniFastPath, service=service, worker=worker)  # serves POST /v1/cni

    @app.get("/v1/endpoints")
    async def endpoints() -> JSONResponse:
        return JSONResponse(await on_worker(service.endpoints))

    @app.get("/v1/status")
    async def status() -> JSONResponse:
        return JSONResponse(await on_worker(service.status))

    @app.get("/v1/flows")
    async def get_flows(request: Request) -> Response:
        """Flows as JSON lines (GetFlowsResponse form): ``last``, ``since``, ``follow`` and filters.

        Reads only the store (it has its own lock), so it runs on the event loop, not the worker.
        """
        if flows is None:
            return JSONResponse({"error": "this agent keeps no flows (no policy datapath)"}, status_code=404)
        try:
            query = FlowQuery.from_params(request.query_params.multi_items())
        except UsageError as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        found, seq = flows.query(query.predicate, since_ns=query.since_ns, last=query.last)
        head = "".join(query.line(f) for f in found)
        if not query.follow:
            return Response(head, media_type="application/x-ndjson")

        async def stream() -> AsyncIterator[str]:
            yield head
            after = seq
            # Ends when the client goes or the server stops (uvicorn waits for open responses on shutdown).
            while not app.state.stopping() and not await request.is_disconnected():
                await asyncio.sleep(FOLLOW_POLL_S)
                more, after = flows.query(query.predicate, since_ns=query.since_ns, after_seq=after)
                if more:
                    yield "".join(query.line(f) for f in more)

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    app.state.worker = worker
    app.state.stopping = lambda: False  # the server sets the real test (uvicorn's should_exit)
    return app
