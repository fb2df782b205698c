"""NetworkPolicies that allow exactly the observed forwarded connections: a starting point for default deny.

Pure: flows in, manifest objects (plain dicts, ready for YAML or JSON) out; no I/O.

How flows become policies:

- Flows are grouped into **connections** by their 5-tuple (addresses, protocol, ports). A pod-to-pod connection
  is judged twice (the source's egress and the destination's ingress), so it usually has two flows. A connection
  counts when at least one of its flows is FORWARDED and none was DROPPED (AUDIT flows, which would have been
  dropped, count as forwarded only with ``include_audit``). Replies, and protocols NetworkPolicy cannot name
  (ICMP), are left out with a note.
- Each side is a **workload** (namespace and the flow's workload name, or the pod name without one), or an
  address outside the cluster. A workload is selected by the labels all its observed pods share, minus labels
  that change between pods or rollouts (``pod-template-hash``, ``controller-revision-hash``, …) and Hubble's
  pseudo labels (``io.kubernetes.pod.namespace``, ``io.cilium.*``).
- Every workload in scope gets an ingress and an egress policy (``<workload>-ingress`` / ``-egress``) listing
  the peers and ports it was seen to use; a workload never seen in one direction gets a policy with no rules,
  which denies that direction. Pod peers are a ``namespaceSelector`` on ``kubernetes.io/metadata.name`` and a
  ``podSelector`` on the peer workload's labels (a bare ``podSelector`` in the policy's own namespace); outside
  addresses are ``ipBlock``\\ s, /32 (/128) or grouped to ``cidr_prefix``. Peers with the same ports share a rule.

Where labels cannot tell two workloads apart (one's labels are a subset of another's, or a workload has no
labels), the suggestion allows more than was observed: :attr:`Suggestion.warnings` says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podnet.flows.model import Flow, FlowEndpoint
from podnet.k8s.model import NS_NAME_LABEL, PROTOCOLS, IPAddress, IPNetwork, Protocol

MANAGED_BY = "podnet-policy-suggest"
# Labels that differ between the pods of one workload, or between rollouts of it.
UNSTABLE_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-completion-index",
    }
)
PSEUDO_LABEL_PREFIXES = ("io.kubernetes.pod.namespace", "io.cilium.")


@dataclass(frozen=True, slots=True, order=True)
class WorkloadKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Side:
    """One end of a connection: a pod of a workload, or an address outside the cluster (``workload`` None)."""

    address: str
    workload: WorkloadKey | None = None
    pod: str = ""

    @property
    def ref(self) -> str:
        """The analyzer's reference: ``ns/pod`` or ``ip:ADDR``."""
        return f"{self.workload.namespace}/{self.pod}" if self.workload is not None else f"ip:{self.address}"


@dataclass(frozen=True, slots=True)
class Connection:
    src: Side
    dst: Side
    protocol: Protocol
    port: int


@dataclass
class Workload:
    key: WorkloadKey
    labels: dict[str, str]  # the stable labels every observed pod of it carries
    pods: dict[str, dict[str, str]] = field(default_factory=dict)  # pod name → its stable labels
    addresses: dict[str, set[str]] = field(default_factory=dict)  # pod name → addresses seen


@dataclass
class Suggestion:
    policies: list[dict[str, Any]]
    connections: list[Connection]
    workloads: dict[WorkloadKey, Workload]
    warnings: list[str]
    notes: list[str]


def stable_labels(ep: FlowEndpoint) -> dict[str, str]:
    """The endpoint's Kubernetes labels that identify its workload (no pseudo or per-pod labels)."""
    out: dict[str, str] = {}
    for label in ep.labels:
        source, colon, kv = label.partition(":")
        if colon and source != "k8s":
            continue  # reserved:, cidr:, container: … are not pod labels
        key, _, value = (kv if colon else label).partition("=")
        if key in UNSTABLE_LABELS or key.startswith(PSEUDO_LABEL_PREFIXES):
            continue
        out[key] = value
    return out


def _workload_key(ep: FlowEndpoint) -> WorkloadKey | None:
    if not ep.namespace or not (ep.pod_name or ep.workloads):
        return None
    name = ep.workloads[0].name if ep.workloads else ep.pod_name
    return WorkloadKey(ep.namespace, name)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _protocol(text: str) -> Protocol | None:
    for p in PROTOCOLS:
        if p == text:
            return p
    return None


