"""NFLOG packets of the nftables backend → :class:`DatapathEvent`, the eBPF datapath's event type. Pure.

The verdict chains log every packet they decide, and only packets that are not part of an
established connection reach them (``ct state established,related accept`` comes first): the first
packet of a connection, its retransmissions, and datagrams of a flow that has seen no reply yet.
To give the eBPF datapath's events, :class:`EventAggregator` keeps

- one ``policy-verdict`` event per connection and side: a repeat of the same 5-tuple on the same
  endpoint and direction within ``repeat_s`` seconds of the last one is not reported again;
- drops aggregated per flow and reason: at most one record per ``aggregate_s`` seconds, whose
  ``count`` is the number of packets it stands for (the packets dropped since the last record).

The payload is parsed from the network header: IPv4 (a later fragment has no ports), IPv6 with its
extension headers walked (hop-by-hop, routing, fragment, destination options, AH), then TCP, UDP
or SCTP ports and the TCP flags.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from podnet.k8s.model import Direction, IPAddress
from podnet.policy.compiler import RuleRef

from ..ebpf.codecs import DROP_REASONS
from ..ebpf.events import DatapathEvent, EventType, EventVerdict
from .nflog import NflogPacket, parse_prefix

IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP = 6, 17, 132
PORT_PROTOCOLS = (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP)
IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options: (next, length in 8-byte units - 1)
IPV6_FRAGMENT, IPV6_AH = 44, 51
# prefix kind → (event type, verdict, drop reason)
KINDS: dict[str, tuple[EventType, EventVerdict, int]] = {
    "allow": ("policy-verdict", "FORWARDED", 0),
    "audit": ("policy-verdict", "AUDIT", 0),
    "deny": ("drop", "DROPPED", 133),
    "spoof-mac": ("drop", "DROPPED", 130),
    "spoof-ip": ("drop", "DROPPED", 132),
    "no-policy": ("drop", "DROPPED", 181),
}


@dataclass(frozen=True, slots=True)
class L3L4:
    source: IPAddress
    destination: IPAddress
    protocol: int
    sport: int = 0
    dport: int = 0
    tcp_flags: int = 0


def parse_packet(family: int, data: bytes) -> L3L4 | None:
    """Addresses, protocol, ports and TCP flags of a packet starting at its IP header; None if truncated."""
    if family == 2:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        ihl = (data[0] & 0x0F) * 4
        proto = data[9]
        src, dst = ipaddress.IPv4Address(data[12:16]), ipaddress.IPv4Address(data[16:20])
        if struct.unpack_from("!H", data, 6)[0] & 0x1FFF:  # a later fragment: no L4 header
            return L3L4(src, dst, proto)
        return _l4(src, dst, proto, data[ihl:])
    if family == 10:
        if len(data) < 40 or data[0] >> 4 != 6:
            return None
        s6, d6 = ipaddress.IPv6Address(data[8:24]), ipaddress.IPv6Address(data[24:40])
        nxt, off = data[6], 40
        for _ in range(8):  # a bounded walk over extension headers
            if nxt in IPV6_EXTENSIONS and off + 2 <= len(data):
                nxt, off = data[off], off + (data[off + 1] + 1) * 8
            elif nxt == IPV6_AH and off + 2 <= len(data):
                nxt, off = data[off], off + (data[off + 1] + 2) * 4
            elif nxt == IPV6_FRAGMENT and off + 8 <= len(data):
                later = struct.unpack_from("!H", data, off + 2)[0] & 0xFFF8
                nxt, off = data[off], off + 8
                if later:
                    return L3L4(s6, d6, nxt)
            else:
                break
        return _l4(s6, d6, nxt, data[off:])
    return None


def _l4(src: IPAddress, dst: IPAddress, proto: int, l4: bytes) -> L3L4:
    if proto in PORT_PROTOCOLS and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4)
        flags = l4[13] if proto == IPPROTO_TCP and len(l4) >= 14 else 0
        return L3L4(src, dst, proto, sport, dport, flags)
    return L3L4(src, dst, proto)


FlowKey = tuple[int, str, int, int, IPAddress, IPAddress, int, int]
V = TypeVar("V")


class EventAggregator:
    """Turns NFLOG packets into events, one per connection and side, drops aggregated (module docstring)."""

    def __init__(self, aggregate_s: float = 1.0, repeat_s: float = 10.0, max_flows: int = 65536) -> None:
        self.aggregate_ns = int(aggregate_s * 1e9)
        self.repeat_ns = int(repeat_s * 1e9)
        self.max_flows = max_flows
        self.aggregated = 0  # drop packets folded into a later record
        self.repeats = 0  # packets of a connection already reported
        self.foreign = 0  # messages whose prefix podnet did not write
        self._drops: OrderedDict[FlowKey, tuple[int, int]] = OrderedDict()  # → (last report, dropped since)
        self._seen: OrderedDict[FlowKey, int] = OrderedDict()  # → last packet

    def event(
        self,
        pkt: NflogPacket,
        now_ns: int,
        identity_of_endpoint: Mapping[int, int],
        peer_identity: Callable[[IPAddress], int],
        rules: Mapping[int, RuleRef],
        wall_offset_ns: int = 0,
    ) -> DatapathEvent | None:
        """The event ``pkt`` stands for, or None (a repeat, an aggregated drop, or not podnet's).

        ``now_ns`` is CLOCK_MONOTONIC (the eBPF events' clock); the event's time is the kernel's stamp
        of the log (wall clock, minus ``wall_offset_ns`` = wall - monotonic) when the message has one,
        else ``now_ns``.
        """
        prefix = parse_prefix(pkt.prefix)
        kind = KINDS.get(prefix.kind) if prefix is not None else None
        l3l4 = parse_packet(pkt.family, pkt.payload)
        if prefix is None or kind is None or l3l4 is None:
            self.foreign += 1
            return None
        etype, verdict, reason = kind
        direction: Direction = "ingress" if prefix.direction == "i" else "egress"
        endpoint = pkt.outdev if direction == "ingress" else pkt.indev
        peer_addr = l3l4.source if direction == "ingress" else l3l4.destination
        key: FlowKey = (endpoint, direction, reason, l3l4.protocol, l3l4.source, l3l4.destination,
                        l3l4.sport, l3l4.dport)  # fmt: skip
        count = 1
        if etype == "drop":
            last = self._drops.get(key)
            if last is not None and now_ns - last[0] < self.aggregate_ns:
                self._drops[key] = (last[0], last[1] + 1)
                self.aggregated += 1
                return None
            count = last[1] + 1 if last is not None else 1
            self._remember(self._drops, key, (now_ns, 0))
        else:
            seen = self._seen.get(key)
            self._remember(self._seen, key, now_ns)
            if seen is not None and now_ns - seen < self.repeat_ns:
                self.repeats += 1
                return None
        return DatapathEvent(
            time_ns=now_ns if pkt.time_ns is None else pkt.time_ns - wall_offset_ns,
            type=etype,
            verdict=verdict,
            drop_reason=reason,
            drop_reason_desc=DROP_REASONS.get(reason, "") if reason else "",
            endpoint=endpoint,
            identity=identity_of_endpoint.get(endpoint, 0),
            peer_identity=peer_identity(peer_addr),
            direction=direction,
            protocol=l3l4.protocol,
            source=l3l4.source,
            destination=l3l4.destination,
            sport=l3l4.sport,
            dport=l3l4.dport,
            tcp_flags=l3l4.tcp_flags,
            count=count,
            rule_id=prefix.rule_id,
            rule=rules.get(prefix.rule_id),
            is_reply=l3l4.protocol == IPPROTO_TCP and l3l4.tcp_flags & 0x12 == 0x12,  # SYN-ACK answers a SYN
        )

    def _remember(self, table: OrderedDict[FlowKey, V], key: FlowKey, value: V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.max_flows:
            table.popitem(last=False)
