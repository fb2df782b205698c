"""The objects podnet reasons about, after validation: immutable dataclasses, no I/O."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from podnet.k8s.selectors import LabelSelector

Protocol = Literal["TCP", "UDP", "SCTP"]
PROTOCOLS: tuple[Protocol, ...] = ("TCP", "UDP", "SCTP")
Direction = Literal["ingress", "egress"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NS_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object came from: file (or ``-`` for stdin) and document index (from 0).

    ``items`` holds the indexes inside ``kind: List`` documents (outermost first), empty otherwise.
    """

    file: str
    doc: int
    items: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}[doc {self.doc}]" + "".join(f".items[{i}]" for i in self.items)

    def item_source(self, index: int) -> Source:
        """Where item ``index`` of the List at this source came from."""
        return Source(self.file, self.doc, (*self.items, index))


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: dict[str, str]
    defined: bool = True
    audit: bool = False  # annotated podnet.io/audit: "true": its NetworkPolicies are in audit mode


@dataclass(frozen=True, slots=True)
class ContainerPort:
    port: int
    protocol: Protocol = "TCP"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    """A Pod, or the pod template of a workload standing for its pods (``kind`` tells which)."""

    namespace: str
    name: str
    labels: dict[str, str]
    ports: tuple[ContainerPort, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    kind: str = "Pod"
    owner: str | None = None
    node_name: str | None = None
    source: Source | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: Protocol | None) -> list[tuple[Protocol, int]]:
        """The (protocol, number) pairs a named port resolves to on this pod."""
        return [
            (p.protocol, p.port) for p in self.ports if p.name == name and (protocol is None or p.protocol == protocol)
        ]


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One entry of a rule's ``ports``: a number or range, a named port, or a whole protocol."""

    protocol: Protocol | None
    port: int | None = None
    end_port: int | None = None
    name: str | None = None

    def describe(self) -> str:
        proto = self.protocol or "any"
        if self.name is not None:
            return f"{proto}/{self.name}"
        if self.port is None:
            return f"{proto}/*"
        if self.end_port is not None and self.end_port != self.port:
            return f"{proto}/{self.port}-{self.end_port}"
        return f"{proto}/{self.port}"


@dataclass(frozen=True, slots=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, addr: IPAddress) -> bool:
        if addr.version != self.cidr.version or addr not in self.cidr:
            return False
        return not any(addr in e for e in self.excepts)

    def describe(self) -> str:
        if self.excepts:
            return f"{self.cidr} except {', '.join(str(e) for e in self.excepts)}"
        return str(self.cidr)


@dataclass(frozen=True, slots=True)
class Peer:
    """A NetworkPolicy peer: pods chosen by selectors, or an ipBlock.

    ``namespace_selector`` None with a pod selector means the policy's own namespace.
    """

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block.describe()}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector.describe()}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector.describe()}")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class Rule:
    """One ingress or egress rule of a NetworkPolicy. ``peers`` None: every peer; ``ports`` None: every port."""

    peers: tuple[Peer, ...] | None
    ports: tuple[PortSpec, ...] | None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    ingress_isolation: bool
    egress_isolation: bool
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    audit: bool = False
    source: Source | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


AdminAction = Literal["Allow", "Deny", "Pass"]


@dataclass(frozen=True, slots=True)
class AdminPeer:
    """An (Baseline)AdminNetworkPolicy peer or subject: namespaces, pods in namespaces, or networks."""

    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    networks: tuple[IPNetwork, ...] = ()
    nodes: LabelSelector | None = None  # node peers: podnet models no nodes offline, so they select nothing

    def describe(self) -> str:
        if self.nodes is not None:
            return f"nodes {self.nodes.describe()}"
        if self.networks:
            return f"networks {', '.join(str(n) for n in self.networks)}"
        ns = self.namespace_selector.describe() if self.namespace_selector is not None else "{}"
        if self.pod_selector is None:
            return f"namespaces {ns}"
        return f"pods {self.pod_selector.describe()} in namespaces {ns}"


@dataclass(frozen=True, slots=True)
class AdminRule:
    name: str
    action: AdminAction
    peers: tuple[AdminPeer, ...]
    ports: tuple[PortSpec, ...] | None


@dataclass(frozen=True, slots=True)
class AdminNetworkPolicy:
    """An AdminNetworkPolicy, or the BaselineAdminNetworkPolicy when ``baseline`` is set (priority unused)."""

    name: str
    priority: int
    subject: AdminPeer
    ingress: tuple[AdminRule, ...] = ()
    egress: tuple[AdminRule, ...] = ()
    baseline: bool = False
    source: Source | None = None

    @property
    def kind(self) -> str:
        return "BaselineAdminNetworkPolicy" if self.baseline else "AdminNetworkPolicy"


@dataclass
class Cluster:
    """Everything loaded from a set of manifests."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    policies: list[NetworkPolicy] = field(default_factory=list)
    admin_policies: list[AdminNetworkPolicy] = field(default_factory=list)
    baseline: AdminNetworkPolicy | None = None
    warnings: list[str] = field(default_factory=list)

    def namespace(self, name: str) -> Namespace:
        """The namespace ``name``; one referenced but not defined exists with only its name label."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = Namespace(name, {NS_NAME_LABEL: name}, defined=False)
            self.namespaces[name] = ns
        return ns
