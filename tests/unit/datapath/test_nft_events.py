"""The nftables backend's events: NFLOG messages parsed, prefixes naming rules, one event per connection and
side, drops aggregated, IPv6 extension headers walked. Pure: the messages are built here byte by byte."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from podnet.agent.nftpath import nflog_group, table_name
from podnet.datapath.nft.events import EventAggregator, parse_packet
from podnet.datapath.nft.nflog import (
    NFGENMSG,
    NFLOG_MSG_TYPE,
    NLMSGHDR,
    NflogError,
    NflogPacket,
    NflogSocket,
    parse_messages,
    parse_prefix,
    prefix,
)
from podnet.datapath.nft.render import chain_rule, parse_verdict_chain, table_script, verdict_chain
from podnet.policy.compiler import RuleRef

SRC, DST = ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Address("10.0.0.2")
RULE = RuleRef("NetworkPolicy", "backend", "ingress", 0, namespace="api")


def ipv4_tcp(sport: int, dport: int, flags: int = 0x02, frag: int = 0) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, frag, 64, 6, 0, SRC.packed, DST.packed)
    return ip + struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, flags, 0, 0, 0)


def attr(typ: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), typ) + value
    return raw + b"\0" * (-len(raw) % 4)


def message(pfx: str, indev: int, outdev: int, payload: bytes, seq: int, family: int = 2) -> bytes:
    body = NFGENMSG.pack(family, 0, 7)
    body += attr(10, pfx.encode() + b"\0") + attr(4, struct.pack("!I", indev)) + attr(5, struct.pack("!I", outdev))
    body += attr(12, struct.pack("!I", seq)) + attr(9, payload) + attr(3, struct.pack("!QQ", 1700000000, 250))
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), NFLOG_MSG_TYPE, 0, 0, 0) + body


def test_messages_parse_with_prefix_interfaces_sequence_and_time() -> None:
    raw = message("pn allow i 42", 3, 7, ipv4_tcp(40000, 9000), 5) + message("pn deny e 9", 7, 3, b"", 6)
    got = list(parse_messages(raw + b"\x10\0\0\0\x02\0\0\0" + b"\0" * 8))  # an ack after them is skipped
    assert [(p.prefix, p.indev, p.outdev, p.seq) for p in got] == [("pn allow i 42", 3, 7, 5), ("pn deny e 9", 7, 3, 6)]
    assert got[0].time_ns == 1700000000 * 10**9 + 250_000 and got[0].family == 2


def shaped(pfx: str, attrs: list[tuple[int, bytes]], payload: bytes, seq: int) -> bytes:
    """A message with the packet header and prefix first, then ``attrs``, the sequence and the payload."""
    body = NFGENMSG.pack(2, 0, 7) + attr(1, b"\x08\x00\x01\x00") + attr(10, pfx.encode() + b"\0")
    body += b"".join(attr(t, v) for t, v in attrs) + attr(12, struct.pack("!I", seq)) + attr(9, payload)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), NFLOG_MSG_TYPE, 0, 0, 0) + body


def test_a_datagram_of_many_messages_of_several_shapes_parses_each_right() -> None:
    u32 = lambda v: struct.pack("!I", v)  # noqa: E731
    # same length and prefix length, different attributes: the shape remembered for one must not read the other
    forward = [(4, u32(3)), (5, u32(7)), (8, b"\x02" * 12)]  # in, out, hardware address
    output = [(5, u32(7)), (2, u32(99)), (6, b"\0" * 12)]  # out, mark, a physical device
    local = [(5, u32(11))]
    rows = [("pn deny i 1", forward, 3, 7), ("pn deny i 2", output, 0, 7), ("pn allow e 33", local, 0, 11)] * 50
    raw = b"".join(shaped(p, a, ipv4_tcp(1000 + i, 80), i) for i, (p, a, _, _) in enumerate(rows))
    got = parse_messages(raw + b"\x14\0\0\0\x03\0\x02\0" + b"\0" * 12)  # and the batch's NLMSG_DONE
    assert len(shaped("pn deny i 1", forward, b"", 0)) == len(shaped("pn deny i 2", output, b"", 0))
    assert [(p.prefix, p.indev, p.outdev, p.seq) for p in got] == [
        (pfx, i_, o, n) for n, (pfx, _, i_, o) in enumerate(rows)
    ]
    assert [struct.unpack_from("!H", p.payload, 20)[0] for p in got] == [1000 + i for i in range(len(rows))]
    assert all(p.time_ns is None for p in got)


def test_cut_messages_and_attributes_are_skipped_not_misread() -> None:
    good = message("pn deny e 9", 7, 3, ipv4_tcp(1, 2), 6)
    bad = bytearray(message("pn deny e 9", 7, 3, ipv4_tcp(1, 2), 5))
    struct.pack_into("=H", bad, 20 + 16, 400)  # the prefix attribute claims more than its message holds
    got = parse_messages(bytes(bad) + good + good[:30])  # and a last message cut by the datagram's end
    assert [(p.seq, p.prefix) for p in got] == [(6, "pn deny e 9")]
    assert parse_messages(b"") == [] and parse_messages(b"\0" * 19) == []


def test_a_socket_with_a_buffer_the_kernel_refuses_is_an_error_naming_it() -> None:
    with pytest.raises(NflogError, match=r"nflog buffer_size: 1000000 is not in 4096\.\.131072"):
        NflogSocket(5, buffer_size=1_000_000)
    with pytest.raises(NflogError, match="queue_threshold 0"):
        NflogSocket(5, queue_threshold=0)
    with pytest.raises(NflogError, match="nflog group: 70000"):
        NflogSocket(70000)


def test_prefixes_round_trip_and_foreign_ones_are_not_podnets() -> None:
    for kind, rid, d in (("allow", 42, "i"), ("deny", 2**47, "e"), ("spoof-ip", 0, "e"), ("no-policy", 0, "i")):
        parsed = parse_prefix(prefix(kind, rid, d))
        assert parsed is not None and (parsed.kind, parsed.rule_id, parsed.direction) == (kind, rid, d)
    assert parse_prefix("DROP IN=eth0") is None and parse_prefix("pn allow e x") is None


def test_verdict_chains_name_rule_direction_and_verdict_and_log_only_with_a_group() -> None:
    name = verdict_chain(12, 2, "egress")
    assert name == "pn_r12_e_deny" and parse_verdict_chain(name) == (12, "e", "deny")
    assert parse_verdict_chain("pn_r12_deny") is None and parse_verdict_chain("anti_spoof") is None
    assert chain_rule(name, None) == "counter drop"
    assert chain_rule("pn_r3_i_allow", 28800) == 'counter log prefix "pn allow i 3" group 28800 return'
    assert "log" not in table_script("podnet_x") and table_script("podnet_x", 5).count("group 5") == 5


def test_names_per_node_are_podnets_and_nft_safe() -> None:
    assert table_name("node-0.example") == "podnet_node_0_example"
    assert nflog_group("node0") != nflog_group("node1") and 0x7000 <= nflog_group("node0") < 0x8000


def packet(pfx: str, payload: bytes, indev: int = 3, outdev: int = 7) -> NflogPacket:
    return NflogPacket(2, pfx, indev, outdev, None, payload)


def test_one_event_per_connection_and_side_with_the_rule_and_identities() -> None:
    agg = EventAggregator(repeat_s=10)
    ids = {3: 100, 7: 200}

    def peer(addr: object) -> int:
        return {SRC: 100, DST: 200}.get(addr, 2)  # type: ignore[call-overload]

    ingress = agg.event(packet("pn allow i 42", ipv4_tcp(40000, 9000)), 0, ids, peer, {42: RULE})
    assert ingress is not None
    assert (ingress.type, ingress.verdict, ingress.direction, ingress.endpoint) == (
        "policy-verdict",
        "FORWARDED",
        "ingress",
        7,
    )
    assert (ingress.identity, ingress.peer_identity, ingress.rule, ingress.rule_id) == (200, 100, RULE, 42)
    assert (ingress.sport, ingress.dport, ingress.tcp_flags, ingress.source, ingress.destination) == (
        40000,
        9000,
        2,
        SRC,
        DST,
    )
    egress = agg.event(packet("pn allow e 0", ipv4_tcp(40000, 9000)), 0, ids, peer, {})
    assert egress is not None and (egress.endpoint, egress.identity, egress.peer_identity, egress.rule) == (
        3,
        100,
        200,
        None,
    )
    # a retransmitted SYN is the same connection: no second event (each one extends the window); 10 s quiet: new
    assert agg.event(packet("pn allow i 42", ipv4_tcp(40000, 9000)), 10**9, ids, peer, {}) is None
    assert agg.event(packet("pn allow i 42", ipv4_tcp(40000, 9000)), 10_500_000_000, ids, peer, {}) is None
    assert agg.event(packet("pn allow i 42", ipv4_tcp(40000, 9000)), 23 * 10**9, ids, peer, {}) is not None
    assert agg.repeats == 2


def test_drops_are_aggregated_once_a_second_with_their_count() -> None:
    agg = EventAggregator(aggregate_s=1.0)
    pkt = packet("pn deny e 9", ipv4_tcp(40000, 5432))
    got = [agg.event(pkt, t * 10**8, {}, lambda a: 2, {}) for t in range(25)]  # every 0.1 s for 2.5 s
    events = [(i, e.count, e.drop_reason, e.drop_reason_desc) for i, e in enumerate(got) if e is not None]
    assert events == [(0, 1, 133, "policy denied"), (10, 10, 133, "policy denied"), (20, 10, 133, "policy denied")]
    assert agg.aggregated == 22
    spoof = agg.event(packet("pn spoof-ip e", ipv4_tcp(1, 2)), 0, {}, lambda a: 2, {})
    assert spoof is not None and (spoof.drop_reason, spoof.type, spoof.rule) == (132, "drop", None)
    assert agg.event(packet("something else", ipv4_tcp(1, 2)), 0, {}, lambda a: 2, {}) is None and agg.foreign == 1


def ipv6(next_header: int, rest: bytes) -> bytes:
    s6, d6 = ipaddress.IPv6Address("fd00::1"), ipaddress.IPv6Address("fd00::2")
    return struct.pack("!IHBB16s16s", 6 << 28, len(rest), next_header, 64, s6.packed, d6.packed) + rest


UDP = struct.pack("!HHHH", 5353, 53, 8, 0)


@pytest.mark.parametrize(
    ("payload", "ports"),
    [
        (ipv6(17, UDP), (5353, 53)),
        (
            ipv6(0, bytes([60, 0]) + b"\0" * 6 + bytes([43, 1]) + b"\0" * 14 + bytes([17, 0]) + b"\0" * 6 + UDP),
            (5353, 53),
        ),
        (ipv6(44, bytes([17, 0, 0, 0]) + b"\0\0\0\1" + UDP), (5353, 53)),  # first fragment: ports
        (ipv6(44, bytes([17, 0, 0, 8]) + b"\0\0\0\1" + UDP), (0, 0)),  # a later fragment has none
        (ipv6(51, bytes([17, 4]) + b"\0" * 22 + UDP), (5353, 53)),
    ],
)
def test_ipv6_extension_headers_are_walked_to_the_ports(payload: bytes, ports: tuple[int, int]) -> None:
    got = parse_packet(10, payload)
    assert got is not None and got.protocol == 17 and (got.sport, got.dport) == ports


def test_ipv4_later_fragments_and_truncated_packets() -> None:
    frag = parse_packet(2, ipv4_tcp(1, 2, frag=100))
    assert frag is not None and (frag.sport, frag.dport, frag.protocol) == (0, 0, 6)
    assert parse_packet(2, b"\x45\0") is None and parse_packet(10, ipv4_tcp(1, 2)) is None


def test_peer_identities_are_remembered_until_the_identities_change() -> None:
    agg = EventAggregator()
    table = {SRC: 100}
    asked: list[object] = []

    def peer(addr: object) -> int:
        asked.append(addr)
        return table.get(addr, 2)  # type: ignore[call-overload]

    def ingress(sport: int) -> int:
        event = agg.event(packet("pn allow i 42", ipv4_tcp(sport, 80)), 0, {}, peer, {})
        assert event is not None
        return event.peer_identity

    assert [ingress(1), ingress(2)] == [100, 100] and asked == [SRC]
    table[SRC] = 300  # relabelled: a new identity
    assert ingress(3) == 100  # not told yet
    agg.identities_changed()
    assert ingress(4) == 300 and asked == [SRC, SRC]
