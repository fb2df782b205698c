"""Small builders for manifests as a user writes them, and shortcuts to validate them."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.errors import ManifestError
from podnet.k8s.manifests import Document
from podnet.k8s.model import Cluster, Source
from podnet.k8s.parse import build_cluster

FILE = "t.yaml"


def docs(*objs: dict[str, Any]) -> list[Document]:
    return [Document(Source(FILE, i), obj) for i, obj in enumerate(objs)]


def cluster(*objs: dict[str, Any]) -> Cluster:
    return build_cluster(docs(*objs))


def problems(*objs: dict[str, Any]) -> list[str]:
    """The problems build_cluster reports for ``objs``; fails the test when it accepts them."""
    with pytest.raises(ManifestError) as info:
        build_cluster(docs(*objs))
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def namespace(name: str, labels: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def pod(
    name: str,
    ns: str | None = None,
    labels: dict[str, Any] | None = None,
    ports: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
    owners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    if labels is not None:
        meta["labels"] = labels
    if owners is not None:
        meta["ownerReferences"] = owners
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if ports is not None:
        container["ports"] = ports
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container]}}
    if status is not None:
        out["status"] = status
    return out


def owner(kind: str, name: str, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": f"uid-{name}", "controller": controller}


def network_policy(spec: dict[str, Any], name: str = "np", ns: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


def ingress_ports(*ports: dict[str, Any]) -> dict[str, Any]:
    """A NetworkPolicy spec whose single ingress rule has ``ports``."""
    return {"podSelector": {}, "ingress": [{"ports": list(ports)}]}


def ingress_from(*peers: dict[str, Any]) -> dict[str, Any]:
    """A NetworkPolicy spec whose single ingress rule has ``from: peers``."""
    return {"podSelector": {}, "ingress": [{"from": list(peers)}]}


ALL_NAMESPACES: dict[str, Any] = {"namespaces": {}}


def admin_policy(spec: dict[str, Any], name: str = "anp", baseline: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy" if baseline else "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def anp_spec(priority: Any = 10, **rules: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"priority": priority, "subject": ALL_NAMESPACES}
    spec.update(rules)
    return spec


def workload(kind: str, name: str, ns: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels if labels is not None else {"app": name}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]},
    }
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    api = {"Job": "batch/v1", "CronJob": "batch/v1", "ReplicationController": "v1"}.get(kind, "apps/v1")
    spec: dict[str, Any]
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "ReplicationController":
        spec = {"selector": dict(labels), "template": template}
    elif kind == "Job":
        spec = {"template": template}
    else:
        spec = {"selector": {"matchLabels": dict(labels)}, "template": template}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}
