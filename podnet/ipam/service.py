"""IPAM as the agent uses it: one address per configured pod CIDR for each attachment.

Ownership rule: an address belongs to exactly one :class:`Owner` (container id + interface). Release
and GC only ever free addresses of the owners they name, so a repeated DEL, or a DEL racing a new ADD
that got the same address back, can never free somebody else's address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from podnet.ipam.allocator import IPAddress, IPNetwork, Owner, PoolState, allocate, collect_garbage, pool_size, release
from podnet.ipam.store import IpamState, IpamStore


@dataclass(frozen=True)
class PoolUsage:
    cidr: str
    size: int
    used: int


class Ipam:
    """Allocates from ``cidrs`` (at most one IPv4 and one IPv6) and keeps the result in ``store``.

    Pools left in the store from an earlier configuration keep their allocations (they are released
    normally) but are not allocated from.
    """

    def __init__(self, store: IpamStore, cidrs: Sequence[IPNetwork]) -> None:
        versions = [c.version for c in cidrs]
        if not cidrs or len(set(versions)) != len(versions):
            raise ValueError("IPAM needs one or two pod CIDRs of different IP versions")
        self.store = store
        self.cidrs = list(cidrs)

    def _pool(self, state: IpamState, cidr: IPNetwork) -> PoolState:
        return state.setdefault(str(cidr), PoolState(cidr))

    def allocate(self, owner: Owner) -> list[IPAddress]:
        """One address per pod CIDR for ``owner``; all or nothing (the transaction is not committed on error)."""
        with self.store.transaction() as state:
            return [allocate(self._pool(state, cidr), owner) for cidr in self.cidrs]

    def release(self, owner: Owner) -> list[IPAddress]:
        """Free what ``owner`` holds; an owner that holds nothing is fine."""
        with self.store.transaction() as state:
            freed: list[IPAddress] = []
            for pool in state.values():
                freed.extend(release(pool, owner))
            return freed

    def collect_garbage(self, keep: Iterable[Owner]) -> dict[IPAddress, Owner]:
        """Free every allocation whose owner is not in ``keep``."""
        keep_set = set(keep)
        with self.store.transaction() as state:
            freed: dict[IPAddress, Owner] = {}
            for pool in state.values():
                freed.update(collect_garbage(pool, keep_set))
            return freed

    def owners(self) -> dict[Owner, list[IPAddress]]:
        out: dict[Owner, list[IPAddress]] = {}
        for pool in self.store.snapshot().values():
            for address, owner in pool.allocations.items():
                out.setdefault(owner, []).append(address)
        return out

    def usage(self) -> list[PoolUsage]:
        state = self.store.snapshot()
        rows = []
        for key in sorted(set(state) | {str(c) for c in self.cidrs}):
            pool = state.get(key)
            cidr = pool.cidr if pool else next(c for c in self.cidrs if str(c) == key)
            rows.append(PoolUsage(key, pool_size(cidr), len(pool.allocations) if pool else 0))
        return rows
