"""The web UI's flow routes: flows, a live flow stream, the service map, and policy suggestions.

``flows_router(source)`` returns a FastAPI ``APIRouter``; the UI app includes it. ``source`` is a
:class:`~podnet.flows.source.FlowSource` (a lab, agent sockets or a flows file; see
:func:`podnet.flows.source.make_source`), so tests can hand in a file of flows or a real lab::

    source = make_source(lab=args.name, sockets=args.socket or (), file=args.flows_file)
    app.include_router(flows_router(source, stopping=lambda: server.should_exit))

``stopping`` lets open event streams end when the server shuts down (uvicorn waits for open responses).
Blocking reads of the source run on worker threads, never on the event loop.

JSON contract
=============

Query parameters of every GET (all optional), as ``podnet observe`` and the agent's ``/v1/flows`` take them:
``last=N``, ``since=T`` (RFC 3339 or a duration ago: ``30s``, ``5m``), and the filters ``verdict``, ``namespace``,
``pod``, ``from-pod``, ``to-pod``, ``ip``, ``label``, ``protocol``, ``port``, ``type``, each repeatable (values of
one name are OR'ed, names AND'ed) and negated as ``not-<name>``. The filter code is :mod:`podnet.flows.filters`.

A **flow** object is Hubble's flow JSON, as ``podnet observe -o json`` writes it inside ``{"flow": …}``:
``time``, ``verdict`` (FORWARDED, DROPPED, AUDIT), ``IP`` {``source``, ``destination``, ``ipVersion``}, ``l4``
{``TCP``|``UDP``|``SCTP``: {``source_port``, ``destination_port``, ``flags``}}, ``source`` / ``destination``
{``identity``, ``namespace``, ``pod_name``, ``labels``, ``workloads``}, ``node_name``, ``traffic_direction``,
``event_type`` {``type``: 5 policy verdict, 1 drop}, ``drop_reason_desc``, ``Summary``, ``is_reply``, ``count``,
and podnet's ``allowed_by`` / ``denied_by``: [{``kind``, ``namespace``, ``name``, ``direction``, ``rule``,
``isolated_by``}] — the policy rule that decided (``kind`` "isolation": the default deny of the isolating
policies named in ``isolated_by``).

``GET /api/flows`` → ``{"source": str, "count": int, "flows": [flow, …]}``, oldest first. Without ``last`` or
``since``: the newest 20 (as ``podnet observe``).

``GET /api/flows/stream`` → ``text/event-stream``. Events: ``flow`` (data: a flow object) for each matching
flow, first the history the query asks for (none without ``last``/``since``; from a lab, each node's history
comes before its new flows, not merged across nodes), then new flows as they happen; ``end`` (data:
``{"reason": str}``) when the source stops (the agents stopped); ``error`` (data: ``{"error": str}``) when
reading broke. Comment lines (``: keep-alive``) come every 15 s of quiet.

``GET /api/servicemap`` → ``{"source": str, "flows": int, "nodes": [node, …], "edges": [edge, …]}`` over every
matching flow the source holds (or ``last``/``since``). See :mod:`podnet.flows.servicemap`:

- node: ``{"id", "kind": "namespace"|"workload"|"world"|"host"|"unknown", "name", "namespace"?, "parent"?
  (a workload's ``namespace:<ns>`` node), "pods"?, "labels"?, "addresses"?}``; workload ids are ``ns/workload``.
- edge: ``{"id": "<src>-><dst>:<PROTO>/<port>", "source", "target", "protocol", "port", "verdict":
  "FORWARDED"|"DROPPED"|"AUDIT"|"MIXED", "flows", "verdicts": {"FORWARDED": n, "DROPPED": n, "AUDIT": n},
  "drop_reasons": {reason: packets}, "allowed_by" / "denied_by": [{"rule": {…as in flows}, "text", "flows"}],
  "first_seen", "last_seen"}``.

``GET /api/servicemap/stream`` → ``text/event-stream``: one ``snapshot`` event (data: the service map over the
history the query asks for, by default everything the source holds), then one ``update`` event per new matching
flow (data: ``{"nodes": [nodes that appeared], "edge": edge (its new totals), "edge_new": bool}``); ``end`` and
``error`` as above.

``POST /api/suggest`` with ``{"flows": [flow or {"flow": flow}, …], "namespace"?: str, "include_audit"?: bool,
"cidr_prefix"?: 0-32, "cidr_prefix_v6"?: 0-128}`` → ``{"yaml": str (multi-document), "policies": [NetworkPolicy
objects], "notes": [str], "warnings": [str], "check": {"ok", "summary", "observed", "observed_allowed",
"unobserved", "unobserved_denied", "missing": [str], "broader": [str]}}``, as ``podnet policy suggest``.

Errors: ``{"error": str}`` with HTTP 400 for a bad parameter or body (naming it), 502 when the source cannot be
read (no lab running, an agent unreachable).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from podnet.analyzer.suggest import suggest
from podnet.analyzer.suggest_check import check, to_yaml
from podnet.errors import ManifestError, PodnetError, UsageError
from podnet.flows.model import Flow
from podnet.flows.query import FlowQuery
from podnet.flows.servicemap import ServiceMap
from podnet.flows.source import FlowSource, Follower, SourceEnded

DEFAULT_LAST = 20
POLL_S = 0.5
KEEPALIVE_S = 15.0
HEAD_QUIET_S = 0.3  # servicemap stream: the history is in when the source is quiet this long
HEAD_MAX_S = 3.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _error(exc: PodnetError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=400 if isinstance(exc, UsageError) else 502)


def _query(request: Request, default_last: int | None, follow: bool = False) -> FlowQuery:
    pairs = request.query_params.multi_items()
    query = FlowQuery.from_params(pairs)
    last = query.last
    if last is None and query.since_ns is None:
        last = default_last
    return FlowQuery.make(query.terms, last, query.since_ns, follow)


def sse(event: str, data: Any) -> str:
    """One server-sent event; ``data`` as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _flow_from_body(item: object, index: int) -> Flow:
    if not isinstance(item, dict):
        raise UsageError(f"flows[{index}]: must be a flow object")
    doc = item.get("flow", item)
    if not isinstance(doc, dict):
        raise UsageError(f"flows[{index}].flow: must be a flow object")
    try:
        return Flow.from_json(doc)
    except KeyError as exc:
        raise UsageError(f"flows[{index}]: missing field {exc.args[0]!r}") from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"flows[{index}]: not a flow: {exc}") from exc


