"""Starting points for a new policy, written as YAML the editor loads like any file. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from podnet.errors import PodnetError
from podnet.k8s.manifests import parse_text
from podnet.k8s.parse import build_cluster

NP_API = "networking.k8s.io/v1"
NS_NAME = "kubernetes.io/metadata.name"


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": NP_API,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def default_deny(namespace: str, _ingress_ns: str) -> dict[str, Any]:
    return _policy("default-deny", namespace, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def allow_same_namespace(namespace: str, _ingress_ns: str) -> dict[str, Any]:
    return _policy(
        "allow-same-namespace",
        namespace,
        {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
    )


def allow_dns_egress(namespace: str, _ingress_ns: str) -> dict[str, Any]:
    return _policy(
        "allow-dns-egress",
        namespace,
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {NS_NAME: "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    )


def allow_from_ingress_namespace(namespace: str, ingress_ns: str) -> dict[str, Any]:
    return _policy(
        "allow-from-ingress",
        namespace,
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {NS_NAME: ingress_ns}}}]}],
        },
    )


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    title: str
    description: str
    build: Callable[[str, str], dict[str, Any]]


TEMPLATES: tuple[Template, ...] = (
    Template("default-deny", "Default deny", "no pod of the namespace sends or receives anything", default_deny),
    Template(
        "allow-same-namespace",
        "Allow same namespace",
        "pods of the namespace accept connections from each other",
        allow_same_namespace,
    ),
    Template(
        "allow-dns-egress",
        "Allow DNS egress",
        "pods of the namespace may ask kube-dns (UDP and TCP 53)",
        allow_dns_egress,
    ),
    Template(
        "allow-from-ingress-namespace",
        "Allow from ingress namespace",
        "pods of the namespace accept connections from the ingress controller's namespace",
        allow_from_ingress_namespace,
    ),
)


def render(template_id: str, namespace: str = "default", ingress_namespace: str = "ingress-nginx") -> str:
    """The template's YAML for ``namespace``; raises ManifestError when a parameter makes it invalid."""
    for t in TEMPLATES:
        if t.id == template_id:
            text = yaml.safe_dump(t.build(namespace, ingress_namespace), sort_keys=False)
            build_cluster(parse_text(text, f"template {t.id}"))  # a bad namespace is reported like any manifest's
            return text
    raise PodnetError(f"template {template_id!r}: unknown (known: {', '.join(t.id for t in TEMPLATES)})")


def catalogue(namespace: str = "default", ingress_namespace: str = "ingress-nginx") -> list[dict[str, str]]:
    return [
        {"id": t.id, "title": t.title, "description": t.description, "yaml": render(t.id, namespace, ingress_namespace)}
        for t in TEMPLATES
    ]
