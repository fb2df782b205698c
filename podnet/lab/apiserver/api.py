"""The request logic of the lab API server: routing, verbs, watch cursors. No sockets here.

:meth:`Api.handle` takes a method, a path, the query parameters and a body and returns a :class:`Reply`
(a JSON body with an HTTP code) or a :class:`WatchPlan` that the HTTP layer streams with a
:class:`Watcher`. Every failure is an :class:`~podnet.lab.apiserver.status.ApiError` turned into a
``Status`` body.

Semantics follow the Kubernetes API server where podnet or kubectl can see them; the lab's simplifications:
deletion is immediate (no graceful period, no finalizers), deleting a namespace deletes what is in it at once,
and deleting an object deletes the objects whose ``ownerReferences`` name it (unless
``propagationPolicy=Orphan``), standing in for the garbage collector. ``limit``/``continue`` page through
the current state rather than a snapshot.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from podnet.k8s.selectors import EVERYTHING, LabelSelector, SelectorSyntaxError, parse_label_query
from podnet.lab.apiserver import openapi, protobuf, tables
from podnet.lab.apiserver import resources as res
from podnet.lab.apiserver import status as st
from podnet.lab.apiserver.fields import FieldRequirement, FieldSelectorError, parse_field_selector
from podnet.lab.apiserver.patch import merge_patch, strategic_merge_patch
from podnet.lab.apiserver.resources import NAMESPACES, PODS, RESOURCES, Resource
from podnet.lab.apiserver.store import Event, Expired, Obj, Store
from podnet.lab.apiserver.validate import apply_defaults, pod_update_problems, problems_of

SERVER_VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-podnet-lab",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "",
    "compiler": "podnet",
    "platform": "linux/amd64",
}
INITIAL_NAMESPACES = ("default",)
_SERVER_FIELDS = ("uid", "creationTimestamp", "generation", "deletionTimestamp")
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    body: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class Target:
    """What a resource path names: a collection (``name`` None), an object, or an object's subresource."""

    resource: Resource
    namespace: str | None
    name: str | None = None
    subresource: str | None = None


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """A watch request, checked and ready to stream."""

    resource: Resource
    namespace: str | None
    labels: LabelSelector
    fields: tuple[FieldRequirement, ...]
    resource_version: int | None  # None: send the current state as ADDED events first
    timeout_seconds: float | None
    bookmarks: bool
    name: str | None = None
    initial_events_end: bool = False  # sendInitialEvents=true: a BOOKMARK marks the end of the current state
    table: str | None = None  # kubectl asked for Tables: the includeObject value


