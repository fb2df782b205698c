"""Writing objects to an API server (create, replace, delete, status, binding) through the official client.

Like :mod:`podnet.kube.client`, this module touches the network; requests go through the official client's
``ApiClient.call_api`` (its TLS, auth and kubeconfig handling) with raw JSON bodies, so podnet's objects
reach the server exactly as written.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from podnet.kube.client import ClusterError

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    api_version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        tail = f"/{name}" if name else ""
        return f"{prefix}{ns}/{self.plural}{tail}" + (f"/{sub}" if sub else "")


ANP_API = "policy.networking.k8s.io/v1alpha1"
RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource("Namespace", "v1", "namespaces", False),
        Resource("Pod", "v1", "pods", True),
        Resource("Deployment", "apps/v1", "deployments", True),
        Resource("StatefulSet", "apps/v1", "statefulsets", True),
        Resource("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", True),
        Resource("AdminNetworkPolicy", ANP_API, "adminnetworkpolicies", False),
        Resource("BaselineAdminNetworkPolicy", ANP_API, "baselineadminnetworkpolicies", False),
    )
}
ALIASES = {
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
    "networkpolicy": "NetworkPolicy", "networkpolicies": "NetworkPolicy", "netpol": "NetworkPolicy",
    "adminnetworkpolicy": "AdminNetworkPolicy", "adminnetworkpolicies": "AdminNetworkPolicy",
    "anp": "AdminNetworkPolicy",
    "baselineadminnetworkpolicy": "BaselineAdminNetworkPolicy",
    "baselineadminnetworkpolicies": "BaselineAdminNetworkPolicy", "banp": "BaselineAdminNetworkPolicy",
}  # fmt: skip


def resource(kind: str) -> Resource:
    name = ALIASES.get(kind.lower(), kind)
    found = RESOURCES.get(name)
    if found is None:
        raise ClusterError(f"unsupported kind {kind!r}: podnet serves {', '.join(sorted(RESOURCES))}")
    return found


class ObjectClient:
    def __init__(self, api: k8s.ApiClient, timeout: float = 30.0) -> None:
        self.api = api
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Obj | None = None, query: list[tuple[str, str]] | None = None
    ) -> Obj:
        try:
            method_, url, headers, body_, post = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(
                method_, url, header_params=headers, body=body_, post_params=post, _request_timeout=self.timeout
            )
            resp.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise ClusterError(f"{method} {path}: {exc.reason}", exc.status) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{method} {path}: {exc}") from exc
        data = resp.data or b""
        if not 200 <= resp.status < 300:
            message = data.decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(data).get("message", message)
            raise ClusterError(f"{method} {path}: {message}", resp.status)
        out: Obj = json.loads(data) if data else {}
        return out

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        return self.request("GET", resource(kind).path(namespace, name))

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        query = [("labelSelector", label_selector)] if label_selector else []
        items: list[Obj] = self.request("GET", resource(kind).path(namespace), query=query).get("items") or []
        res = resource(kind)
        for item in items:
            item.setdefault("kind", res.kind)
            item.setdefault("apiVersion", res.api_version)
        return items

    def create(self, obj: Obj) -> Obj:
        res = resource(str(obj.get("kind")))
        ns = (obj.get("metadata") or {}).get("namespace") or "default"
        return self.request("POST", res.path(ns), obj)

    def replace(self, obj: Obj) -> Obj:
        res = resource(str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        return self.request("PUT", res.path(meta.get("namespace") or "default", meta["name"]), obj)

    def apply(self, obj: Obj) -> str:
        """Create, or replace what exists under that name; returns "created", "configured" or "unchanged"."""
        try:
            self.create(obj)
            return "created"
        except ClusterError as exc:
            if exc.status != 409:
                raise
        meta = obj.get("metadata") or {}
        current = self.get(str(obj["kind"]), meta["name"], meta.get("namespace") or "default")
        if {k: v for k, v in obj.items() if k not in ("metadata", "status")} == {
            k: v for k, v in current.items() if k not in ("metadata", "status")
        } and (meta.get("labels") or {}) == (current.get("metadata", {}).get("labels") or {}):
            return "unchanged"
        updated = json.loads(json.dumps(obj))
        updated.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.replace(updated)
        return "configured"

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was not there."""
        try:
            self.request("DELETE", resource(kind).path(namespace or "default", name))
        except ClusterError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def put_status(self, pod: Obj) -> Obj:
        meta = pod["metadata"]
        return self.request("PUT", resource("Pod").path(meta["namespace"], meta["name"], "status"), pod)

    def bind(self, namespace: str, name: str, node: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self.request("POST", resource("Pod").path(namespace, name, "binding"), body)