def connections(flows: Iterable[Flow], include_audit: bool = False) -> tuple[list[Connection], list[str]]:
    """The connections that got through, in the order first seen, and notes on what was left out."""
    passing = ("FORWARDED", "AUDIT") if include_audit else ("FORWARDED",)
    seen: dict[tuple[str, str, str, int, int], tuple[Flow, bool]] = {}  # 5-tuple → (first flow, all passed)
    skipped: dict[str, int] = {}
    for f in flows:
        if f.is_reply:
            skipped["reply flows"] = skipped.get("reply flows", 0) + 1
            continue
        if _protocol(f.protocol) is None or not 0 < f.destination_port < 65536:
            what = f"{f.protocol or 'unknown protocol'} flows (NetworkPolicy names only TCP, UDP and SCTP ports)"
            skipped[what] = skipped.get(what, 0) + 1
            continue
        key = (f.ip_source, f.ip_destination, f.protocol, f.source_port, f.destination_port)
        first, ok = seen.get(key, (f, True))
        seen[key] = (first, ok and f.verdict in passing)
    out: list[Connection] = []
    unique: set[Connection] = set()
    denied = 0
    no_address = 0
    for first, ok in seen.values():
        if not ok:
            denied += 1
            continue
        proto = _protocol(first.protocol)
        assert proto is not None
        src_wl, dst_wl = _workload_key(first.source), _workload_key(first.destination)
        if (src_wl is None and not _is_address(first.ip_source)) or (
            dst_wl is None and not _is_address(first.ip_destination)
        ):
            no_address += 1
            continue
        conn = Connection(
            Side(first.ip_source, src_wl, first.source.pod_name or (src_wl.name if src_wl else "")),
            Side(first.ip_destination, dst_wl, first.destination.pod_name or (dst_wl.name if dst_wl else "")),
            proto,
            first.destination_port,
        )
        if conn not in unique:
            unique.add(conn)
            out.append(conn)
    if no_address:
        skipped["flows without a pod or an address on one side"] = no_address
    notes = [f"left out {n} {what}" for what, n in sorted(skipped.items())]
    if denied:
        verdicts = "DROPPED" if include_audit else "DROPPED or AUDIT"
        notes.append(f"left out {denied} connection(s) with a {verdicts} flow")
    return out, notes


def workloads(flows: Iterable[Flow]) -> dict[WorkloadKey, Workload]:
    """Every workload on either side of the flows, with the labels all its observed pods share.

    An observation without any label (a pod the agent had not enriched yet) says nothing about labels.
    """
    out: dict[WorkloadKey, Workload] = {}
    seen_labels: dict[WorkloadKey, list[dict[str, str]]] = {}
    for f in flows:
        for ep, addr in ((f.source, f.ip_source), (f.destination, f.ip_destination)):
            key = _workload_key(ep)
            if key is None:
                continue
            labels = stable_labels(ep)
            pod = ep.pod_name or key.name
            wl = out.get(key)
            if wl is None:
                wl = out[key] = Workload(key, {})
            if labels:
                seen_labels.setdefault(key, []).append(labels)
            if labels or pod not in wl.pods:
                wl.pods[pod] = labels
            if addr:
                wl.addresses.setdefault(pod, set()).add(addr)
    for key, wl in out.items():
        observed = seen_labels.get(key, [])
        if observed:
            first, *rest = observed
            wl.labels = {k: v for k, v in first.items() if all(other.get(k) == v for other in rest)}
    return out


def _network(address: str, prefix_v4: int, prefix_v6: int) -> IPNetwork:
    addr: IPAddress = ipaddress.ip_address(address)
    return ipaddress.ip_network(f"{addr}/{prefix_v4 if addr.version == 4 else prefix_v6}", strict=False)


