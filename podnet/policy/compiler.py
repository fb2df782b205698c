"""Compile a cluster into per-identity resolved policy and per-identity port tables.

Evaluation order for one direction of one connection, at the pod that direction belongs to (the
source for egress, the destination for ingress):

1. AdminNetworkPolicies selecting the pod, by priority (then name), rules in order: the first rule
   whose peer and port match decides Allow or Deny; Pass hands the decision to step 2.
2. NetworkPolicies: when any policy selecting the pod isolates it in this direction, the
   connection is allowed iff some rule of those policies matches; otherwise denied.
3. When no NetworkPolicy isolates the pod: the BaselineAdminNetworkPolicy, first matching rule.
4. Otherwise allowed.

A connection is allowed when the source's egress and the destination's ingress both allow it; an
address outside the cluster has no side of its own.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from podnet.k8s.model import PROTOCOLS, AdminNetworkPolicy, Cluster, Direction, IPAddress, PortSpec, Protocol
from podnet.k8s.selectors import LabelSelector
from podnet.policy.identity import Identity, IdentityAllocator, IdentityTable, PodKey, build_identities
from podnet.policy.ports import MAX_PORT, MIN_PORT, PortTable, paint
from podnet.policy.selectorcache import IdSet, SelectorCache

Verdict = Literal["allow", "deny"]
Tier = Literal["admin", "network", "baseline", "default"]
Action = Literal["allow", "deny", "pass"]
PortRange = tuple[Protocol, int, int]  # a protocol's ports lo-hi
DIRECTIONS: tuple[Direction, Direction] = ("ingress", "egress")


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The rule that decided: a policy rule, or the default deny of isolating policies."""

    kind: str
    name: str
    direction: Direction
    index: int
    namespace: str | None = None
    rule_name: str = ""
    isolated_by: tuple[str, ...] = ()

    @property
    def policy(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def __str__(self) -> str:
        if self.kind == "isolation":
            return f"default deny ({self.direction} isolated by NetworkPolicy {', '.join(self.isolated_by)})"
        if self.kind == "host":
            return "traffic from the pod's own node (NetworkPolicy never isolates a pod from it)"
        rule = f" {self.rule_name!r}" if self.rule_name else ""
        return f"{self.kind} {self.policy} {self.direction}[{self.index}]{rule}"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "name": self.name, "direction": self.direction}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.kind == "isolation":
            out["isolated_by"] = list(self.isolated_by)
        else:
            out["rule"] = self.index
        if self.rule_name:
            out["rule_name"] = self.rule_name
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    tier: Tier
    rule: RuleRef | None = None

    def __str__(self) -> str:
        if self.rule is None:
            return f"{self.verdict} (no policy applies)"
        return f"{self.verdict} by {self.rule}"


DEFAULT_ALLOW = Decision("allow", "default")
FROM_HOST = Decision("allow", "default", RuleRef("host", "", "ingress", -1))
_PASS = Decision("allow", "admin", RuleRef("pass", "", "ingress", -1))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    ref: RuleRef
    action: Action
    tier: Tier
    peers: IdSet | None  # None: every peer
    ports: tuple[PortSpec, ...] | None  # None: every port of every protocol
    named: frozenset[str] = field(init=False)  # the named ports this rule uses
    decision: Decision = field(init=False)  # shared by every table this rule decides in
    # expand_ports(ports): without named ports once for all, with them once per distinct set of the
    # destination's named ports
    _spans: tuple[PortRange, ...] | None = field(init=False, compare=False, repr=False)
    _spans_by_dest: dict[frozenset[tuple[str, Protocol, int]], tuple[PortRange, ...]] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        named = frozenset(p.name for p in self.ports or () if p.name is not None)
        object.__setattr__(self, "named", named)
        decision = _PASS if self.action == "pass" else Decision(self.action, self.tier, self.ref)
        object.__setattr__(self, "decision", decision)
        object.__setattr__(self, "_spans", None if named else tuple(expand_ports(self.ports, None)))
        object.__setattr__(self, "_spans_by_dest", {})

    def selects(self, peer: int) -> bool:
        return self.peers is None or peer in self.peers

    def spans(self, dest: Identity) -> tuple[PortRange, ...]:
        """The (protocol, lo, hi) ranges of this rule's ports, named ports resolved against ``dest``."""
        if self._spans is not None:
            return self._spans
        found = self._spans_by_dest.get(dest.named_ports)
        if found is None:
            found = self._spans_by_dest[dest.named_ports] = tuple(expand_ports(self.ports, dest))
        return found


