"""The selector cache: which identities each peer or subject selects, computed once per distinct selector."""

from __future__ import annotations

from podnet.k8s.model import AdminPeer, Cluster, IPBlock, IPNetwork, Peer
from podnet.k8s.selectors import LabelSelector
from podnet.policy.identity import IdentityTable

IdSet = frozenset[int]


class SelectorCache:
    """Maps selectors to the set of identity ids they select. Results are memoized by value."""

    def __init__(self, cluster: Cluster, identities: IdentityTable) -> None:
        self._cluster = cluster
        self._ids = identities
        self._ns_cache: dict[LabelSelector, tuple[str, ...]] = {}
        self._pod_cache: dict[tuple[tuple[str, ...], LabelSelector | None], IdSet] = {}
        self._cidr_cache: dict[tuple[IPNetwork, tuple[IPNetwork, ...]], IdSet] = {}

    @classmethod
    def carried(
        cls, old: SelectorCache, cluster: Cluster, identities: IdentityTable, old_identities: IdentityTable
    ) -> SelectorCache:
        """A cache for ``identities`` from ``old``'s results, for the same namespaces and policies: identities
        that are gone are dropped from every result, and only the new ones are matched against each selector.
        An identity number stands for one label set for as long as it lives (IdentityAllocator)."""
        new = cls(cluster, identities)
        live = identities.by_id
        changed = {i for i, ident in live.items() if old_identities.by_id.get(i) != ident}
        gone = {i for i in old_identities.by_id if i not in live} | changed
        fresh = [live[i] for i in changed]
        new._ns_cache = dict(old._ns_cache)
        for (namespaces, selector), found in old._pod_cache.items():
            add = {
                i.id
                for i in fresh
                if i.kind == "pod"
                and i.namespace in namespaces
                and (selector is None or selector.matches(i.label_dict))
            }
            new._pod_cache[(namespaces, selector)] = frozenset((found - gone) | add)
        for (cidr, excepts), found in old._cidr_cache.items():
            add = {i.id for i in fresh if i.in_cidr(cidr, excepts)}
            new._cidr_cache[(cidr, excepts)] = frozenset((found - gone) | add)
        return new

    def namespaces(self, selector: LabelSelector) -> tuple[str, ...]:
        found = self._ns_cache.get(selector)
        if found is None:
            found = tuple(sorted(n.name for n in self._cluster.namespaces.values() if selector.matches(n.labels)))
            self._ns_cache[selector] = found
        return found

    def pods_in(self, namespaces: tuple[str, ...], selector: LabelSelector | None) -> IdSet:
        key = (namespaces, selector)
        found = self._pod_cache.get(key)
        if found is None:
            out: set[int] = set()
            for ns in namespaces:
                for ident in self._ids.pod_identities_by_ns.get(ns, ()):
                    if selector is None or selector.matches(self._ids.by_id[ident].label_dict):
                        out.add(ident)
            found = frozenset(out)
            self._pod_cache[key] = found
        return found

    def cidr(self, cidr: IPNetwork, excepts: tuple[IPNetwork, ...] = ()) -> IdSet:
        key = (cidr, excepts)
        found = self._cidr_cache.get(key)
        if found is None:
            found = frozenset(i.id for i in self._ids.by_id.values() if i.in_cidr(cidr, excepts))
            self._cidr_cache[key] = found
        return found

    def np_peer(self, peer: Peer, policy_namespace: str) -> IdSet:
        """Identities a NetworkPolicy peer selects (ipBlock included)."""
        if peer.ip_block is not None:
            return self.ip_block(peer.ip_block)
        if peer.namespace_selector is None:
            namespaces: tuple[str, ...] = (policy_namespace,)
        else:
            namespaces = self.namespaces(peer.namespace_selector)
        return self.pods_in(namespaces, peer.pod_selector)

    def ip_block(self, block: IPBlock) -> IdSet:
        return self.cidr(block.cidr, block.excepts)

    def admin_peer(self, peer: AdminPeer) -> IdSet:
        """Identities an (B)ANP subject or peer selects."""
        if peer.nodes is not None:
            return frozenset()
        if peer.networks:
            out: set[int] = set()
            for net in peer.networks:
                out |= self.cidr(net)
            return frozenset(out)
        assert peer.namespace_selector is not None
        return self.pods_in(self.namespaces(peer.namespace_selector), peer.pod_selector)
