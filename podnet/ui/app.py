"""The UI's FastAPI app: the policy editor's JSON API under ``/api``, the flow routes of :mod:`podnet.ui.flows`
and the built front end at ``/``.

Every answer comes from the real analyzer (:mod:`podnet.ui.analysis`); the lab is reached through
:class:`podnet.ui.lab.LabLink`. Errors are JSON ``{"error": ..., "problems": [...]}`` with status 400
(bad input) or 502 (the lab's API server failed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from podnet.analyzer.verdict import protocol_of
from podnet.errors import ManifestError, PodnetError
from podnet.flows.source import FlowSource, make_source
from podnet.kube.client import ClusterError
from podnet.ui import templates
from podnet.ui.analysis import ManifestFile, analyze, explain
from podnet.ui.flows import flows_router
from podnet.ui.lab import LabLink
from podnet.ui.problems import parse_problem

STATIC_DIR = Path(__file__).parent / "static"
NOT_BUILT = """<!doctype html><html><head><title>podnet ui</title></head><body>
<h1>podnet ui: the front end is not built</h1>
<p>Run <code>make setup</code> in the podnet checkout (it runs <code>npm ci</code> and the build in <code>ui/</code>),
then reload. The JSON API under <code>/api</code> works without it.</p></body></html>"""


class FileIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=2_000_000)


class FilesIn(BaseModel):
    files: list[FileIn] = Field(max_length=50)

    def manifest_files(self) -> list[ManifestFile]:
        return [ManifestFile(f.name, f.text) for f in self.files]


class ApplyIn(FilesIn):
    policies_only: bool = False


class ExplainIn(FilesIn):
    src: str = Field(alias="from", min_length=1)
    dst: str = Field(alias="to", min_length=1)
    protocol: str | None = None
    port: int | str | None = None


def _error(exc: PodnetError, status: int) -> JSONResponse:
    problems = exc.problems if isinstance(exc, ManifestError) else []
    body = {"error": exc.message, "problems": [parse_problem(p).to_json() for p in problems]}
    return JSONResponse(body, status_code=status)


def api_router(lab: LabLink) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @router.post("/analyze")
    def post_analyze(body: FilesIn) -> dict[str, Any]:
        return analyze(body.manifest_files())

    @router.post("/explain")
    def post_explain(body: ExplainIn) -> dict[str, Any]:
        proto = protocol_of(body.protocol) if body.protocol else None
        port = body.port
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        return explain(body.manifest_files(), body.src, body.dst, proto, port if port != "" else None)

    @router.get("/templates")
    def get_templates(namespace: str = "default", ingress_namespace: str = "ingress-nginx") -> list[dict[str, str]]:
        return templates.catalogue(namespace, ingress_namespace)

    @router.get("/lab")
    def get_lab() -> dict[str, Any]:
        return lab.status()

    @router.get("/lab/objects")
    def get_lab_objects() -> dict[str, Any]:
        return {"files": [{"name": f.name, "text": f.text} for f in lab.load()]}

    @router.post("/lab/apply")
    def post_lab_apply(body: ApplyIn) -> dict[str, Any]:
        return {"applied": lab.apply(body.manifest_files(), body.policies_only)}

    return router


def create_app(
    lab: LabLink | None = None,
    static_dir: Path = STATIC_DIR,
    flows: FlowSource | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> FastAPI:
    """The UI app. ``lab`` defaults to the only running lab, ``flows`` to that lab's agents
    (:mod:`podnet.ui.flows`); ``static_dir`` holds the built front end; ``stopping()`` true ends open streams."""
    app = FastAPI(title="podnet ui", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)

    @app.exception_handler(ClusterError)
    def on_cluster_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ClusterError)
        return _error(exc, 502)

    @app.exception_handler(PodnetError)
    def on_podnet_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PodnetError)
        return _error(exc, 400)

    lab = lab or LabLink()
    app.include_router(api_router(lab))
    app.include_router(flows_router(flows or make_source(lab=lab.lab_name), stopping))
    index = static_dir / "index.html"
    if (static_dir / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=static_dir / "assets"), name="assets")

    @app.get("/", response_model=None)
    def root() -> FileResponse | HTMLResponse:
        if index.is_file():
            return FileResponse(index)
        return HTMLResponse(NOT_BUILT, status_code=503)

    return app
