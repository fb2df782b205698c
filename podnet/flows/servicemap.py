"""A service map built from flows: who talks to whom, on which port, and what the policies said.

Pure: no I/O, no locks (the owner serialises :meth:`ServiceMap.add`). Built incrementally, one flow at a
time, so a live stream keeps it current; :meth:`ServiceMap.add` tells what changed.

- **Nodes**: namespaces (``namespace:<ns>``), workloads inside them (``<ns>/<workload>``: the flow endpoint's
  first workload, or the pod name when it names none), and special nodes for what is no pod: ``world``
  (``reserved:world``, ``cidr:`` labels), ``host`` (``reserved:host``) and ``unknown`` (no namespace, no label).
- **Edges**: one per (source node, destination node, protocol, destination port), with the number of flows per
  verdict (FORWARDED, DROPPED, AUDIT), the drop reasons, and the policy rules that decided (``allowed_by`` /
  ``denied_by``, each with how many flows it decided). A pod-to-pod connection is judged on both veths, so it
  counts two flows (one per side, each naming its own rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .model import Flow, FlowEndpoint, RuleName, Verdict

NodeKind = Literal["namespace", "workload", "world", "host", "unknown"]
VERDICTS: tuple[Verdict, ...] = ("FORWARDED", "DROPPED", "AUDIT")
MAX_ADDRESSES = 16  # addresses remembered per special node (world, host, unknown)


@dataclass
class Node:
    id: str
    kind: NodeKind
    name: str
    namespace: str = ""
    parent: str = ""  # a workload's namespace node
    pods: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)  # the labels every seen pod of a workload shares
    addresses: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.parent:
            out["parent"] = self.parent
        if self.kind == "workload":
            out["pods"] = sorted(self.pods)
            out["labels"] = dict(sorted(self.labels.items()))
        if self.addresses:
            out["addresses"] = sorted(self.addresses)
        return out


@dataclass
class Edge:
    id: str
    source: str
    target: str
    protocol: str
    port: int
    verdicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    drop_reasons: dict[str, int] = field(default_factory=dict)
    allowed_by: dict[RuleName, int] = field(default_factory=dict)
    denied_by: dict[RuleName, int] = field(default_factory=dict)
    first_ns: int = 0
    last_ns: int = 0

    @property
    def verdict(self) -> str:
        """What colours the edge: the one verdict its flows had, or ``MIXED``."""
        seen = [v for v in VERDICTS if self.verdicts[v]]
        return seen[0] if len(seen) == 1 else "MIXED"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "target": self.target,
            "protocol": self.protocol,
            "port": self.port,
            "verdict": self.verdict,
            "flows": sum(self.verdicts.values()),
            "verdicts": dict(self.verdicts),
            "drop_reasons": dict(sorted(self.drop_reasons.items())),
            "allowed_by": _rules_json(self.allowed_by),
            "denied_by": _rules_json(self.denied_by),
            "first_seen": _stamp(self.first_ns),
            "last_seen": _stamp(self.last_ns),
        }


def _rules_json(rules: dict[RuleName, int]) -> list[dict[str, Any]]:
    return [
        {"rule": r.to_json(), "text": str(r), "flows": n}
        for r, n in sorted(rules.items(), key=lambda item: (-item[1], str(item[0])))
    ]


def _stamp(ns: int) -> str:
    secs, nanos = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(secs, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@dataclass(frozen=True, slots=True)
class Update:
    """What one flow changed: nodes that appeared, and the edge it counted in (``edge_new``: it appeared)."""

    nodes: tuple[Node, ...]
    edge: Edge
    edge_new: bool

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [n.to_json() for n in self.nodes], "edge": self.edge.to_json(), "edge_new": self.edge_new}


def _labels(ep: FlowEndpoint) -> dict[str, str]:
    return {k: v for k, v in ep.label_map().items() if k != "io.kubernetes.pod.namespace"}


def node_of(ep: FlowEndpoint) -> tuple[str, NodeKind, str, str]:
    """(id, kind, name, namespace) of the node an endpoint belongs to."""
    if ep.namespace and (ep.pod_name or ep.workloads):
        name = ep.workloads[0].name if ep.workloads else ep.pod_name
        return f"{ep.namespace}/{name}", "workload", name, ep.namespace
    if "reserved:host" in ep.labels:
        return "host", "host", "host", ""
    if any(label == "reserved:world" or label.startswith("cidr:") for label in ep.labels):
        return "world", "world", "world", ""
    return "unknown", "unknown", "unknown", ""


class ServiceMap:
    """Nodes and edges from flows; :meth:`add` one flow at a time, :meth:`to_json` for a snapshot."""

    def __init__(self, flows: Iterable[Flow] = ()) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: dict[str, Edge] = {}
        self.flows = 0
        for f in flows:
            self.add(f)

    def _node(self, ep: FlowEndpoint, address: str, new: list[Node]) -> str:
        node_id, kind, name, namespace = node_of(ep)
        node = self.nodes.get(node_id)
        if kind == "workload":
            ns_id = f"namespace:{namespace}"
            if ns_id not in self.nodes:
                self.nodes[ns_id] = Node(ns_id, "namespace", namespace)
                new.append(self.nodes[ns_id])
            labels = _labels(ep)
            if node is None:
                node = self.nodes[node_id] = Node(node_id, kind, name, namespace, ns_id, labels=labels)
                new.append(node)
            elif ep.pod_name not in node.pods:
                node.labels = {k: v for k, v in node.labels.items() if labels.get(k) == v}
            if ep.pod_name:
                node.pods.add(ep.pod_name)
        else:
            if node is None:
                node = self.nodes[node_id] = Node(node_id, kind, name)
                new.append(node)
            if address and len(node.addresses) < MAX_ADDRESSES:
                node.addresses.add(address)
        return node_id

    def add(self, flow: Flow) -> Update:
        new: list[Node] = []
        src = self._node(flow.source, flow.ip_source, new)
        dst = self._node(flow.destination, flow.ip_destination, new)
        edge_id = f"{src}->{dst}:{flow.protocol}/{flow.destination_port}"
        edge = self.edges.get(edge_id)
        created = edge is None
        if edge is None:
            edge = self.edges[edge_id] = Edge(edge_id, src, dst, flow.protocol, flow.destination_port)
            edge.first_ns = flow.time_ns
        edge.first_ns = min(edge.first_ns, flow.time_ns)
        edge.last_ns = max(edge.last_ns, flow.time_ns)
        edge.verdicts[flow.verdict] = edge.verdicts.get(flow.verdict, 0) + 1
        if flow.drop_reason_desc:
            edge.drop_reasons[flow.drop_reason_desc] = edge.drop_reasons.get(flow.drop_reason_desc, 0) + flow.count
        for rule in flow.allowed_by:
            edge.allowed_by[rule] = edge.allowed_by.get(rule, 0) + 1
        for rule in flow.denied_by:
            edge.denied_by[rule] = edge.denied_by.get(rule, 0) + 1
        self.flows += 1
        return Update(tuple(new), edge, created)

    def to_json(self) -> dict[str, Any]:
        order = {"namespace": 0, "workload": 1, "world": 2, "host": 3, "unknown": 4}
        nodes = sorted(self.nodes.values(), key=lambda n: (order[n.kind], n.namespace, n.id))
        return {
            "flows": self.flows,
            "nodes": [n.to_json() for n in nodes],
            "edges": [e.to_json() for e in sorted(self.edges.values(), key=lambda e: e.id)],
        }