def suggest_answer(body: object) -> dict[str, Any]:
    """The answer of ``POST /api/suggest`` for a decoded JSON body (raises UsageError naming the bad field)."""
    if not isinstance(body, dict):
        raise UsageError("body: must be a JSON object with a flows list")
    unknown = sorted(set(body) - {"flows", "namespace", "include_audit", "cidr_prefix", "cidr_prefix_v6"})
    if unknown:
        raise UsageError(f"{unknown[0]}: unknown field")
    raw = body.get("flows")
    if not isinstance(raw, list):
        raise UsageError("flows: must be a list of flows")
    flows = [_flow_from_body(item, i) for i, item in enumerate(raw)]
    namespace = body.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise UsageError("namespace: must be a non-empty string")
    include_audit = body.get("include_audit", False)
    if not isinstance(include_audit, bool):
        raise UsageError("include_audit: must be true or false")
    prefix: list[int] = []
    for name, top, default in (("cidr_prefix", 32, 32), ("cidr_prefix_v6", 128, 128)):
        value = body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise UsageError(f"{name}: must be a number from 0 to {top}")
        prefix.append(value)
    result = suggest(flows, namespace, include_audit, (prefix[0], prefix[1]))
    try:
        report = check(result, namespace, (prefix[0], prefix[1]))
    except ManifestError as exc:  # the suggestion failed validation: a bug, reported as such
        raise PodnetError(f"the suggested policies do not validate: {exc.message}") from exc
    return {
        "yaml": to_yaml(result.policies),
        "policies": result.policies,
        "notes": result.notes,
        "warnings": result.warnings,
        "check": {
            "ok": report.ok,
            "summary": report.summary(),
            "observed": report.observed,
            "observed_allowed": report.observed_allowed,
            "unobserved": report.unobserved,
            "unobserved_denied": report.unobserved_denied,
            "missing": report.missing,
            "broader": report.broader,
        },
    }


