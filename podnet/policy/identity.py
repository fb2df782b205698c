"""Security identities: one per distinct set of labels, plus CIDR identities for addresses.

A pod identity is keyed by everything a policy can tell pods apart by: its namespace (and so the
namespace's labels), its own labels, the named ports it declares (a named port in an egress rule
resolves against the destination) and which policy CIDRs its addresses fall in (ipBlock and ANP
``networks`` match pod addresses too). Every CIDR written in a policy becomes a CIDR identity; an
address outside all of them is ``world`` (one per address family).

CIDRs form a laminar family (two prefixes nest or are disjoint), so the CIDRs containing an address
are exactly the longest matching one and its ancestors: an LPM map from prefix to identity is exact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from podnet.k8s.model import NS_NAME_LABEL, AdminNetworkPolicy, Cluster, IPAddress, IPNetwork, Pod, Protocol

FIRST_POD_IDENTITY = 256
WORLD_V4 = 2
WORLD_V6 = 3
FIRST_CIDR_IDENTITY = 16
Membership = frozenset[IPNetwork]


@dataclass(frozen=True, slots=True)
class Identity:
    """One identity. ``memberships`` lists, per address, the policy CIDRs that contain it."""

    id: int
    kind: str  # "pod", "cidr" or "world"
    namespace: str | None = None
    labels: frozenset[tuple[str, str]] = frozenset()
    ns_labels: frozenset[tuple[str, str]] = frozenset()
    named_ports: frozenset[tuple[str, Protocol, int]] = frozenset()
    memberships: frozenset[Membership] = frozenset()
    cidr: IPNetwork | None = None

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def ns_label_dict(self) -> dict[str, str]:
        return dict(self.ns_labels)

    def in_cidr(self, cidr: IPNetwork, excepts: Iterable[IPNetwork] = ()) -> bool:
        """True when one of this identity's addresses is in ``cidr`` and in none of ``excepts``."""
        ex = tuple(excepts)
        return any(cidr in m and not any(e in m for e in ex) for m in self.memberships)

    def resolve_named_port(self, name: str, protocol: Protocol | None) -> list[tuple[Protocol, int]]:
        return [(p, n) for (nm, p, n) in self.named_ports if nm == name and (protocol is None or p == protocol)]

    def describe(self) -> str:
        if self.kind == "pod":
            labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels))
            return f"identity {self.id} (namespace {self.namespace}; {labels or 'no labels'})"
        if self.kind == "cidr":
            return f"identity {self.id} (cidr {self.cidr})"
        return f"identity {self.id} (world)"


def policy_cidrs(cluster: Cluster) -> set[IPNetwork]:
    """Every CIDR written in an ipBlock (cidr and except) or an ANP ``networks`` peer."""
    out: set[IPNetwork] = set()
    for np in cluster.policies:
        for rule in (*np.ingress, *np.egress):
            for peer in rule.peers or ():
                if peer.ip_block is not None:
                    out.add(peer.ip_block.cidr)
                    out.update(peer.ip_block.excepts)
    anps: list[AdminNetworkPolicy] = list(cluster.admin_policies)
    if cluster.baseline is not None:
        anps.append(cluster.baseline)
    for anp in anps:
        for arule in anp.egress:
            for apeer in arule.peers:
                out.update(apeer.networks)
    return out


@dataclass
class IdentityTable:
    """Identities of a cluster and the lookups address → identity and pod → identity."""

    cidrs: list[IPNetwork]
    by_id: dict[int, Identity] = field(default_factory=dict)
    pod_identity: dict[tuple[str, str, str], int] = field(default_factory=dict)
    address_identity: dict[IPAddress, int] = field(default_factory=dict)
    cidr_identity: dict[IPNetwork, int] = field(default_factory=dict)
    pod_identities_by_ns: dict[str, list[int]] = field(default_factory=dict)

    def membership(self, addr: IPAddress) -> Membership:
        return frozenset(c for c in self.cidrs if addr.version == c.version and addr in c)

    def identity_of_address(self, addr: IPAddress) -> int:
        """The identity the datapath would give a packet from or to ``addr``."""
        known = self.address_identity.get(addr)
        if known is not None:
            return known
        member = self.membership(addr)
        if not member:
            return WORLD_V4 if addr.version == 4 else WORLD_V6
        longest = max(member, key=lambda c: c.prefixlen)
        return self.cidr_identity[longest]

    def of_pod(self, pod: Pod) -> int:
        return self.pod_identity[(pod.namespace, pod.name, pod.kind)]

    def pods(self) -> list[Identity]:
        return [i for i in self.by_id.values() if i.kind == "pod"]


def build_identities(cluster: Cluster) -> IdentityTable:
    """Allocate identities for every pod and every policy CIDR, deterministically."""
    cidrs = sorted(policy_cidrs(cluster), key=lambda c: (c.version, int(c.network_address), c.prefixlen))
    table = IdentityTable(cidrs)
    table.by_id[WORLD_V4] = Identity(WORLD_V4, "world", memberships=frozenset({frozenset()}))
    table.by_id[WORLD_V6] = Identity(WORLD_V6, "world", memberships=frozenset({frozenset()}))
    for i, cidr in enumerate(cidrs):
        ident = FIRST_CIDR_IDENTITY + i
        member = frozenset(c for c in cidrs if c.version == cidr.version and cidr.subnet_of(c))  # type: ignore[arg-type]
        table.by_id[ident] = Identity(ident, "cidr", memberships=frozenset({member}), cidr=cidr)
        table.cidr_identity[cidr] = ident
    keys: dict[tuple[object, ...], int] = {}
    next_id = FIRST_POD_IDENTITY + len(cidrs)
    for pod in sorted(cluster.pods, key=lambda p: (p.namespace, p.name, p.kind)):
        key, ident_obj = _pod_key(cluster, table, pod)
        found = keys.get(key)
        if found is None:
            found = keys[key] = next_id
            next_id += 1
            table.by_id[found] = Identity(found, *ident_obj)
            table.pod_identities_by_ns.setdefault(pod.namespace, []).append(found)
        table.pod_identity[(pod.namespace, pod.name, pod.kind)] = found
        for addr in pod.ips:
            table.address_identity.setdefault(addr, found)
    return table


def _pod_key(
    cluster: Cluster, table: IdentityTable, pod: Pod
) -> tuple[
    tuple[object, ...],
    tuple[
        str,
        str,
        frozenset[tuple[str, str]],
        frozenset[tuple[str, str]],
        frozenset[tuple[str, Protocol, int]],
        frozenset[Membership],
    ],
]:
    ns = cluster.namespace(pod.namespace)
    labels = frozenset(pod.labels.items())
    ns_labels = frozenset(ns.labels.items())
    named = frozenset((p.name, p.protocol, p.port) for p in pod.ports if p.name)
    members = frozenset(table.membership(a) for a in pod.ips)
    return (pod.namespace, labels, named, members), ("pod", pod.namespace, labels, ns_labels, named, members)


def namespace_labels(cluster: Cluster, name: str) -> dict[str, str]:
    return cluster.namespace(name).labels or {NS_NAME_LABEL: name}


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text)