@dataclass(frozen=True, slots=True)
class DirectionPolicy:
    """Everything that applies to one identity in one direction, in evaluation order."""

    direction: Direction
    admin: tuple[CompiledRule, ...]
    isolated_by: tuple[str, ...]
    network: tuple[CompiledRule, ...]
    baseline: tuple[CompiledRule, ...]
    all_rules: tuple[CompiledRule, ...] = field(init=False)
    named_ports_used: frozenset[str] = field(init=False)
    isolation: Decision = field(init=False)

    def __post_init__(self) -> None:
        rules = self.admin + self.network + self.baseline
        object.__setattr__(self, "all_rules", rules)
        object.__setattr__(self, "named_ports_used", frozenset(n for r in rules for n in r.named))
        ref = RuleRef("isolation", "", self.direction, -1, isolated_by=self.isolated_by)
        object.__setattr__(self, "isolation", Decision("deny", "network", ref))

    def rules(self) -> tuple[CompiledRule, ...]:
        return self.all_rules


EMPTY_DIRECTIONS = {d: DirectionPolicy(d, (), (), (), ()) for d in ("ingress", "egress")}


def expand_ports(ports: tuple[PortSpec, ...] | None, dest: Identity | None) -> list[PortRange]:
    """The (protocol, lo, hi) ranges ``ports`` covers; named ports resolve against the destination
    (``None``: ``ports`` has no named port)."""
    if ports is None:
        return [(p, MIN_PORT, MAX_PORT) for p in PROTOCOLS]
    out: list[PortRange] = []
    for spec in ports:
        if spec.name is not None:
            assert dest is not None, "named ports need a destination"
            out.extend((proto, n, n) for proto, n in dest.resolve_named_port(spec.name, spec.protocol))
        elif spec.protocol is None:
            continue
        elif spec.port is None:
            out.append((spec.protocol, MIN_PORT, MAX_PORT))
        else:
            out.append((spec.protocol, spec.port, spec.end_port if spec.end_port is not None else spec.port))
    return out


@dataclass(frozen=True, slots=True)
class ConnectionVerdict:
    allowed: bool
    egress: Decision | None  # None: the source is not a pod, nothing enforced on its side
    ingress: Decision | None  # None: the destination is not a pod

    @property
    def deciding(self) -> list[Decision]:
        sides = [d for d in (self.egress, self.ingress) if d is not None]
        if not self.allowed:
            return [d for d in sides if d.verdict == "deny"][:1]
        return sides


@dataclass(slots=True)
class _PeerClasses:
    """For one identity and direction: which of the cluster's distinct peer sets its rules use, and a
    table per combination of memberships a peer can have."""

    policy: DirectionPolicy
    subject: int
    ingress: bool
    hosts: frozenset[int]  # ingress: the local node's identities, always let in (empty for egress)
    relevant: int  # the bits (in the compiled policy's peer-set family) of this direction's finite peer sets
    # egress rules using named ports resolve them against the peer: each peer's named ports that the rules use
    dest_ports: dict[int, frozenset[tuple[str, Protocol, int]]] | None
    tables: dict[object, PortTable[Decision]] = field(default_factory=dict)
    by_peer: dict[int, PortTable[Decision]] = field(default_factory=dict)  # the table of each peer seen


