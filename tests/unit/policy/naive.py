"""A direct, slow reading of the specification: the yardstick the compiler is checked against."""

from __future__ import annotations

from podnet.k8s.model import AdminNetworkPolicy, AdminPeer, Cluster, Direction, IPAddress, Peer, Pod, PortSpec

Party = Pod | IPAddress


def _addrs(x: Party) -> tuple[IPAddress, ...]:
    return x.ips if isinstance(x, Pod) else (x,)


def _np_peer(cluster: Cluster, peer: Peer, np_ns: str, other: Party) -> bool:
    if peer.ip_block is not None:
        return any(peer.ip_block.contains(a) for a in _addrs(other))
    if not isinstance(other, Pod):
        return False
    if peer.namespace_selector is None:
        ns_ok = other.namespace == np_ns
    else:
        ns_ok = peer.namespace_selector.matches(cluster.namespace(other.namespace).labels)
    return ns_ok and (peer.pod_selector is None or peer.pod_selector.matches(other.labels))


def _admin_peer(cluster: Cluster, peer: AdminPeer, other: Party) -> bool:
    if peer.nodes is not None:
        return False
    if peer.networks:
        return any(a in n for n in peer.networks for a in _addrs(other) if a.version == n.version)
    if not isinstance(other, Pod):
        return False
    assert peer.namespace_selector is not None
    if not peer.namespace_selector.matches(cluster.namespace(other.namespace).labels):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(other.labels)


def _ports(ports: tuple[PortSpec, ...] | None, proto: str, port: int, dest: Party) -> bool:
    if ports is None:
        return True
    for spec in ports:
        if spec.name is not None:
            if (
                isinstance(dest, Pod)
                and any(cp.name == spec.name and cp.port == port and cp.protocol == proto for cp in dest.ports)
                and (spec.protocol is None or spec.protocol == proto)
            ):
                return True
            continue
        if spec.protocol != proto:
            continue
        if spec.port is None:
            return True
        hi = spec.end_port if spec.end_port is not None else spec.port
        if spec.port <= port <= hi:
            return True
    return False


def _side(cluster: Cluster, subject: Pod, peer: Party, direction: Direction, proto: str, port: int) -> bool:
    dest: Party = subject if direction == "ingress" else peer
    anps: list[AdminNetworkPolicy] = sorted(cluster.admin_policies, key=lambda a: (a.priority, a.name))
    passed = False
    for anp in anps:
        if not _admin_peer(cluster, anp.subject, subject):
            continue
        for rule in anp.ingress if direction == "ingress" else anp.egress:
            if any(_admin_peer(cluster, p, peer) for p in rule.peers) and _ports(rule.ports, proto, port, dest):
                if rule.action == "Pass":
                    passed = True
                    break
                return rule.action == "Allow"
        if passed:
            break
    isolating = [
        np
        for np in cluster.policies
        if np.namespace == subject.namespace
        and np.pod_selector.matches(subject.labels)
        and (np.ingress_isolation if direction == "ingress" else np.egress_isolation)
    ]
    if isolating:
        for np in isolating:
            for rule in np.ingress if direction == "ingress" else np.egress:
                peers_ok = rule.peers is None or any(_np_peer(cluster, p, np.namespace, peer) for p in rule.peers)
                if peers_ok and _ports(rule.ports, proto, port, dest):
                    return True
        return False
    banp = cluster.baseline
    if banp is not None and _admin_peer(cluster, banp.subject, subject):
        for rule in banp.ingress if direction == "ingress" else banp.egress:
            if any(_admin_peer(cluster, p, peer) for p in rule.peers) and _ports(rule.ports, proto, port, dest):
                return rule.action == "Allow"
    return True


def allowed(cluster: Cluster, src: Party, dst: Party, proto: str, port: int) -> bool:
    ok = True
    if isinstance(src, Pod):
        ok = _side(cluster, src, dst, "egress", proto, port)
    if ok and isinstance(dst, Pod):
        ok = _side(cluster, dst, src, "ingress", proto, port)
    return ok