def flows_router(source: FlowSource, stopping: Callable[[], bool] = lambda: False) -> APIRouter:
    """The routes over ``source``; ``stopping()`` true ends open streams (the server is shutting down)."""
    router = APIRouter()

    @router.get("/api/flows")
    async def get_flows(request: Request) -> Response:
        try:
            query = _query(request, DEFAULT_LAST)
            flows = await run_in_threadpool(source.history, query)
        except PodnetError as exc:
            return _error(exc)
        return JSONResponse({"source": source.describe(), "count": len(flows), "flows": [f.to_json() for f in flows]})

    @router.get("/api/servicemap")
    async def get_servicemap(request: Request) -> Response:
        try:
            query = _query(request, None)
            flows = await run_in_threadpool(source.history, query)
        except PodnetError as exc:
            return _error(exc)
        return JSONResponse({"source": source.describe(), **ServiceMap(flows).to_json()})

    async def events(
        request: Request, follower: Follower, on_flows: Callable[[list[Flow]], list[str]]
    ) -> AsyncIterator[str]:
        """Polls the follower (on a worker thread) until the client goes, the source ends or the server stops."""
        try:
            yield ": podnet flows\n\n"
            quiet_since = time.monotonic()
            while not stopping():
                if await request.is_disconnected():
                    return
                try:
                    flows = await run_in_threadpool(follower.poll, POLL_S)
                except SourceEnded as exc:
                    yield sse("end", {"reason": exc.message})
                    return
                except PodnetError as exc:
                    yield sse("error", {"error": exc.message})
                    return
                chunks = on_flows(flows) if flows else []
                if chunks:
                    yield "".join(chunks)
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
        finally:
            follower.close()

    async def start(query: FlowQuery) -> Follower | Response:
        try:
            follower: Follower = await run_in_threadpool(source.follow, query)
        except PodnetError as exc:
            return _error(exc)
        return follower

    @router.get("/api/flows/stream")
    async def stream_flows(request: Request) -> Response:
        try:
            query = _query(request, 0, follow=True)
        except PodnetError as exc:
            return _error(exc)
        follower = await start(query)
        if isinstance(follower, Response):
            return follower

        def render(flows: list[Flow]) -> list[str]:
            return [sse("flow", f.to_json()) for f in flows]

        return StreamingResponse(
            events(request, follower, render),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
            background=BackgroundTask(follower.close),
        )

    @router.get("/api/servicemap/stream")
    async def stream_servicemap(request: Request) -> Response:
        try:
            query = _query(request, None, follow=True)
        except PodnetError as exc:
            return _error(exc)
        follower = await start(query)
        if isinstance(follower, Response):
            return follower
        smap = ServiceMap()
        try:
            deadline = time.monotonic() + HEAD_MAX_S
            while time.monotonic() < deadline:
                head = await run_in_threadpool(follower.poll, HEAD_QUIET_S)
                if not head:
                    break
                for f in head:
                    smap.add(f)
        except SourceEnded:
            pass  # the snapshot still goes out; the stream then says the source ended
        except PodnetError as exc:
            follower.close()
            return _error(exc)
        snapshot = sse("snapshot", {"source": source.describe(), **smap.to_json()})

        def render(flows: list[Flow]) -> list[str]:
            return [sse("update", smap.add(f).to_json()) for f in flows]

        async def body() -> AsyncIterator[str]:
            try:
                yield snapshot
                async for chunk in events(request, follower, render):
                    yield chunk
            finally:
                follower.close()

        return StreamingResponse(
            body(), media_type="text/event-stream", headers=SSE_HEADERS, background=BackgroundTask(follower.close)
        )

    @router.post("/api/suggest")
    async def post_suggest(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body: not JSON"}, status_code=400)
        try:
            answer = await run_in_threadpool(suggest_answer, body)
        except UsageError as exc:
            return _error(exc)
        except PodnetError as exc:
            return JSONResponse({"error": exc.message}, status_code=500)
        return JSONResponse(answer)

    return router