@dataclass
class CompiledPolicy:
    cluster: Cluster
    identities: IdentityTable
    selectors: SelectorCache
    directions: dict[tuple[int, Direction], DirectionPolicy]
    _classes: dict[Direction, dict[int, _PeerClasses]] = field(
        default_factory=lambda: {"ingress": {}, "egress": {}}
    )  # direction → subject → its classes
    # Every distinct finite peer set of the rules classified so far gets a bit; each identity holds the
    # bits of the sets it belongs to. Two peers with the same bits under a direction's relevant mask are
    # selected by the same rules, so they share a table: finding it is one AND and one dict lookup.
    _family: dict[IdSet, int] = field(default_factory=dict)
    _member_bits: dict[int, int] = field(default_factory=dict)
    # the named ports used by a direction's rules → peer → the peer's named ports among them
    _dest_ports: dict[frozenset[str], dict[int, frozenset[tuple[str, Protocol, int]]]] = field(default_factory=dict)
    _uniform: dict[Decision, PortTable[Decision]] = field(default_factory=dict)
    _pod_ids: frozenset[int] | None = None  # the pod identities, for decide()
    _host_ids: frozenset[int] | None = None  # the identities of the local node, for table()
    _selecting: dict[int, tuple[int, ...]] = field(default_factory=dict)  # see compile_cluster(previous=)

    def direction(self, subject: int, direction: Direction) -> DirectionPolicy:
        return self.directions.get((subject, direction), EMPTY_DIRECTIONS[direction])

    def with_pods(self, cluster: Cluster, identities: IdentityTable) -> CompiledPolicy:
        """The same policy over ``cluster``, whose pods changed without changing any identity: the
        resolved policy and every table built so far stay valid and are shared."""
        return CompiledPolicy(
            cluster, identities, self.selectors, self.directions, _classes=self._classes, _family=self._family,
            _member_bits=self._member_bits, _dest_ports=self._dest_ports, _uniform=self._uniform,
            _selecting=self._selecting,
        )  # fmt: skip

    def _bit(self, peers: IdSet) -> int:
        index = self._family.get(peers)
        if index is None:
            index = self._family[peers] = len(self._family)
            bit = 1 << index
            member_bits = self._member_bits
            for peer in peers:
                member_bits[peer] = member_bits.get(peer, 0) | bit
        return 1 << index

    def _classify(self, subject: int, direction: Direction) -> _PeerClasses:
        dpol = self.direction(subject, direction)
        relevant = 0
        for rule in dpol.all_rules:
            if rule.peers:
                relevant |= self._bit(rule.peers)
        dest_ports = None
        if direction == "egress" and dpol.named_ports_used:
            dest_ports = self._dest_ports.setdefault(dpol.named_ports_used, {})
        hosts = self._host_ids
        if hosts is None:
            hosts = self._host_ids = frozenset(i for i, n in self.identities.by_id.items() if n.kind == "host")
        ingress = direction == "ingress"
        classes = _PeerClasses(dpol, subject, ingress, hosts if ingress else frozenset(), relevant, dest_ports)
        self._classes[direction][subject] = classes
        return classes

    def table(self, subject: int, direction: Direction, peer: int) -> PortTable[Decision]:
        """The decisions for every protocol and port, for ``subject`` talking with ``peer``.

        Two peers selected by the same rules (and, for egress named ports, declaring the same named
        ports) share one table, built on first use.
        """
        classes = self._classes[direction].get(subject) or self._classify(subject, direction)
        return classes.by_peer.get(peer) or self._peer_table(classes, peer)

    def _peer_table(self, classes: _PeerClasses, peer: int) -> PortTable[Decision]:
        """:meth:`table` for a peer not seen before."""
        if peer in classes.hosts:
            # "traffic is allowed to a pod if ... the traffic source is the pod's local node" (NetworkPolicy's
            # ingress); no AdminNetworkPolicy ingress peer can select a node.
            host = classes.by_peer[peer] = host_table()
            return host
        key: object = self._member_bits.get(peer, 0) & classes.relevant
        dest_ports = classes.dest_ports
        if dest_ports is not None:
            named = dest_ports.get(peer)
            if named is None:
                used = classes.policy.named_ports_used
                named = dest_ports[peer] = frozenset(
                    np for np in self.identities.by_id[peer].named_ports if np[0] in used
                )
            key = (key, named)
        table = classes.tables.get(key)
        if table is None:
            dest = self.identities.by_id[classes.subject if classes.ingress else peer]
            table = classes.tables[key] = build_table(classes.policy, peer, dest, self._uniform)
        classes.by_peer[peer] = table
        return table

    def sides(self, src: int, dst: int, protocol: Protocol, port: int) -> tuple[Decision | None, Decision | None]:
        """The source's egress and the destination's ingress decision for a new connection from identity
        ``src`` to identity ``dst`` (None: that end is not a pod, nothing is enforced there)."""
        egress = ingress = None
        pods = self._pod_ids
        if pods is None:
            pods = self._pod_ids = frozenset(i for i, ident in self.identities.by_id.items() if ident.kind == "pod")
        if src in pods:
            classes = self._classes["egress"].get(src) or self._classify(src, "egress")
            los, values = (classes.by_peer.get(dst) or self._peer_table(classes, dst)).parts[protocol]
            egress = values[bisect_right(los, port) - 1]  # PortTable.lookup(), without a call
        if dst in pods:
            classes = self._classes["ingress"].get(dst) or self._classify(dst, "ingress")
            los, values = (classes.by_peer.get(src) or self._peer_table(classes, src)).parts[protocol]
            ingress = values[bisect_right(los, port) - 1]
        return egress, ingress

    def decide(self, src: int, dst: int, protocol: Protocol, port: int) -> ConnectionVerdict:
        """The verdict for a new connection from identity ``src`` to identity ``dst``."""
        egress, ingress = self.sides(src, dst, protocol, port)
        allowed = (egress is None or egress.verdict == "allow") and (ingress is None or ingress.verdict == "allow")
        return ConnectionVerdict(allowed, egress, ingress)


