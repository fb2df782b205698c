"""The drawing model of one policy: its selected pods in the middle, ingress peers left, egress peers right.

Every box and edge carries the YAML field path it was read from (``spec.ingress[0].from[1]``), so the
editor can open the right form and write the change back to the right place. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from podnet.k8s.model import (
    NS_NAME_LABEL,
    AdminNetworkPolicy,
    AdminPeer,
    Cluster,
    NetworkPolicy,
    Peer,
    Pod,
    PortSpec,
    Source,
)
from podnet.k8s.selectors import LabelSelector

Scope = Literal["namespace", "cluster", "cidr", "any", "nodes"]


def _ns_labels(cluster: Cluster, name: str) -> dict[str, str]:
    ns = cluster.namespaces.get(name)
    return ns.labels if ns is not None else {NS_NAME_LABEL: name}


def _pods(
    cluster: Cluster, pod_sel: LabelSelector | None, ns_sel: LabelSelector | None, own_ns: str | None
) -> list[str]:
    """Pod refs (workload templates included) picked by a pod selector in ``own_ns`` or in selected namespaces."""
    out = []
    for pod in cluster.pods:
        if ns_sel is None:
            if pod.namespace != own_ns:
                continue
        elif not ns_sel.matches(_ns_labels(cluster, pod.namespace)):
            continue
        if pod_sel is not None and not pod_sel.matches(pod.labels):
            continue
        out.append(_pod_ref(pod))
    return sorted(out)


def _pod_ref(pod: Pod) -> str:
    return pod.ref if pod.kind == "Pod" else f"{pod.ref} ({pod.kind})"


def ports_text(ports: tuple[PortSpec, ...] | None) -> str:
    if ports is None:
        return "all ports"
    if not ports:
        return "no ports"
    return ", ".join(p.describe() for p in ports)


def _source(src: Source | None) -> dict[str, Any]:
    if src is None:
        return {"file": None, "doc": None, "items": []}
    return {"file": src.file, "doc": src.doc, "items": list(src.items)}


def _np_peer(cluster: Cluster, np: NetworkPolicy, peer: Peer) -> tuple[Scope, str, list[str]]:
    if peer.ip_block is not None:
        block = peer.ip_block
        hit = sorted(_pod_ref(p) for p in cluster.pods if any(block.contains(a) for a in p.ips))
        return "cidr", block.describe(), hit
    pods = _pods(cluster, peer.pod_selector, peer.namespace_selector, np.namespace)
    if peer.namespace_selector is None:
        return "namespace", f"pods {peer.pod_selector.describe() if peer.pod_selector else ''} in {np.namespace}", pods
    label = f"namespaces {peer.namespace_selector.describe()}"
    if peer.pod_selector is not None:
        label = f"pods {peer.pod_selector.describe()} in {label}"
    return "cluster", label, pods


def network_policy_graph(cluster: Cluster, np: NetworkPolicy) -> dict[str, Any]:
    peers: dict[str, list[dict[str, Any]]] = {"ingress": [], "egress": []}
    edges: list[dict[str, Any]] = []
    for direction, rules, field in (("ingress", np.ingress, "from"), ("egress", np.egress, "to")):
        for ri, rule in enumerate(rules):
            rpath = f"spec.{direction}[{ri}]"
            items: list[tuple[str, Scope, str, list[str]]] = []
            if rule.peers is None:
                label = "every source" if direction == "ingress" else "every destination"
                items.append((rpath, "any", label + " (in and outside the cluster)", []))
            else:
                for pi, peer in enumerate(rule.peers):
                    scope, label, pods = _np_peer(cluster, np, peer)
                    items.append((f"{rpath}.{field}[{pi}]", scope, label, pods))
            for path, scope, label, pods in items:
                peer_node, edge = _peer_and_edge(direction, rpath, ri, path, scope, label, pods, rule.ports, "Allow")
                peers[direction].append(peer_node)
                edges.append(edge)
    return {
        "kind": "NetworkPolicy",
        "name": np.name,
        "namespace": np.namespace,
        "ref": np.ref,
        **_source(np.source),
        "subject": {
            "path": "spec.podSelector",
            "label": f"pods {np.pod_selector.describe()} in {np.namespace}",
            "selects": _pods(cluster, np.pod_selector, None, np.namespace),
        },
        "isolation": {"ingress": np.ingress_isolation, "egress": np.egress_isolation},
        "peers": peers,
        "edges": edges,
    }


def _peer_and_edge(
    direction: str,
    rpath: str,
    ri: int,
    path: str,
    scope: Scope,
    label: str,
    pods: list[str],
    ports: tuple[PortSpec, ...] | None,
    action: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A peer box and the edge from it to the selected pods (ports and action on the edge)."""
    node_id = f"{direction}:{path}"
    peer_node = {"id": node_id, "path": path, "rule": ri, "scope": scope, "label": label, "selects": pods}
    edge = {
        "id": f"edge:{path}",
        "direction": direction,
        "peer": node_id,
        "rule": ri,
        "path": rpath,
        "ports": ports_text(ports),
        "action": action,
    }
    return peer_node, edge


def _admin_peer(cluster: Cluster, peer: AdminPeer) -> tuple[Scope, str, list[str]]:
    if peer.nodes is not None:
        return "nodes", peer.describe(), []
    if peer.networks:
        hit = sorted(_pod_ref(p) for p in cluster.pods if any(a in n for a in p.ips for n in peer.networks))
        return "cidr", peer.describe(), hit
    ns_sel = peer.namespace_selector if peer.namespace_selector is not None else LabelSelector()
    return "cluster", peer.describe(), _pods(cluster, peer.pod_selector, ns_sel, None)


def admin_policy_graph(cluster: Cluster, anp: AdminNetworkPolicy) -> dict[str, Any]:
    peers: dict[str, list[dict[str, Any]]] = {"ingress": [], "egress": []}
    edges: list[dict[str, Any]] = []
    for direction, rules, field in (("ingress", anp.ingress, "from"), ("egress", anp.egress, "to")):
        for ri, rule in enumerate(rules):
            rpath = f"spec.{direction}[{ri}]"
            for pi, peer in enumerate(rule.peers):
                scope, label, pods = _admin_peer(cluster, peer)
                path = f"{rpath}.{field}[{pi}]"
                peer_node, edge = _peer_and_edge(
                    direction, rpath, ri, path, scope, label, pods, rule.ports, rule.action
                )
                peers[direction].append(peer_node)
                edges.append({**edge, "name": rule.name})
    _, subject_label, subject_pods = _admin_peer(cluster, anp.subject)
    return {
        "kind": anp.kind,
        "name": anp.name,
        "namespace": None,
        "ref": anp.name,
        "priority": None if anp.baseline else anp.priority,
        **_source(anp.source),
        "subject": {"path": "spec.subject", "label": subject_label, "selects": subject_pods},
        "isolation": {"ingress": False, "egress": False},
        "peers": peers,
        "edges": edges,
    }


def policy_graphs(cluster: Cluster) -> list[dict[str, Any]]:
    """One drawing model per policy of the cluster: admin tiers first (by priority), then NetworkPolicies."""
    admin = sorted(cluster.admin_policies, key=lambda a: (a.priority, a.name))
    out = [admin_policy_graph(cluster, a) for a in admin]
    if cluster.baseline is not None:
        out.append(admin_policy_graph(cluster, cluster.baseline))
    out += [network_policy_graph(cluster, np) for np in cluster.policies]
    return out