@dataclass(slots=True)
class Watcher:
    """One watch's position in the event log; :meth:`poll` returns the next events to send (as dicts).

    After the first poll the watcher has sent the current state (if asked to) and then every event after
    its resourceVersion in log order, translated for its selectors the way the API server does: an object
    that starts matching is ADDED, one that stops matching is DELETED. ``done`` is set after an ERROR event.
    """

    api: Api
    plan: WatchPlan
    rv: int = -1
    done: bool = False
    started: bool = False
    pending: list[dict[str, Any]] = field(default_factory=list)

    def poll(self, limit: int = 500) -> list[dict[str, Any]]:
        events = self._poll(limit)
        if self.plan.table is None:
            return events
        for event in events:
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                obj = event["object"]
                meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                event["object"] = tables.table(self.plan.resource, [obj], meta, self.plan.table)
        return events

    def _poll(self, limit: int) -> list[dict[str, Any]]:
        if self.done:
            return []
        out: list[dict[str, Any]] = []
        if not self.started:
            self.started = True
            if self.plan.resource_version is None:
                items, self.rv = self.api.select(self.plan.resource, self.plan.namespace, self.plan)
                out = [{"type": "ADDED", "object": item} for item in items]
                if self.plan.initial_events_end:
                    end = self.bookmark()
                    end["object"]["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
                    out.append(end)
            else:
                self.rv = self.plan.resource_version
        try:
            events = self.api.store.events_after(self.rv, limit)
        except Expired as exc:
            self.done = True
            return [*out, {"type": "ERROR", "object": st.expired(str(exc)).status()}]
        for event in events:
            self.rv = event.rv
            translated = self.api.translate(event, self.plan)
            if translated is not None:
                out.append(translated)
        return out

    def bookmark(self) -> dict[str, Any]:
        rv = max(self.rv, 0)
        r = self.plan.resource
        return {
            "type": "BOOKMARK",
            "object": {"kind": r.kind, "apiVersion": r.group_version, "metadata": {"resourceVersion": str(rv)}},
        }


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise st.bad_request(f"invalid {name}: {raw!r}: must be an integer") from None


class Api:
    """The lab API server's logic over a :class:`Store`. Not thread-safe beyond what the store is: call it
    from one thread (the HTTP server's event loop)."""

    def __init__(self, store: Store, clock: Callable[[], str] = now) -> None:
        self.store = store
        self.clock = clock
        if store.resource_version == 0:
            for name in INITIAL_NAMESPACES:
                self.create(NAMESPACES, None, {"metadata": {"name": name}})

    # -- routing -------------------------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes = b"",
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Reply | WatchPlan:
        """Answer one request; with ``accept`` asking for ``as=Table`` a GET answers with kubectl's Table."""
        try:
            reply = self._dispatch(method.upper(), path, query, body, content_type)
        except st.ApiError as exc:
            return Reply(exc.code, exc.status())
        if method.upper() == "GET" and tables.wants_table(accept):
            include = query.get("includeObject", "Metadata")
            if isinstance(reply, WatchPlan):
                return dataclasses.replace(reply, table=include)
            if reply.code == 200:
                return self._as_table(path, reply, include)
        return reply

    def _as_table(self, path: str, reply: Reply, include: str) -> Reply:
        target = self._target([p for p in path.split("/") if p])
        if target is None or target.subresource is not None or not isinstance(reply.body, dict):
            return reply
        body = reply.body
        if target.name is None:
            items, meta = body["items"], body["metadata"]
        else:
            items, meta = [body], {"resourceVersion": body["metadata"]["resourceVersion"]}
        return Reply(200, tables.table(target.resource, items, meta, include))

    def _dispatch(
        self, method: str, path: str, query: Mapping[str, str], body: bytes, content_type: str
    ) -> Reply | WatchPlan:
        parts = [p for p in path.split("/") if p]
        discovery = self._discovery(parts)
        if discovery is not None:
            if method != "GET":
                raise st.ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {path}")
            return discovery
        target = self._target(parts)
        if target is None:
            raise st.ApiError(404, "NotFound", "the server could not find the requested resource")
        r = target.resource
        media = content_type.split(";")[0].strip().lower()
        if method in ("POST", "PUT") and media == "application/vnd.kubernetes.protobuf":
            try:
                body = json.dumps(protobuf.decode(body)).encode()
            except protobuf.ProtobufError as exc:
                raise st.ApiError(
                    415, "UnsupportedMediaType", f"cannot read this protobuf body ({exc}); send JSON instead"
                ) from exc
        elif method in ("POST", "PUT", "DELETE") and body.strip() and media not in ("", "application/json", "*/*"):
            raise st.ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json (got {media})",
            )
        if target.subresource is not None:
            return self._subresource(method, target, body, content_type, query)
        if target.name is None:
            if method == "GET":
                if query.get("watch") in ("true", "1"):
                    return self._watch_plan(target, query)
                return Reply(200, self.list_objects(r, target.namespace, query))
            if method == "POST" and (target.namespace is not None or not r.namespaced):
                return Reply(201, self.create(r, target.namespace, self._json(body), dry_run=_dry(query)))
            raise st.ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {path}")
        if method == "GET":
            if query.get("watch") in ("true", "1"):
                return self._watch_plan(target, query, name=target.name)
            return Reply(200, self.get(r, target.namespace, target.name))
        if method == "PUT":
            return Reply(200, self.replace(r, target.namespace, target.name, self._json(body), dry_run=_dry(query)))
        if method == "PATCH":
            return Reply(200, self.patch(r, target.namespace, target.name, body, content_type, dry_run=_dry(query)))
        if method == "DELETE":
            options = self._json(body) if body.strip() else {}
            if query.get("propagationPolicy"):
                options["propagationPolicy"] = query["propagationPolicy"]
            return Reply(200, self.delete(r, target.namespace, target.name, options, dry_run=_dry(query)))
        raise st.ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {path}")

    def _discovery(self, parts: list[str]) -> Reply | None:
        doc: dict[str, Any] | str | None = None
        if not parts:
            doc = {"paths": ["/api", "/api/v1", "/apis", *(f"/apis/{gv}" for gv in res.BY_GROUP_VERSION if "/" in gv)]}
        elif parts == ["api"]:
            doc = res.api_versions()
        elif parts == ["apis"]:
            doc = res.api_group_list()
        elif parts == ["version"]:
            doc = dict(SERVER_VERSION)
        elif len(parts) == 1 and parts[0] in ("healthz", "readyz", "livez"):
            doc = "ok"
        elif parts == ["openapi", "v3"]:
            doc = openapi.root_doc()
        elif parts[:2] == ["openapi", "v3"]:
            rest = parts[2:]
            gv = "v1" if rest == ["api", "v1"] else "/".join(rest[1:]) if rest[:1] == ["apis"] else ""
            doc = openapi.group_version_doc(gv)
            if doc is None:
                raise st.ApiError(404, "NotFound", "the server could not find the requested resource")
        elif parts == ["api", "v1"]:
            doc = res.api_resource_list("v1")
        elif len(parts) == 2 and parts[0] == "apis":
            doc = res.api_group(parts[1])
            if doc is None:
                raise st.ApiError(404, "NotFound", "the server could not find the requested resource")
        elif len(parts) == 3 and parts[0] == "apis":
            doc = res.api_resource_list(f"{parts[1]}/{parts[2]}")
            if doc is None:
                raise st.ApiError(404, "NotFound", "the server could not find the requested resource")
        return Reply(200, doc) if doc is not None else None

    def _target(self, parts: list[str]) -> Target | None:
        if len(parts) >= 2 and parts[0] == "api" and parts[1] == "v1":
            gv, rest = "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return None
        kinds = res.BY_GROUP_VERSION.get(gv)
        if kinds is None or not rest:
            return None
        if len(rest) in (3, 4, 5) and rest[0] == "namespaces" and rest[2] in kinds and kinds[rest[2]].namespaced:
            r = kinds[rest[2]]
            name = rest[3] if len(rest) >= 4 else None
            sub = rest[4] if len(rest) == 5 else None
            if sub is not None and sub not in r.subresources:
                return None
            return Target(r, rest[1], name, sub)
        r2 = kinds.get(rest[0])
        if r2 is None or len(rest) > 3:
            return None
        if r2.namespaced:
            return Target(r2, None) if len(rest) == 1 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and sub not in r2.subresources:
            return None
        return Target(r2, None, rest[1] if len(rest) >= 2 else None, sub)

    @staticmethod
    def _json(body: bytes) -> Obj:
        try:
            obj = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise st.bad_request(f"the body of the request was in an unknown format: {exc}") from exc
        if not isinstance(obj, dict):
            raise st.bad_request("the body of the request must be a JSON object")
        return obj

    # -- reading -------------------------------------------------------------------------------------------
    def get(self, r: Resource, namespace: str | None, name: str) -> Obj:
        obj = self.store.get(r.key, namespace or "", name)
        if obj is None:
            raise st.not_found(r, name)
        return obj

    def _selectors(self, r: Resource, query: Mapping[str, str]) -> tuple[LabelSelector, tuple[FieldRequirement, ...]]:
        try:
            labels = parse_label_query(query.get("labelSelector", ""))
        except SelectorSyntaxError as exc:
            raise st.bad_request(f"unable to parse requirement: {exc}") from exc
        try:
            fields = parse_field_selector(query.get("fieldSelector", ""), r)
        except FieldSelectorError as exc:
            raise st.bad_request(str(exc)) from exc
        return labels, fields

    def select(self, r: Resource, namespace: str | None, plan: WatchPlan) -> tuple[list[Obj], int]:
        items, rv = self.store.objects(r.key, namespace if r.namespaced else None)
        return [o for o in items if self._matches(o, plan.labels, plan.fields, plan.name)], rv

    @staticmethod
    def _matches(obj: Obj, labels: LabelSelector, fields: tuple[FieldRequirement, ...], name: str | None) -> bool:
        meta = obj.get("metadata", {})
        if name is not None and meta.get("name") != name:
            return False
        if labels is not EVERYTHING and not labels.matches(meta.get("labels") or {}):
            return False
        return all(f.matches(obj) for f in fields)

    def list_objects(self, r: Resource, namespace: str | None, query: Mapping[str, str] | None = None) -> Obj:
        query = query or {}
        labels, fields = self._selectors(r, query)
        rv_param = query.get("resourceVersion", "")
        if rv_param not in ("", "0"):
            wanted = _int_param(query, "resourceVersion")
            if wanted is not None and wanted > self.store.resource_version:
                raise st.ApiError(
                    504,
                    "Timeout",
                    f"Too large resource version: {wanted}, current: {self.store.resource_version}",
                    {"retryAfterSeconds": 1},
                )
        items, rv = self.store.objects(r.key, namespace if r.namespaced else None)
        items = [o for o in items if self._matches(o, labels, fields, None)]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        limit = _int_param(query, "limit")
        token = query.get("continue", "")
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token.encode()))
                start_key = (str(after["ns"]), str(after["name"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise st.bad_request(f"invalid continue token: {exc}") from exc
            items = [o for o in items if _sort_key(o) > start_key]
        if limit is not None and limit > 0 and len(items) > limit:
            items = items[:limit]
            last = items[-1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"ns": last.get("namespace", ""), "name": last["name"]}).encode()
            ).decode()
        for item in items:
            item.setdefault("kind", r.kind)
            item.setdefault("apiVersion", r.group_version)
        return {"kind": r.list_kind, "apiVersion": r.group_version, "metadata": meta, "items": items}

    def _watch_plan(self, target: Target, query: Mapping[str, str], name: str | None = None) -> WatchPlan:
        labels, fields = self._selectors(target.resource, query)
        raw = query.get("resourceVersion", "")
        initial = query.get("sendInitialEvents") in ("true", "1")
        if initial and query.get("resourceVersionMatch") != "NotOlderThan":
            raise st.invalid(
                target.resource,
                "",
                ["resourceVersionMatch: Forbidden: sendInitialEvents requires resourceVersionMatch=NotOlderThan"],
            )
        rv = None if raw in ("", "0") or initial else _int_param(query, "resourceVersion")
        if (
            initial
            and raw not in ("", "0")
            and (_int_param(query, "resourceVersion") or 0) > self.store.resource_version
        ):
            raise st.ApiError(504, "Timeout", f"Too large resource version: {raw}", {"retryAfterSeconds": 1})
        timeout = _int_param(query, "timeoutSeconds")
        return WatchPlan(
            target.resource,
            target.namespace,
            labels,
            fields,
            rv,
            float(timeout) if timeout is not None and timeout > 0 else None,
            query.get("allowWatchBookmarks") in ("true", "1"),
            name,
            initial,
        )

    def watcher(self, plan: WatchPlan) -> Watcher:
        return Watcher(self, plan)

    def translate(self, event: Event, plan: WatchPlan) -> dict[str, Any] | None:
        """The watch event ``plan`` gets for ``event``, or None when it concerns none of its objects."""
        r = plan.resource
        if event.resource != r.key:
            return None
        if r.namespaced and plan.namespace is not None and event.namespace != plan.namespace:
            return None
        new_ok = self._matches(event.obj, plan.labels, plan.fields, plan.name)
        if event.type == "DELETED":
            return {"type": "DELETED", "object": event.obj} if new_ok else None
        old_ok = event.old is not None and self._matches(event.old, plan.labels, plan.fields, plan.name)
        if event.type == "ADDED" or (new_ok and not old_ok):
            return {"type": "ADDED", "object": event.obj} if new_ok else None
        if old_ok and not new_ok:
            return {"type": "DELETED", "object": event.obj}
        return {"type": "MODIFIED", "object": event.obj} if new_ok else None

    # -- writing -------------------------------------------------------------------------------------------
    def _check_identity(self, r: Resource, namespace: str | None, obj: Obj) -> dict[str, Any]:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind is not None and kind != r.kind:
            raise st.bad_request(f"the kind of the provided object ({kind}) does not match the resource ({r.kind})")
        if api_version is not None and api_version != r.group_version:
            raise st.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({r.group_version})"
            )
        obj["kind"], obj["apiVersion"] = r.kind, r.group_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise st.bad_request("metadata must be an object")
        if r.namespaced:
            body_ns = meta.get("namespace")
            if body_ns not in (None, "") and body_ns != namespace:
                raise st.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.pop("selfLink", None)
        meta.pop("managedFields", None)
        return meta

    def _validate(self, r: Resource, obj: Obj) -> None:
        problems = problems_of(r, obj)
        if problems:
            raise st.invalid(r, str(obj["metadata"].get("name") or ""), problems)

    def _require_namespace(self, namespace: str) -> None:
        if self.store.get(NAMESPACES.key, "", namespace) is None:
            raise st.not_found(NAMESPACES, namespace)

    def create(self, r: Resource, namespace: str | None, body: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = self._check_identity(r, namespace, obj)
        meta.pop("resourceVersion", None)
        if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_SUFFIX_CHARS) for _ in range(5))
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            self._validate(r, obj)
            raise st.invalid(r, "", ["metadata.name: Required value: name or generateName is required"])
        if r.namespaced:
            assert namespace is not None
            self._require_namespace(namespace)
        if self.store.get(r.key, namespace or "", name) is not None:
            raise st.already_exists(r, name)
        apply_defaults(r, obj)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock()
        meta["generation"] = 1
        obj["status"] = self._initial_status(r)
        self._validate(r, obj)
        if dry_run:
            return obj
        return self.store.write("ADDED", r.key, namespace or "", name, obj, None)

    @staticmethod
    def _initial_status(r: Resource) -> dict[str, Any]:
        if r.kind == "Namespace":
            return {"phase": "Active"}
        if r.kind == "Pod":
            return {"phase": "Pending"}
        if r.kind == "StatefulSet":
            return {"replicas": 0, "availableReplicas": 0}  # not omitempty in the API: clients require them
        return {}

    def _existing(self, r: Resource, namespace: str | None, name: str, body_meta: dict[str, Any]) -> Obj:
        old = self.store.get(r.key, namespace or "", name)
        if old is None:
            raise st.not_found(r, name)
        if body_meta.get("name") not in (None, name):
            raise st.bad_request(
                f"the name of the object ({body_meta.get('name')}) does not match the name on the URL ({name})"
            )
        wanted = body_meta.get("resourceVersion")
        if wanted not in (None, "") and str(wanted) != old["metadata"]["resourceVersion"]:
            raise st.stale(r, name)
        if body_meta.get("uid") not in (None, "", old["metadata"]["uid"]):
            raise st.conflict(r, name, "Precondition failed: UID in precondition does not match UID in object")
        return old

    def replace(self, r: Resource, namespace: str | None, name: str, body: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = self._check_identity(r, namespace, obj)
        old = self._existing(r, namespace, name, meta)
        meta["name"] = name
        meta.pop("resourceVersion", None)
        for key in _SERVER_FIELDS:
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        if r.subresources and "status" in r.subresources:
            obj["status"] = old.get("status", {})
        apply_defaults(r, obj)
        if r.kind == "Pod":
            problems = pod_update_problems(old, obj)
            if problems:
                raise st.invalid(r, name, problems)
        return self._commit_update(r, namespace, name, old, obj, dry_run)

    def _commit_update(self, r: Resource, namespace: str | None, name: str, old: Obj, obj: Obj, dry_run: bool) -> Obj:
        self._validate(r, obj)
        if obj.get("spec") != old.get("spec"):
            obj["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if _without_rv(obj) == _without_rv(old):
            return old
        if dry_run:
            obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return obj
        return self.store.write("MODIFIED", r.key, namespace or "", name, obj, old)

    def replace_status(self, r: Resource, namespace: str | None, name: str, body: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = self._check_identity(r, namespace, obj)
        old = self._existing(r, namespace, name, meta)
        new = copy.deepcopy(old)
        new["status"] = obj.get("status") if isinstance(obj.get("status"), dict) else {}
        return self._commit_update(r, namespace, name, old, new, dry_run)

    def patch(
        self,
        r: Resource,
        namespace: str | None,
        name: str,
        body: bytes,
        content_type: str,
        dry_run: bool = False,
        status_only: bool = False,
    ) -> Obj:
        media = content_type.split(";")[0].strip()
        if media not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise st.ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/merge-patch+json, application/strategic-merge-patch+json (got {media})",
            )
        patch = self._json(body)
        old = self.get(r, namespace, name)
        merge = merge_patch if media == "application/merge-patch+json" else strategic_merge_patch
        merged = merge(old, patch)
        if not isinstance(merged, dict):
            raise st.bad_request("the patch must produce an object")
        merged.setdefault("metadata", {})
        if "resourceVersion" not in (patch.get("metadata") or {}):
            merged["metadata"].pop("resourceVersion", None)
        if status_only:
            return self.replace_status(r, namespace, name, merged, dry_run)
        return self.replace(r, namespace, name, merged, dry_run)

    def delete(
        self, r: Resource, namespace: str | None, name: str, options: Obj | None = None, dry_run: bool = False
    ) -> Obj:
        options = options or {}
        old = self.get(r, namespace, name)
        pre = options.get("preconditions") or {}
        if isinstance(pre, dict):
            if pre.get("uid") not in (None, "", old["metadata"]["uid"]):
                raise st.conflict(r, name, "Precondition failed: UID in precondition does not match UID in object")
            if pre.get("resourceVersion") not in (None, "", old["metadata"]["resourceVersion"]):
                raise st.stale(r, name)
        if dry_run:
            return old if r.kind == "Pod" else st.success(r, name, old["metadata"]["uid"])
        orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents") is True
        if r.kind == "Namespace":
            for other in RESOURCES:
                if other.namespaced:
                    for item in self.store.objects(other.key, name)[0]:
                        self._remove(other, item)
        elif not orphan:
            self._delete_dependents(old["metadata"]["uid"], namespace)
        gone = self._remove(r, old)
        return gone if r.kind == "Pod" else st.success(r, name, old["metadata"]["uid"])

    def _remove(self, r: Resource, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return self.store.write(
            "DELETED", r.key, meta.get("namespace", "") if r.namespaced else "", meta["name"], obj, obj
        )

    def _delete_dependents(self, uid: str, namespace: str | None) -> None:
        for other in RESOURCES:
            if not other.namespaced and namespace is not None:
                continue
            for item in self.store.objects(other.key, namespace if other.namespaced else None)[0]:
                refs = item["metadata"].get("ownerReferences") or []
                if any(isinstance(ref, dict) and ref.get("uid") == uid for ref in refs):
                    self._delete_dependents(item["metadata"]["uid"], item["metadata"].get("namespace"))
                    if self.store.get(other.key, item["metadata"].get("namespace", ""), item["metadata"]["name"]):
                        self._remove(other, item)

    # -- subresources ----------------------------------------------------------------------------------------
    def _subresource(
        self, method: str, target: Target, body: bytes, content_type: str, query: Mapping[str, str]
    ) -> Reply:
        r, ns, name = target.resource, target.namespace, target.name
        assert name is not None
        if target.subresource == "status":
            if method == "GET":
                return Reply(200, self.get(r, ns, name))
            if method == "PUT":
                return Reply(200, self.replace_status(r, ns, name, self._json(body), dry_run=_dry(query)))
            if method == "PATCH":
                return Reply(200, self.patch(r, ns, name, body, content_type, dry_run=_dry(query), status_only=True))
        if target.subresource == "binding" and method == "POST":
            return Reply(201, self.bind(ns, name, self._json(body)))
        raise st.ApiError(
            405, "MethodNotAllowed", f"the server does not allow this method on {r.plural}/{target.subresource}"
        )

    def bind(self, namespace: str | None, name: str, binding: Obj) -> Obj:
        """``POST pods/<name>/binding``: the scheduler's way to set ``spec.nodeName``, once."""
        target = binding.get("target")
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise st.invalid(PODS, name, ["target.name: Required value"])
        old = self.get(PODS, namespace, name)
        current = (old.get("spec") or {}).get("nodeName")
        if current:
            raise st.conflict(PODS, name, f'pod {name} is already assigned to node "{current}"')
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["nodeName"] = node
        self.store.write("MODIFIED", PODS.key, namespace or "", name, new, old)
        return st.success(PODS, name, old["metadata"]["uid"])


def _without_rv(obj: Obj) -> Obj:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def _dry(query: Mapping[str, str]) -> bool:
    return query.get("dryRun", "") == "All"


def _sort_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))