def host_table() -> PortTable[Decision]:
    """Every port of every protocol allowed, by the local node's exception."""
    return PortTable.uniform(FROM_HOST)


def build_table(
    dpol: DirectionPolicy, peer: int, dest: Identity, uniform: dict[Decision, PortTable[Decision]] | None = None
) -> PortTable[Decision]:
    """Resolve the tiers for one peer into a port table (``uniform``: a cache of the tables that give
    one decision to every port, shared because most peers are named by no rule)."""
    admin = [r for r in dpol.admin if r.peers is None or peer in r.peers]  # r.selects(peer), without a call
    rest = dpol.isolation if dpol.isolated_by else DEFAULT_ALLOW
    lower = [r for r in (dpol.network if dpol.isolated_by else dpol.baseline) if r.peers is None or peer in r.peers]
    if not admin and not lower:
        if uniform is None:
            return PortTable.uniform(rest)
        found = uniform.get(rest)
        if found is None:
            found = uniform[rest] = PortTable.uniform(rest)
        return found
    # Each port goes to the first rule that claims it, AdminNetworkPolicy rules before the rest.
    claims = [(proto, lo, hi, r.decision) for r in lower for proto, lo, hi in r.spans(dest)]
    if admin:
        first = [(proto, lo, hi, r.decision) for r in admin for proto, lo, hi in r.spans(dest)]
        if any(r.decision is _PASS for r in admin):
            # The ports a Pass rule claims first go on to the lower tiers, like the ports no admin rule claims.
            top = paint(first, _PASS)
            first = [(proto, iv.lo, iv.hi, iv.value) for proto, iv in top.items() if iv.value is not _PASS]
        claims = first + claims
    return paint(claims, rest)


def _admin_rules(anp: AdminNetworkPolicy, direction: Direction, sc: SelectorCache) -> tuple[CompiledRule, ...]:
    out: list[CompiledRule] = []
    tier: Tier = "baseline" if anp.baseline else "admin"
    for index, rule in enumerate(anp.ingress if direction == "ingress" else anp.egress):
        peers: set[int] = set()
        for peer in rule.peers:
            peers |= sc.admin_peer(peer)
        action: Action = "allow" if rule.action == "Allow" else "deny" if rule.action == "Deny" else "pass"
        ref = RuleRef(anp.kind, anp.name, direction, index, rule_name=rule.name)
        out.append(CompiledRule(ref, action, tier, frozenset(peers), rule.ports))
    return tuple(out)


