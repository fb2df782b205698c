"""The pure part of IPAM: which address comes next, with no I/O.

The state of one pool is a plain mapping from address to owner plus the last address handed out;
allocation goes round-robin from there so a just-released address is not reused at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from podnet.errors import IpamError, IpamExhausted

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, order=True)
class Owner:
    """Who holds an address: one attachment, as the CNI specification identifies it."""

    container_id: str
    ifname: str

    def key(self) -> str:
        return f"{self.container_id}/{self.ifname}"

    @classmethod
    def from_key(cls, key: str) -> Owner:
        container_id, _, ifname = key.rpartition("/")
        if not container_id or not ifname:
            raise IpamError(f"malformed owner key {key!r}")
        return cls(container_id, ifname)


@dataclass
class PoolState:
    """Allocations of one pod CIDR. ``allocations`` maps address → owner."""

    cidr: IPNetwork
    allocations: dict[IPAddress, Owner] = field(default_factory=dict)
    last: IPAddress | None = None

    def held_by(self, owner: Owner) -> list[IPAddress]:
        return sorted(a for a, o in self.allocations.items() if o == owner)


def parse_cidr(text: str) -> IPNetwork:
    """Parse a pod CIDR strictly (host bits must be zero); raise IpamError naming the text."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise IpamError(f"invalid pod CIDR {text!r}: {exc}") from exc


def usable_range(cidr: IPNetwork) -> tuple[int, int]:
    """First and last usable address (as ints) of ``cidr``.

    IPv4 skips the network and broadcast addresses (except in /31 and /32); IPv6 skips the
    subnet-router anycast address (except in /127 and /128). The gateway is link-local, so no
    address of the pool is reserved for it.
    """
    first, last = int(cidr.network_address), int(cidr.broadcast_address)
    if cidr.version == 4 and cidr.prefixlen <= 30:
        return first + 1, last - 1
    if cidr.version == 6 and cidr.prefixlen <= 126:
        return first + 1, last
    return first, last


def pool_size(cidr: IPNetwork) -> int:
    lo, hi = usable_range(cidr)
    return hi - lo + 1


def _candidates(cidr: IPNetwork, last: IPAddress | None) -> Iterator[int]:
    lo, hi = usable_range(cidr)
    start = lo
    if last is not None and last in cidr and lo <= int(last) < hi:
        start = int(last) + 1
    yield from range(start, hi + 1)
    yield from range(lo, start)


def next_free(pool: PoolState) -> IPAddress:
    """The next free address after ``pool.last``, wrapping around; IpamExhausted when none is left."""
    taken: Mapping[IPAddress, Owner] = pool.allocations
    if len(taken) >= pool_size(pool.cidr):
        raise IpamExhausted(f"pod CIDR {pool.cidr} is exhausted ({len(taken)} addresses in use)")
    for value in _candidates(pool.cidr, pool.last):
        address = ipaddress.ip_address(value)
        if address not in taken:
            return address
    raise IpamExhausted(f"pod CIDR {pool.cidr} is exhausted ({len(taken)} addresses in use)")


def allocate(pool: PoolState, owner: Owner) -> IPAddress:
    """Give ``owner`` an address of ``pool`` (the one it holds already, if any); mutates ``pool``."""
    held = pool.held_by(owner)
    if held:
        return held[0]
    address = next_free(pool)
    pool.allocations[address] = owner
    pool.last = address
    return address


def release(pool: PoolState, owner: Owner) -> list[IPAddress]:
    """Free every address ``owner`` holds in ``pool``; addresses held by others are never touched."""
    held = pool.held_by(owner)
    for address in held:
        del pool.allocations[address]
    return held


def collect_garbage(pool: PoolState, keep: set[Owner]) -> dict[IPAddress, Owner]:
    """Free every address whose owner is not in ``keep``; return what was freed."""
    freed = {a: o for a, o in pool.allocations.items() if o not in keep}
    for address in freed:
        del pool.allocations[address]
    return freed