def _selector(labels: dict[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(sorted(labels.items()))} if labels else {}


PeerKey = WorkloadKey | IPNetwork


def _peer_sort(p: PeerKey) -> tuple[int, str, str]:
    if isinstance(p, WorkloadKey):
        return (0, p.namespace, p.name)
    return (1 + (p.version == 6), f"{int(p.network_address):040d}", str(p.prefixlen))


def _rules(
    policy_ns: str,
    peers: dict[PeerKey, set[tuple[Protocol, int]]],
    wls: dict[WorkloadKey, Workload],
    peer_field: str,
) -> list[dict[str, Any]]:
    """One rule per distinct port set; its peers in order (pods first, then address blocks, collapsed)."""
    by_ports: dict[frozenset[tuple[Protocol, int]], list[PeerKey]] = {}
    for peer, used in peers.items():
        by_ports.setdefault(frozenset(used), []).append(peer)
    rules: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for ports, members in by_ports.items():
        entries: list[dict[str, Any]] = []
        pods = sorted((m for m in members if isinstance(m, WorkloadKey)), key=_peer_sort)
        for wl in pods:
            entry: dict[str, Any] = {}
            if wl.namespace != policy_ns:
                entry["namespaceSelector"] = {"matchLabels": {NS_NAME_LABEL: wl.namespace}}
            entry["podSelector"] = _selector(wls[wl].labels)
            entries.append(entry)
        nets = [m for m in members if not isinstance(m, WorkloadKey)]
        for version in (4, 6):
            same = [n for n in nets if n.version == version]
            for net in ipaddress.collapse_addresses(same):  # type: ignore[type-var]
                entries.append({"ipBlock": {"cidr": str(net)}})
        port_list = [{"protocol": proto, "port": port} for proto, port in sorted(ports)]
        order = (min(_peer_sort(m) for m in members), sorted(ports))
        rules.append((order, {peer_field: entries, "ports": port_list}))
    return [rule for _, rule in sorted(rules, key=lambda r: r[0])]


def _policy(wl: Workload, direction: str, rules: list[dict[str, Any]], observed: int) -> dict[str, Any]:
    types = "Ingress" if direction == "ingress" else "Egress"
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{wl.key.name}-{direction}",
            "namespace": wl.key.namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
            "annotations": {"podnet.io/observed-connections": str(observed)},
        },
        "spec": {"podSelector": _selector(wl.labels), "policyTypes": [types], direction: rules},
    }


def _overlaps(wls: dict[WorkloadKey, Workload]) -> list[tuple[str, str]]:
    """(namespace, warning) for every selector that selects pods of another workload too."""
    out: list[tuple[str, str]] = []
    keys = sorted(wls)
    for a in keys:
        sel = wls[a].labels
        if not sel:
            out.append((a.namespace, f"{a} has no stable labels: its selector selects every pod of {a.namespace}"))
            continue
        for b in keys:
            if (
                a != b
                and a.namespace == b.namespace
                and any(all(pod.get(k) == v for k, v in sel.items()) for pod in wls[b].pods.values())
            ):
                out.append((a.namespace, f"the labels of {a} ({_text(sel)}) also select {b}: it gets {a}'s rules"))
    return out


def _text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def suggest(
    flows: Iterable[Flow],
    namespace: str | None = None,
    include_audit: bool = False,
    cidr_prefix: tuple[int, int] = (32, 128),
) -> Suggestion:
    """Policies for every workload (of ``namespace``, or all) allowing exactly the connections seen."""
    prefix_v4, prefix_v6 = cidr_prefix
    if not 0 <= prefix_v4 <= 32 or not 0 <= prefix_v6 <= 128:
        raise ValueError("cidr prefix: IPv4 0-32, IPv6 0-128")
    flow_list = list(flows)
    conns, notes = connections(flow_list, include_audit)
    wls = workloads(flow_list)
    ingress: dict[WorkloadKey, dict[PeerKey, set[tuple[Protocol, int]]]] = {}
    egress: dict[WorkloadKey, dict[PeerKey, set[tuple[Protocol, int]]]] = {}
    counts: dict[tuple[WorkloadKey, str], int] = {}
    for c in conns:
        port = (c.protocol, c.port)
        if c.dst.workload is not None:
            peer: PeerKey = c.src.workload or _network(c.src.address, prefix_v4, prefix_v6)
            ingress.setdefault(c.dst.workload, {}).setdefault(peer, set()).add(port)
            counts[(c.dst.workload, "ingress")] = counts.get((c.dst.workload, "ingress"), 0) + 1
        if c.src.workload is not None:
            peer = c.dst.workload or _network(c.dst.address, prefix_v4, prefix_v6)
            egress.setdefault(c.src.workload, {}).setdefault(peer, set()).add(port)
            counts[(c.src.workload, "egress")] = counts.get((c.src.workload, "egress"), 0) + 1
    policies: list[dict[str, Any]] = []
    scope = sorted(k for k in wls if namespace is None or k.namespace == namespace)
    for key in scope:
        wl = wls[key]
        for direction, table, peer_field in (("ingress", ingress, "from"), ("egress", egress, "to")):
            rules = _rules(key.namespace, table.get(key, {}), wls, peer_field)
            policies.append(_policy(wl, direction, rules, counts.get((key, direction), 0)))
    used = {p for k in scope for table in (ingress, egress) for p in table.get(k, {}) if isinstance(p, WorkloadKey)}
    used_ns = {k.namespace for k in (*scope, *used)}
    warnings = [w for ns, w in _overlaps(wls) if ns in used_ns]
    return Suggestion(policies, conns, wls, warnings, notes)
