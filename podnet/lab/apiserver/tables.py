"""Server-side printing: the ``Table`` kubectl asks for (``Accept: ...;as=Table;g=meta.k8s.io``).

Columns follow the real API server's for each kind (those with priority 1 appear with ``-o wide``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from podnet.lab.apiserver.resources import Resource

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_age(created: str, now: datetime | None = None) -> str:
    """Like Kubernetes' ``duration.HumanDuration``: 45s, 3m12s, 95m, 5h3m, 30h, 3d4h, 120d, 2y30d."""
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return "<unknown>"
    s = max(int(((now or datetime.now(UTC)) - then).total_seconds()), 0)
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d % 365 else f"{d // 365}y"


def _get(obj: Obj, *path: str, default: Any = None) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return default
        cur = cur.get(p)
    return default if cur is None else cur


def _containers(obj: Obj, *path: str) -> list[Obj]:
    c = _get(obj, *path, "containers", default=[])
    return [x for x in c if isinstance(x, dict)] if isinstance(c, list) else []


def _selector(sel: Any) -> str:
    if not isinstance(sel, dict) or not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        if isinstance(e, dict):
            parts.append(f"{e.get('key')} {str(e.get('operator', '')).lower()} ({','.join(e.get('values') or [])})")
    return ",".join(parts) or "<none>"


def _pod_ready(pod: Obj) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[])
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready")) if isinstance(statuses, list) else 0
    return f"{ready}/{len(_containers(pod, 'spec'))}"


def _age(obj: Obj) -> str:
    return human_age(str(_get(obj, "metadata", "creationTimestamp", default="")))


_NAME: Column = ("Name", "string", 0, lambda o: _get(o, "metadata", "name", default=""))
_AGE: Column = ("Age", "string", 0, _age)
_IMAGES: Column = (
    "Images",
    "string",
    1,
    lambda o: ",".join(str(c.get("image", "")) for c in _containers(o, "spec", "template", "spec")),
)
_CONTAINERS: Column = (
    "Containers",
    "string",
    1,
    lambda o: ",".join(str(c.get("name", "")) for c in _containers(o, "spec", "template", "spec")),
)

COLUMNS: dict[str, list[Column]] = {
    "Namespace": [_NAME, ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="")), _AGE],
    "Pod": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, lambda o: _get(o, "status", "phase", default="Pending")),
        ("Restarts", "string", 0, lambda o: "0"),
        _AGE,
        ("IP", "string", 1, lambda o: _get(o, "status", "podIP", default="<none>")),
        ("Node", "string", 1, lambda o: _get(o, "spec", "nodeName", default="<none>")),
    ],
    "Deployment": [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: f"{_get(o, 'status', 'readyReplicas', default=0)}/{_get(o, 'spec', 'replicas', default=1)}",
        ),
        ("Up-to-date", "integer", 0, lambda o: _get(o, "status", "updatedReplicas", default=0)),
        ("Available", "integer", 0, lambda o: _get(o, "status", "availableReplicas", default=0)),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        ("Selector", "string", 1, lambda o: _selector(_get(o, "spec", "selector"))),
    ],
    "StatefulSet": [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: f"{_get(o, 'status', 'readyReplicas', default=0)}/{_get(o, 'spec', 'replicas', default=1)}",
        ),
        _AGE,
        _CONTAINERS,
        _IMAGES,
    ],
    "NetworkPolicy": [_NAME, ("Pod-Selector", "string", 0, lambda o: _selector(_get(o, "spec", "podSelector"))), _AGE],
    "AdminNetworkPolicy": [
        _NAME,
        ("Priority", "string", 0, lambda o: str(_get(o, "spec", "priority", default=""))),
        _AGE,
    ],
    "BaselineAdminNetworkPolicy": [_NAME, _AGE],
}


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(resource: Resource, items: list[Obj], list_meta: Obj, include: str = "Metadata") -> Obj:
    """A ``meta.k8s.io/v1`` Table of ``items``; ``include`` is the ``includeObject`` parameter."""
    columns = COLUMNS[resource.kind]
    rows = []
    for obj in items:
        row: Obj = {"cells": [cell(obj) for _, _, _, cell in columns]}
        ro = _row_object(obj, include)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {k: v for k, v in list_meta.items() if k in ("resourceVersion", "continue")},
        "columnDefinitions": [
            {"name": name, "type": type_, "format": "name" if name == "Name" else "", "description": "", "priority": p}
            for name, type_, p, _ in columns
        ],
        "rows": rows,
    }
