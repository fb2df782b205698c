"""The agent's HTTP API (FastAPI). Served on a unix socket only root may open.

Threading rule: every handler hands its work to one worker thread (``ThreadPoolExecutor(1)``), so the
CNI service, the registry and the netlink sockets are only ever touched by that thread, and the
event loop stays free to accept the next connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from podnet import __version__
from podnet.agent.service import CniService, env_from_headers

T = TypeVar("T")


def create_app(service: CniService) -> FastAPI:
    app = FastAPI(title="podnet agent", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podnet-worker")

    async def on_worker(fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    @app.post("/v1/cni")
    async def cni(request: Request) -> Response:
        body = await request.body()
        answer = await on_worker(service.call, env_from_headers(request.headers), body)
        return Response(answer.body, status_code=answer.status, media_type="application/json")

    @app.get("/v1/endpoints")
    async def endpoints() -> JSONResponse:
        return JSONResponse(await on_worker(service.endpoints))

    @app.get("/v1/status")
    async def status() -> JSONResponse:
        return JSONResponse(await on_worker(service.status))

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    app.state.worker = worker
    return app
