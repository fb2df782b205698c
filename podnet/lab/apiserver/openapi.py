"""A minimal OpenAPI v3 index: enough for kubectl to see that the server validates objects itself.

``kubectl create/replace`` look up the PATCH operation of each kind in ``/openapi/v3/<group-version>`` and,
when it declares the ``fieldValidation`` query parameter, send the object and leave validation to the
server (which the lab does with podnet's validator). No schemas are published, so ``kubectl explain``
and client-side validation are not available.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from podnet.lab.apiserver.resources import BY_GROUP_VERSION, Resource

QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")


def _gv_path(group_version: str) -> str:
    return "api/v1" if group_version == "v1" else f"apis/{group_version}"


def _item_path(r: Resource) -> str:
    prefix = "/" + _gv_path(r.group_version)
    if r.namespaced:
        return f"{prefix}/namespaces/{{namespace}}/{r.plural}/{{name}}"
    return f"{prefix}/{r.plural}/{{name}}"


def group_version_doc(group_version: str) -> dict[str, Any] | None:
    """``GET /openapi/v3/<api/v1 | apis/group/version>``."""
    kinds = BY_GROUP_VERSION.get(group_version)
    if kinds is None:
        return None
    paths: dict[str, Any] = {}
    for r in kinds.values():
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        params = [{"name": p, "in": "query", "schema": {"type": "string"}} for p in QUERY_PARAMS]
        paths[_item_path(r)] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            },
            "put": {
                "operationId": f"replace{r.kind}",
                "parameters": params[:3],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "put",
                "x-kubernetes-group-version-kind": gvk,
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "podnet lab", "version": "v1.34.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def root_doc() -> dict[str, Any]:
    """``GET /openapi/v3``: one entry per group version, with a content hash as the real server gives."""
    out: dict[str, Any] = {}
    for gv in BY_GROUP_VERSION:
        digest = hashlib.sha512(json.dumps(group_version_doc(gv), sort_keys=True).encode()).hexdigest()[:64]
        path = _gv_path(gv)
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": out}
