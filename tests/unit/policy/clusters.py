"""Hypothesis strategies for random but valid clusters, written as the manifests a user would write."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

KEYS = ["app", "tier"]
VALUES = ["a", "b", "c"]
NAMESPACES = ["ns1", "ns2", "ns3"]
CIDRS = ["10.0.0.0/24", "10.0.0.0/25", "10.0.0.128/25", "10.0.0.0/28", "0.0.0.0/0", "192.168.0.0/16", "fd00::/64"]
EXCEPTS = {
    "10.0.0.0/24": ["10.0.0.0/25", "10.0.0.0/28", "10.0.0.128/26"],
    "10.0.0.0/25": ["10.0.0.0/28", "10.0.0.64/26"],
    "10.0.0.128/25": ["10.0.0.192/26"],
    "10.0.0.0/28": ["10.0.0.8/29"],
    "0.0.0.0/0": ["10.0.0.0/24", "10.0.0.0/8", "192.168.0.0/16"],
    "192.168.0.0/16": ["192.168.1.0/24"],
    "fd00::/64": ["fd00::/120", "fd00::100/120"],
}
PORT_NAMES = ["http", "dns", "metrics"]
PORTS = [53, 80, 443, 8080, 9090]
ADDRESSES = [
    "10.0.0.3",
    "10.0.0.9",
    "fd00::5",
    "10.0.0.100",
    "10.0.0.130",
    "10.0.0.200",
    "fd00::1:1",
    "192.168.1.5",
    "192.168.7.7",
    "8.8.8.8",
    "2001:db8::1",
]

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@st.composite
def selector(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ml = draw(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=1))
    if ml:
        out["matchLabels"] = ml
    exprs = []
    for _ in range(draw(st.integers(0, 1))):
        op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
        e: dict[str, Any] = {"key": draw(st.sampled_from(KEYS)), "operator": op}
        if op in ("In", "NotIn"):
            e["values"] = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True))
        exprs.append(e)
    if exprs:
        out["matchExpressions"] = exprs
    return out


@st.composite
def ns_selector(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"matchLabels": {"kubernetes.io/metadata.name": draw(st.sampled_from(NAMESPACES))}}
    return draw(selector())


@st.composite
def np_peer(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "ns", "both", "ip"]))
    if kind == "ip":
        cidr = draw(st.sampled_from(CIDRS))
        block: dict[str, Any] = {"cidr": cidr}
        ex = draw(st.lists(st.sampled_from(EXCEPTS[cidr]), max_size=2, unique=True))
        if ex:
            block["except"] = ex
        return {"ipBlock": block}
    out: dict[str, Any] = {}
    if kind in ("pod", "both"):
        out["podSelector"] = draw(selector())
    if kind in ("ns", "both"):
        out["namespaceSelector"] = draw(ns_selector())
    return out


@st.composite
def np_port(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["num", "range", "named", "proto"]))
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["protocol"] = draw(st.sampled_from(["TCP", "UDP", "SCTP"]))
    if kind == "num":
        out["port"] = draw(st.sampled_from(PORTS))
    elif kind == "range":
        lo = draw(st.sampled_from(PORTS))
        out["port"] = lo
        out["endPort"] = lo + draw(st.sampled_from([0, 1, 30, 400]))
    elif kind == "named":
        out["port"] = draw(st.sampled_from(PORT_NAMES))
    return out


@st.composite
def np_rule(draw: st.DrawFn, peer_field: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out[peer_field] = draw(st.lists(np_peer(), max_size=2))
    if draw(st.booleans()):
        out["ports"] = draw(st.lists(np_port(), max_size=2))
    return out


@st.composite
def network_policy(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selector())}
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(np_rule("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(np_rule("to"), max_size=2))
    if draw(st.booleans()):
        spec["policyTypes"] = draw(
            st.lists(st.sampled_from(["Ingress", "Egress"]), min_size=1, max_size=2, unique=True)
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"np{index}", "namespace": draw(st.sampled_from(NAMESPACES))},
        "spec": spec,
    }


@st.composite
def admin_peer(draw: st.DrawFn, egress: bool) -> dict[str, Any]:
    kinds = ["namespaces", "pods"] + (["networks", "nodes"] if egress else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "namespaces":
        return {"namespaces": draw(ns_selector())}
    if kind == "pods":
        return {"pods": {"namespaceSelector": draw(ns_selector()), "podSelector": draw(selector())}}
    if kind == "nodes":
        return {"nodes": draw(selector())}
    return {"networks": draw(st.lists(st.sampled_from(CIDRS), min_size=1, max_size=2, unique=True))}


@st.composite
def admin_port(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["portNumber", "namedPort", "portRange"]))
    proto = draw(st.sampled_from(["TCP", "UDP", "SCTP"]))
    if kind == "portNumber":
        return {"portNumber": {"protocol": proto, "port": draw(st.sampled_from(PORTS))}}
    if kind == "namedPort":
        return {"namedPort": draw(st.sampled_from(PORT_NAMES))}
    lo = draw(st.sampled_from(PORTS))
    return {"portRange": {"protocol": proto, "start": lo, "end": lo + draw(st.sampled_from([1, 30, 400]))}}


@st.composite
def admin_rule(draw: st.DrawFn, direction: str, actions: list[str], index: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"r{index}",
        "action": draw(st.sampled_from(actions)),
        ("from" if direction == "ingress" else "to"): draw(
            st.lists(admin_peer(direction == "egress"), min_size=1, max_size=2)
        ),
    }
    if draw(st.booleans()):
        out["ports"] = draw(st.lists(admin_port(), min_size=1, max_size=2))
    return out


@st.composite
def admin_policy(draw: st.DrawFn, index: int, baseline: bool) -> dict[str, Any]:
    actions = ["Allow", "Deny"] if baseline else ["Allow", "Deny", "Pass"]
    subject = (
        {"namespaces": draw(ns_selector())}
        if draw(st.booleans())
        else {"pods": {"namespaceSelector": draw(ns_selector()), "podSelector": draw(selector())}}
    )
    spec: dict[str, Any] = {"subject": subject}
    if not baseline:
        spec["priority"] = draw(st.integers(0, 3))
    n_in = draw(st.integers(0, 2))
    n_eg = draw(st.integers(0, 2))
    if n_in:
        spec["ingress"] = [draw(admin_rule("ingress", actions, i)) for i in range(n_in)]
    if n_eg:
        spec["egress"] = [draw(admin_rule("egress", actions, i)) for i in range(n_eg)]
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy" if baseline else "AdminNetworkPolicy",
        "metadata": {"name": "default" if baseline else f"anp{index}"},
        "spec": spec,
    }


@st.composite
def pod(draw: st.DrawFn, index: int, address: str | None) -> dict[str, Any]:
    ports = []
    for name, proto, number in (
        ("http", "TCP", draw(st.sampled_from([80, 8080]))),
        ("dns", "UDP", 53),
        ("metrics", draw(st.sampled_from(["TCP", "SCTP"])), 9090),
    ):
        if draw(st.booleans()):
            ports.append({"name": name, "containerPort": number, "protocol": proto})
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p{index}", "namespace": draw(st.sampled_from(NAMESPACES)), "labels": draw(labels)},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": ports}]},
    }
    if address is not None:
        out["status"] = {"podIP": address}
    return out


@st.composite
def cluster_manifests(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for ns in NAMESPACES:
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": draw(labels)}})
    n_pods = draw(st.integers(1, 5))
    addresses = draw(st.lists(st.sampled_from(ADDRESSES[:5]), min_size=n_pods, max_size=n_pods, unique=True))
    for i in range(n_pods):
        docs.append(draw(pod(i, addresses[i] if draw(st.booleans()) else None)))
    for i in range(draw(st.integers(0, 4))):
        docs.append(draw(network_policy(i)))
    for i in range(draw(st.integers(0, 2))):
        docs.append(draw(admin_policy(i, baseline=False)))
    if draw(st.booleans()):
        docs.append(draw(admin_policy(0, baseline=True)))
    return docs
