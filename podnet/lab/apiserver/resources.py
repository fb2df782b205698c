"""The resource kinds the lab API server serves, and the discovery documents built from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: ``plural.group`` (``pods`` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified(self) -> str:
        """How Status messages name the resource: ``pods``, ``deployments.apps``."""
        return self.key

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",), (), ("status",)),
    Resource("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",), ("status", "binding")),
    Resource("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",), ("status",)),
    Resource("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True, ("sts",), ("all",), ("status",)),
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", True, ("netpol",)),
    Resource(
        "policy.networking.k8s.io",
        "v1alpha1",
        "AdminNetworkPolicy",
        "adminnetworkpolicies",
        "adminnetworkpolicy",
        False,
        ("anp",),
        (),
        ("status",),
    ),
    Resource(
        "policy.networking.k8s.io",
        "v1alpha1",
        "BaselineAdminNetworkPolicy",
        "baselineadminnetworkpolicies",
        "baselineadminnetworkpolicy",
        False,
        ("banp",),
        (),
        ("status",),
    ),
)

BY_GROUP_VERSION: dict[str, dict[str, Resource]] = {}
for _r in RESOURCES:
    BY_GROUP_VERSION.setdefault(_r.group_version, {})[_r.plural] = _r
BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
NAMESPACES = BY_KIND["Namespace"]
PODS = BY_KIND["Pod"]
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(r.group for r in RESOURCES if r.group))


def api_versions() -> dict[str, Any]:
    """``GET /api``."""
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def _group(group: str) -> dict[str, Any]:
    versions = sorted({r.version for r in RESOURCES if r.group == group})
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group(group: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``."""
    if group not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


def api_group_list() -> dict[str, Any]:
    """``GET /apis``."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS]}


def api_resource_list(group_version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``GET /apis/<group>/<version>``: what kubectl and the clients discover."""
    resources = BY_GROUP_VERSION.get(group_version)
    if resources is None:
        return None
    out: list[dict[str, Any]] = []
    for r in resources.values():
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(VERBS),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            if sub == "binding":
                out.append(
                    {"name": f"{r.plural}/binding", "singularName": "", "namespaced": True, "kind": "Binding"}
                    | {"verbs": ["create"]}
                )
            else:
                out.append(
                    {
                        "name": f"{r.plural}/{sub}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "update"],
                    }
                )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}
