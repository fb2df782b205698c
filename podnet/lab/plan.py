"""The shape of a lab, computed before anything is created: names, addresses, per-node pod CIDRs.

Pure: no I/O. Every kernel object of a lab carries the lab's prefix ``pnl-<name>-``, so teardown
removes exactly what the lab made, and two labs with different names never share an object.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from podnet.errors import UsageError

Routing = Literal["direct", "vxlan"]
UNDERLAY = ipaddress.IPv4Network("172.30.0.0/24")  # inside the lab's own namespaces only
VXLAN_ID = 4242
VXLAN_PORT = 4789
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    index: int
    netns: str
    underlay_ip: ipaddress.IPv4Address
    fabric_port: str  # the node's veth end in the fabric namespace, on the bridge
    uplink: str  # the node's veth end in its own namespace
    pod_cidr: ipaddress.IPv4Network


@dataclass(frozen=True, slots=True)
class LabPlan:
    name: str
    prefix: str
    fabric_netns: str
    bridge: str
    routing: Routing
    cluster_cidr: ipaddress.IPv4Network
    nodes: tuple[NodePlan, ...]

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise UsageError(f"lab {self.name} has no node {name!r}")

    def pod_netns(self, namespace: str, pod: str) -> str:
        digest = hashlib.sha256(f"{namespace}/{pod}".encode()).hexdigest()[:10]
        return f"{self.prefix}p{digest}"


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"lab name {name!r}: use 1-12 lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    return name


def make_plan(name: str, nodes: int, cluster_cidr: str, routing: Routing) -> LabPlan:
    """Split ``cluster_cidr`` into one /24 (or smaller block) per node and name every object."""
    validate_name(name)
    if not 1 <= nodes <= 16:
        raise UsageError(f"--nodes {nodes}: a lab has 1 to 16 nodes")
    try:
        cidr = ipaddress.ip_network(cluster_cidr)
    except ValueError as exc:
        raise UsageError(f"--pod-cidr {cluster_cidr!r}: not a CIDR ({exc})") from exc
    if not isinstance(cidr, ipaddress.IPv4Network):
        raise UsageError("--pod-cidr: the lab's cluster CIDR is IPv4")
    node_prefix = max(24, cidr.prefixlen + (nodes - 1).bit_length())
    if node_prefix > 28:
        raise UsageError(f"--pod-cidr {cluster_cidr}: too small for {nodes} nodes")
    blocks = list(cidr.subnets(new_prefix=node_prefix)) if node_prefix > cidr.prefixlen else [cidr]
    if len(blocks) < nodes:
        raise UsageError(f"--pod-cidr {cluster_cidr}: too small for {nodes} nodes")
    prefix = f"pnl-{name}-"
    hosts: list[ipaddress.IPv4Address] = list(UNDERLAY.hosts())
    plans = tuple(
        NodePlan(
            name=f"node{i}",
            index=i,
            netns=f"{prefix}n{i}",
            underlay_ip=hosts[i],
            fabric_port=f"pnf{i}",
            uplink="uplink0",
            pod_cidr=blocks[i],
        )
        for i in range(nodes)
    )
    return LabPlan(name, prefix, f"{prefix}fabric", "br0", routing, cidr, plans)
