"""The nftables backend's flattened address intervals give every address the compiler's identity."""

from __future__ import annotations

import ipaddress
import itertools

from hypothesis import given
from hypothesis import strategies as st

from podnet.datapath.nft.render import address_plan, parse_json_key, render_key
from podnet.k8s.model import IPAddress, IPNetwork
from podnet.policy.identity import WORLD_V4

NETS = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "192.168.0.0/16", "10.2.0.0/16")
]


def _identity(addr: IPAddress, pods: dict[IPAddress, int], cidrs: dict[IPNetwork, int]) -> int:
    if addr in pods:
        return pods[addr]
    covering = [c for c in cidrs if addr in c]
    return cidrs[max(covering, key=lambda c: c.prefixlen)] if covering else WORLD_V4


@given(
    st.sets(st.sampled_from(NETS)),
    st.dictionaries(st.integers(0x0A000000, 0x0AFFFFFF).map(ipaddress.IPv4Address), st.integers(256, 260), max_size=8),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=30),
)
def test_intervals_are_disjoint_and_give_the_longest_match(
    nets: set[IPNetwork], pods: dict[ipaddress.IPv4Address, int], probes: list[int]
) -> None:
    cidrs: dict[IPNetwork, int] = {n: 16 + i for i, n in enumerate(sorted(nets, key=str))}
    pod_ids: dict[IPAddress, int] = dict(pods)
    plan = address_plan(pod_ids, cidrs)
    spans = sorted((lo, hi, ident) for ident, fams in plan.intervals.items() for lo, hi in fams.get(4, []))
    assert spans[0][0] == 0 and spans[-1][1] == 2**32 - 1
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))
    probes += [int(a) for a in pods] + [int(n.network_address) for n in nets]
    for value in probes:
        addr = ipaddress.IPv4Address(value)
        got = next(ident for lo, hi, ident in spans if lo <= value <= hi)
        assert got == _identity(addr, pod_ids, cidrs), addr


def test_keys_render_and_parse_back() -> None:
    key = ("pe1h1", (int(ipaddress.IPv4Address("10.0.0.0")), int(ipaddress.IPv4Address("10.0.0.255"))), 6, (80, 90))
    assert render_key("exact_egress_v4", key) == '"pe1h1" . 10.0.0.0-10.0.0.255 . 6 . 80-90'
    raw = {"concat": ["pe1h1", {"prefix": {"addr": "10.0.0.0", "len": 24}}, "tcp", {"range": [80, 90]}]}
    assert parse_json_key("exact_egress_v4", raw) == key
    assert parse_json_key("wild_ingress", {"concat": ["x", "udp", 53]}) == ("x", 17, (53, 53))
    assert parse_json_key("wild_other_ingress", "x") == ("x",)
