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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from podnet.k8s.model import NS_NAME_LABEL, AdminNetworkPolicy, Cluster, IPAddress, IPNetwork, Pod, Protocol

FIRST_POD_IDENTITY = 256
HOST = 1  # the node itself, in a node agent's table only (Cilium's reserved:host)
WORLD_V4 = 2
WORLD_V6 = 3
FIRST_CIDR_IDENTITY = 16
Membership = frozenset[IPNetwork]


@dataclass(frozen=True, slots=True)
class Identity:
    """One identity. ``memberships`` lists, per address, the policy CIDRs that contain it."""

    id: int
    kind: str  # "pod", "cidr", "world" or "host"
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
        if self.kind == "host":
            return f"identity {self.id} (host: this node)"
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


PodKey = tuple[str, frozenset[tuple[str, str]], frozenset[tuple[str, Protocol, int]], frozenset[Membership]]


class IdentityAllocator:
    """Stable numbers for pod identities across compiles (the agent keeps one for its lifetime).

    Without an allocator, :func:`build_identities` numbers identities by their first pod in name
    order, so a new label set can shift every later number. With one, a key keeps its number while
    some pod has it; a new key gets the next unused number. Numbers are never reused.
    """

    def __init__(self) -> None:
        self._ids: dict[PodKey, int] = {}
        self._next = FIRST_POD_IDENTITY

    def number(self, key: PodKey, floor: int) -> int:
        """The number of ``key``; a new key (or one below ``floor``, the first number after the CIDR identities)
        gets a fresh one."""
        found = self._ids.get(key)
        if found is None or found < floor:
            found = self._ids[key] = max(self._next, floor)
            self._next = found + 1
        return found

    def get(self, key: PodKey) -> int | None:
        return self._ids.get(key)

    def retain(self, keys: Iterable[PodKey]) -> None:
        """Forget every key not in ``keys`` (identities whose last pod is gone)."""
        live = set(keys)
        self._ids = {k: v for k, v in self._ids.items() if k in live}

    def copy(self) -> IdentityAllocator:
        out = IdentityAllocator()
        out._ids = dict(self._ids)
        out._next = self._next
        return out


def build_identities(
    cluster: Cluster,
    allocator: IdentityAllocator | None = None,
    host_addresses: tuple[IPAddress, ...] = (),
    pod_keys: Mapping[tuple[str, str, str], PodKey] | None = None,
    previous: IdentityTable | None = None,
) -> IdentityTable:
    """Allocate identities for every pod and every policy CIDR, deterministically (or stably, see
    :class:`IdentityAllocator`). With ``host_addresses`` (a node agent's own addresses), the node gets the
    ``host`` identity (see :func:`add_host`). ``pod_keys``: each pod's :func:`pod_key`, known already
    (for the same policy CIDRs), by (namespace, name, kind). ``previous``: the table of a build with the
    same allocator, namespaces and policies, whose identity objects are reused."""
    cidrs = sorted_policy_cidrs(cluster)
    table = IdentityTable(cidrs)
    table.by_id[WORLD_V4] = Identity(WORLD_V4, "world", memberships=frozenset({frozenset()}))
    table.by_id[WORLD_V6] = Identity(WORLD_V6, "world", memberships=frozenset({frozenset()}))
    same_cidrs = previous is not None and previous.cidrs == cidrs
    for i, cidr in enumerate(cidrs):
        ident = FIRST_CIDR_IDENTITY + i
        if same_cidrs and previous is not None:
            table.by_id[ident] = previous.by_id[ident]
        else:
            member = frozenset(c for c in cidrs if c.version == cidr.version and cidr.subnet_of(c))  # type: ignore[arg-type]
            table.by_id[ident] = Identity(ident, "cidr", memberships=frozenset({member}), cidr=cidr)
        table.cidr_identity[cidr] = ident
    # with an allocator, a number stands for one key, so its identity object is the same as before
    reuse = {i.id: i for i in previous.pods()} if same_cidrs and previous is not None and allocator else None
    if pod_keys is not None:
        known = pod_keys
        keys = assign_pods(table, cluster, lambda pod: known[(pod.namespace, pod.name, pod.kind)], allocator, reuse)
    else:
        keys = assign_pods(table, cluster, lambda pod: pod_key(cluster, table, pod), allocator, reuse)
    if allocator is not None:
        allocator.retain(keys)
    add_host(table, host_addresses)
    return table


def sorted_policy_cidrs(cluster: Cluster) -> list[IPNetwork]:
    """The policy CIDRs in identity order (by family, address, prefix length)."""
    return sorted(policy_cidrs(cluster), key=lambda c: (c.version, int(c.network_address), c.prefixlen))


def add_host(table: IdentityTable, addresses: tuple[IPAddress, ...]) -> None:
    """Give the node's own ``addresses`` the ``host`` identity (nothing when there are none).

    Its memberships are its addresses' policy CIDRs, so an ipBlock selects the node exactly as it selects
    the node's address; what differs is ingress: traffic from a pod's own node is always allowed
    (:meth:`podnet.policy.compiler.CompiledPolicy.table`)."""
    if not addresses:
        return
    members = frozenset(table.membership(a) for a in addresses)
    table.by_id[HOST] = Identity(HOST, "host", memberships=members)
    for addr in addresses:
        table.address_identity.setdefault(addr, HOST)


def assign_pods(
    table: IdentityTable,
    cluster: Cluster,
    key_of: Callable[[Pod], PodKey],
    allocator: IdentityAllocator | None,
    known: dict[int, Identity] | None = None,
) -> dict[PodKey, int]:
    """Fill ``table``'s pod lookups (pods in name order; the first pod of an address wins it) and, for
    identities not in ``known``, ``by_id``. Returns key → number for every pod identity."""
    keys: dict[PodKey, int] = {}
    floor = FIRST_POD_IDENTITY + len(table.cidrs)
    next_id = floor
    for pod in sorted(cluster.pods, key=lambda p: (p.namespace, p.name, p.kind)):
        key = key_of(pod)
        found = keys.get(key)
        if found is None:
            if allocator is not None:
                found = allocator.number(key, floor)
            else:
                found = next_id
                next_id += 1
            keys[key] = found
            reuse = known.get(found) if known is not None else None
            table.by_id[found] = reuse if reuse is not None else _identity(cluster, found, key)
            table.pod_identities_by_ns.setdefault(pod.namespace, []).append(found)
        table.pod_identity[(pod.namespace, pod.name, pod.kind)] = found
        for addr in pod.ips:
            table.address_identity.setdefault(addr, found)
    return keys


def pod_key(cluster: Cluster, table: IdentityTable, pod: Pod) -> PodKey:
    """Everything a policy can tell this pod apart by (see the module docstring)."""
    labels = frozenset(pod.labels.items())
    named = frozenset((p.name, p.protocol, p.port) for p in pod.ports if p.name)
    # An address in no policy CIDR adds nothing a policy could select on, so a pod before and after it gets
    # its address (and pods with and without one) share an identity.
    members = frozenset(m for m in (table.membership(a) for a in pod.ips) if m)
    return (pod.namespace, labels, named, members)


def _identity(cluster: Cluster, number: int, key: PodKey) -> Identity:
    namespace, labels, named, members = key
    ns_labels = frozenset(cluster.namespace(namespace).labels.items())
    return Identity(number, "pod", namespace, labels, ns_labels, named, members)


def namespace_labels(cluster: Cluster, name: str) -> dict[str, str]:
    return cluster.namespace(name).labels or {NS_NAME_LABEL: name}


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text)