def compile_cluster(
    cluster: Cluster,
    allocator: IdentityAllocator | None = None,
    host_addresses: tuple[IPAddress, ...] = (),
    previous: CompiledPolicy | None = None,
    pod_keys: Mapping[tuple[str, str, str], PodKey] | None = None,
) -> CompiledPolicy:
    """Identities, selector cache and the resolved policy of every pod identity, in both directions.

    ``allocator`` keeps identity numbers stable across compiles (the agent's); without it they are
    numbered afresh (the analyzer's). Numbers aside, the result is the same. ``host_addresses``: the
    policy as seen by the node with these addresses, which get the ``host`` identity.

    ``previous``: a compile of the same namespaces and policies with the same ``allocator`` (only pods
    differ, :func:`podnet.policy.incremental.same_policy_inputs`). Its selector results and which
    NetworkPolicies select each identity carry over: selectors are evaluated only against the new
    identities (the result is the same as without it; ``tests/unit/policy/test_incremental.py``).
    ``pod_keys``: every pod's identity key, when the caller knows them (see :func:`build_identities`)."""
    if allocator is None:
        previous = None  # without stable numbers, one number may stand for another label set than before
    ids = build_identities(
        cluster, allocator, host_addresses, pod_keys, previous.identities if previous is not None else None
    )
    if previous is not None:
        sc = SelectorCache.carried(previous.selectors, cluster, ids, previous.identities)
    else:
        sc = SelectorCache(cluster, ids)
    selecting_cache: dict[int, tuple[int, ...]] = {}  # identity → indexes in its namespace's network list
    old_selecting = previous._selecting if previous is not None else {}
    admin: list[tuple[IdSet, dict[Direction, tuple[CompiledRule, ...]]]] = []
    for anp in cluster.admin_policies:
        admin.append((sc.admin_peer(anp.subject), {d: _admin_rules(anp, d, sc) for d in DIRECTIONS}))
    baseline: tuple[IdSet, dict[Direction, tuple[CompiledRule, ...]]] | None = None
    if cluster.baseline is not None:
        b = cluster.baseline
        baseline = (sc.admin_peer(b.subject), {d: _admin_rules(b, d, sc) for d in DIRECTIONS})
    network_by_ns: dict[str, list[tuple[str, dict[Direction, tuple[CompiledRule, ...] | None], LabelSelector]]] = {}
    for np in cluster.policies:
        per_dir: dict[Direction, tuple[CompiledRule, ...] | None] = {}
        for d in DIRECTIONS:
            isolates = np.ingress_isolation if d == "ingress" else np.egress_isolation
            if not isolates:
                per_dir[d] = None
                continue
            compiled: list[CompiledRule] = []
            for index, rule in enumerate(np.ingress if d == "ingress" else np.egress):
                peers: IdSet | None = None
                if rule.peers is not None:
                    acc: set[int] = set()
                    for peer in rule.peers:
                        acc |= sc.np_peer(peer, np.namespace)
                    peers = frozenset(acc)
                ref = RuleRef("NetworkPolicy", np.name, d, index, namespace=np.namespace)
                compiled.append(CompiledRule(ref, "allow", "network", peers, rule.ports))
            per_dir[d] = tuple(compiled)
        network_by_ns.setdefault(np.namespace, []).append((np.ref, per_dir, np.pod_selector))
    directions: dict[tuple[int, Direction], DirectionPolicy] = {}
    for ident in ids.pods():
        assert ident.namespace is not None
        in_ns = network_by_ns.get(ident.namespace, [])
        indexes = old_selecting.get(ident.id)
        if indexes is None or previous is None or previous.identities.by_id.get(ident.id) != ident:
            # a new identity (an unchanged one is the same label set: which policies select it carries over)
            labels = ident.label_dict
            indexes = tuple(i for i, (_, _, selector) in enumerate(in_ns) if selector.matches(labels))
        selecting_cache[ident.id] = indexes
        selecting = [(in_ns[i][0], in_ns[i][1]) for i in indexes]
        for d in DIRECTIONS:
            admin_rules = tuple(r for subject, rules in admin if ident.id in subject for r in rules[d])
            isolated_by = tuple(ref for ref, per_dir in selecting if per_dir[d] is not None)
            network_rules = tuple(r for _, per_dir in selecting for r in per_dir[d] or ())
            baseline_rules = baseline[1][d] if baseline is not None and ident.id in baseline[0] else ()
            if admin_rules or isolated_by or baseline_rules:
                directions[(ident.id, d)] = DirectionPolicy(d, admin_rules, isolated_by, network_rules, baseline_rules)
    return CompiledPolicy(cluster, ids, sc, directions, _selecting=selecting_cache)
