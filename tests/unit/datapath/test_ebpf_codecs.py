"""The kernel policy rows of an image answer what the image answers, under LPM semantics."""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podnet.datapath.ebpf.audit import enforced_image
from podnet.datapath.ebpf.codecs import (
    EVENT,
    OTHER_PROTOCOL,
    EndpointValue,
    PolicyKey,
    identity_entries,
    ipcache_key_decode,
    policy_entries,
    port_prefixes,
    rule_from_text,
    rule_text,
)
from podnet.datapath.ebpf.events import decode_event
from podnet.k8s.manifests import Document
from podnet.k8s.model import PROTOCOLS, Source
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import DIRECTIONS, RuleRef, compile_cluster
from podnet.policy.mapimage import PROTO_NUMBERS, lookup, map_image
from tests.unit.policy.clusters import PORTS, cluster_manifests


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_port_prefixes_cover_exactly_the_range(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    covered: list[tuple[int, int]] = []
    for value, plen in port_prefixes(lo, hi):
        size = 1 << (16 - plen)
        assert value % size == 0
        covered.append((value, value + size - 1))
    covered.sort()
    assert covered[0][0] == lo and covered[-1][1] == hi
    assert all(x[1] + 1 == y[0] for x, y in itertools.pairwise(covered))
    assert len(covered) <= 30


def _lpm(rows: dict[PolicyKey, bytes], ep: int, peer: int, direction: str, proto: int, port: int) -> bytes | None:
    best: tuple[int, bytes] | None = None
    for k, v in rows.items():
        if (k.endpoint, k.peer, k.direction, k.protocol) != (ep, peer, direction, proto):
            continue
        if port >> (16 - k.plen) == k.port >> (16 - k.plen) and (best is None or k.plen > best[0]):
            best = (k.plen, v)
    return best[1] if best else None


def _compiled(docs: list[dict[str, Any]]) -> Any:
    return compile_cluster(build_cluster([Document(Source("gen.yaml", i), d) for i, d in enumerate(docs)]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_manifests())
def test_kernel_rows_decide_like_the_image(docs: list[dict[str, Any]]) -> None:
    compiled = _compiled(docs)
    ids: dict[RuleRef | None, int] = {None: 0}

    def rule_id(ref: RuleRef | None) -> int:
        return ids.setdefault(ref, len(ids))

    for subject in compiled.identities.pods():
        image = map_image(compiled, subject.id)
        rows = {PolicyKey.unpack(k): v for k, v in policy_entries(7, enforced_image(image), rule_id).items()}
        for direction in DIRECTIONS:
            for peer in compiled.identities.by_id:
                for proto in PROTOCOLS:
                    for port in [1, *PORTS, 81, 65535]:
                        want = lookup(image, direction, peer, proto, port)
                        got = _lpm(rows, 7, peer, direction, PROTO_NUMBERS[proto], port)
                        if got is None:
                            got = _lpm(rows, 7, 0, direction, PROTO_NUMBERS[proto], port)
                        assert got is not None
                        rid, verdict = got[0] | got[1] << 8 | got[2] << 16 | got[3] << 24, got[4]
                        assert rid == ids[want.rule] and verdict == (1 if want.verdict == "allow" else 2)
                other = _lpm(rows, 7, peer, direction, OTHER_PROTOCOL, 0) or _lpm(
                    rows, 7, 0, direction, OTHER_PROTOCOL, 0
                )
                assert other is not None


def test_identity_entries_put_pods_over_cidrs() -> None:
    pod = ipaddress.ip_address("10.0.0.5")
    cidr = ipaddress.ip_network("10.0.0.5/32")
    entries = identity_entries({pod: 300}, {cidr: 16, ipaddress.ip_network("10.0.0.0/8"): 17})
    decoded = {ipcache_key_decode(k): int.from_bytes(v, "little") for k, v in entries.items()}
    assert decoded == {cidr: 300, ipaddress.ip_network("10.0.0.0/8"): 17}


def test_endpoint_and_rule_round_trip() -> None:
    ep = EndpointValue(260, "02:00:00:00:01:02", ipaddress.IPv4Address("10.1.2.3"), None)
    back = EndpointValue.unpack(ep.pack())
    assert (back.identity, back.mac, back.ipv4, back.ipv6) == (260, ep.mac, ep.ipv4, None)
    ref = RuleRef("isolation", "", "ingress", -1, isolated_by=("ns/a", "ns/b"))
    assert rule_from_text(rule_text(ref)) == ref
    ref2 = RuleRef("NetworkPolicy", "db", "egress", 2, "shop", "x")
    assert rule_from_text(rule_text(ref2)) == ref2


def test_event_decoding() -> None:
    src, dst = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")
    raw = EVENT.pack(
        5,
        7,
        300,
        301,
        4,
        3,
        2,
        2,
        133,
        1,
        4,
        6,
        2,
        0,
        40000,
        80,
        src.packed.ljust(16, b"\0"),
        dst.packed.ljust(16, b"\0"),
    )
    ref = RuleRef("NetworkPolicy", "db", "egress", 0, "shop")
    e = decode_event(raw, {4: ref})
    assert (e.type, e.verdict, e.drop_reason_desc, e.direction) == ("drop", "DROPPED", "policy denied", "egress")
    assert (e.source, e.destination, e.sport, e.dport, e.count, e.rule) == (src, dst, 40000, 80, 3, ref)


def test_event_addresses_of_both_families_are_told_apart_by_the_address_cache() -> None:
    def raw(family: int, src: bytes, dst: bytes) -> bytes:
        return EVENT.pack(5, 7, 300, 301, 0, 1, 1, 1, 0, 1, family, 17, 0, 0, 1, 2, src, dst)

    v4 = ipaddress.ip_address("10.0.0.1").packed.ljust(16, b"\0")
    v6 = ipaddress.ip_address("a00:1::").packed  # the same first four bytes as 10.0.0.1
    other = ipaddress.ip_address("10.0.0.9").packed.ljust(16, b"\0")
    for _ in range(2):  # the second time from the cache
        e4, e6 = decode_event(raw(4, v4, other), {}), decode_event(raw(6, v6, v6), {})
        assert (str(e4.source), str(e4.destination)) == ("10.0.0.1", "10.0.0.9")
        assert (str(e6.source), str(e6.destination)) == ("a00:1::", "a00:1::")
    e = decode_event(raw(0, v4, v4), {})  # not an IP packet: no addresses
    assert e.source is None and e.destination is None
