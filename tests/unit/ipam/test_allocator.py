import ipaddress

import pytest

from podnet.errors import IpamError, IpamExhausted
from podnet.ipam.allocator import (
    Owner,
    PoolState,
    allocate,
    collect_garbage,
    next_free,
    parse_cidr,
    pool_size,
    release,
    usable_range,
)

A = Owner("aaa", "eth0")
B = Owner("bbb", "eth0")


def test_ipv4_skips_network_and_broadcast() -> None:
    cidr = parse_cidr("10.0.0.0/30")
    assert pool_size(cidr) == 2
    pool = PoolState(cidr)
    got = {allocate(pool, Owner(str(i), "eth0")) for i in range(2)}
    assert got == {ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")}
    with pytest.raises(IpamExhausted, match=r"10\.0\.0\.0/30"):
        allocate(pool, Owner("x", "eth0"))


def test_ipv6_skips_subnet_router_anycast() -> None:
    lo, _ = usable_range(parse_cidr("fd00::/120"))
    assert ipaddress.ip_address(lo) == ipaddress.ip_address("fd00::1")
    assert pool_size(parse_cidr("fd00::/128")) == 1


def test_allocate_is_idempotent_per_owner() -> None:
    pool = PoolState(parse_cidr("10.0.0.0/24"))
    assert allocate(pool, A) == allocate(pool, A)
    assert len(pool.allocations) == 1


def test_round_robin_does_not_reuse_just_released() -> None:
    pool = PoolState(parse_cidr("10.0.0.0/29"))
    first = allocate(pool, A)
    release(pool, A)
    second = allocate(pool, B)
    assert second != first
    assert int(second) == int(first) + 1


def test_wraps_around_to_free_low_addresses() -> None:
    pool = PoolState(parse_cidr("10.0.0.0/29"))  # usable .1-.6
    owners = [Owner(f"c{i}", "eth0") for i in range(6)]
    for o in owners:
        allocate(pool, o)
    release(pool, owners[1])
    assert next_free(pool) == ipaddress.ip_address("10.0.0.2")


def test_release_frees_only_the_owner() -> None:
    pool = PoolState(parse_cidr("10.0.0.0/24"))
    a, b = allocate(pool, A), allocate(pool, B)
    assert release(pool, A) == [a]
    assert release(pool, A) == []
    assert pool.allocations == {b: B}


def test_gc_keeps_valid_owners() -> None:
    pool = PoolState(parse_cidr("fd00::/64"))
    allocate(pool, A)
    b = allocate(pool, B)
    freed = collect_garbage(pool, {A})
    assert freed == {b: B}
    assert set(pool.allocations.values()) == {A}


def test_parse_cidr_rejects_host_bits() -> None:
    with pytest.raises(IpamError, match=r"10\.0\.0\.1/24"):
        parse_cidr("10.0.0.1/24")


def test_owner_key_roundtrip() -> None:
    assert Owner.from_key(A.key()) == A
    with pytest.raises(IpamError):
        Owner.from_key("nope")
