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

A flood is hundreds of thousands of messages a second, so the hot path (:func:`parse_raw`,
:meth:`EventAggregator.event`) keeps addresses packed in its flow keys and builds address objects,
peer identities and what a prefix says once per address or prefix, not per message.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


# (source, destination as packed bytes, protocol, source port, destination port, TCP flags)
RawL3L4 = tuple[bytes, bytes, int, int, int, int]
_U16 = struct.Struct("!H").unpack_from
_PORTS = struct.Struct("!HH").unpack_from
_V4 = struct.Struct("!B5xHxB2x4s4s").unpack_from  # version/IHL, fragment offset, protocol, addresses


def parse_raw(family: int, data: bytes) -> RawL3L4 | None:
    """:func:`parse_packet` with the addresses left packed (the hot path builds address objects only
    for the events it reports)."""
    if family == 2:
        if len(data) < 20:
            return None
        vihl, frag, proto, src, dst = _V4(data)
        if vihl >> 4 != 4:
            return None
        if frag & 0x1FFF:  # a later fragment: no L4 header
            return src, dst, proto, 0, 0, 0
        off = (vihl & 0x0F) * 4
    elif family == 10:
        if len(data) < 40 or data[0] >> 4 != 6:
            return None
        src, dst = data[8:24], data[24:40]
        proto, off = data[6], 40
        for _ in range(8):  # a bounded walk over extension headers
            if proto in IPV6_EXTENSIONS and off + 2 <= len(data):
                proto, off = data[off], off + (data[off + 1] + 1) * 8
            elif proto == IPV6_AH and off + 2 <= len(data):
                proto, off = data[off], off + (data[off + 1] + 2) * 4
            elif proto == IPV6_FRAGMENT and off + 8 <= len(data):
                later = _U16(data, off + 2)[0] & 0xFFF8
                proto, off = data[off], off + 8
                if later:
                    return src, dst, proto, 0, 0, 0
            else:
                break
    else:
        return None
    if proto in PORT_PROTOCOLS and off + 4 <= len(data):
        sport, dport = _PORTS(data, off)
        flags = data[off + 13] if proto == IPPROTO_TCP and off + 14 <= len(data) else 0
        return src, dst, proto, sport, dport, flags
    return src, dst, proto, 0, 0, 0


def _address(packed: bytes) -> IPAddress:
    return ipaddress.IPv4Address(packed) if len(packed) == 4 else ipaddress.IPv6Address(packed)


def parse_packet(family: int, data: bytes) -> L3L4 | None:
    """Addresses, protocol, ports and TCP flags of a packet starting at its IP header; None if truncated."""
    raw = parse_raw(family, data)
    if raw is None:
        return None
    src, dst, proto, sport, dport, flags = raw
    return L3L4(_address(src), _address(dst), proto, sport, dport, flags)


# endpoint, direction, drop reason, protocol, source, destination (packed), source and destination port
FlowKey = tuple[int, str, int, int, bytes, bytes, int, int]


@dataclass(frozen=True, slots=True)
class _Decision:
    """What a prefix says, looked up once per prefix."""

    type: EventType
    verdict: EventVerdict
    reason: int
    reason_desc: str
    direction: Direction
    rule_id: int


def _decision(text: str) -> _Decision | None:
    prefix = parse_prefix(text)
    kind = KINDS.get(prefix.kind) if prefix is not None else None
    if prefix is None or kind is None:
        return None
    etype, verdict, reason = kind
    direction: Direction = "ingress" if prefix.direction == "i" else "egress"
    return _Decision(etype, verdict, reason, DROP_REASONS.get(reason, "") if reason else "", direction, prefix.rule_id)


class EventAggregator:
    """Turns NFLOG packets into events, one per connection and side, drops aggregated (module docstring).

    The peer identity ``peer_identity`` gives for an address is remembered until
    :meth:`identities_changed`, which the owner calls when the identity table changes.
    """

    def __init__(self, aggregate_s: float = 1.0, repeat_s: float = 10.0, max_flows: int = 65536) -> None:
        self.aggregate_ns = int(aggregate_s * 1e9)
        self.repeat_ns = int(repeat_s * 1e9)
        self.max_flows = max_flows
        self.aggregated = 0  # drop packets folded into a later record
        self.repeats = 0  # packets of a connection already reported
        self.foreign = 0  # messages whose prefix podnet did not write
        self._drops: OrderedDict[FlowKey, tuple[int, int]] = OrderedDict()  # → (last report, dropped since)
        self._seen: OrderedDict[FlowKey, int] = OrderedDict()  # → last packet
        self._decisions: dict[str, _Decision | None] = {}  # prefix → what it says
        self._addresses: dict[bytes, IPAddress] = {}  # packed → address object, reused across events
        self._peers: dict[bytes, int] = {}  # packed address → its identity

    def identities_changed(self) -> None:
        """Forget the peer identities looked up so far."""
        self._peers.clear()

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
        try:
            decision = self._decisions[pkt.prefix]
        except KeyError:
            if len(self._decisions) >= 4096:
                self._decisions.clear()
            decision = self._decisions[pkt.prefix] = _decision(pkt.prefix)
        raw = parse_raw(pkt.family, pkt.payload)
        if decision is None or raw is None:
            self.foreign += 1
            return None
        src, dst, proto, sport, dport, flags = raw
        direction = decision.direction
        ingress = direction == "ingress"
        endpoint = pkt.outdev if ingress else pkt.indev
        key: FlowKey = (endpoint, direction, decision.reason, proto, src, dst, sport, dport)
        count = 1
        if decision.reason:
            drops = self._drops
            last = drops.get(key)
            if last is not None:
                if now_ns - last[0] < self.aggregate_ns:
                    drops[key] = (last[0], last[1] + 1)
                    self.aggregated += 1
                    return None
                count = last[1] + 1
                drops.move_to_end(key)
            drops[key] = (now_ns, 0)
            if len(drops) > self.max_flows:
                drops.popitem(last=False)
        else:
            seen_at = self._seen
            seen = seen_at.get(key)
            seen_at[key] = now_ns
            if seen is not None:
                seen_at.move_to_end(key)
                if now_ns - seen < self.repeat_ns:
                    self.repeats += 1
                    return None
            elif len(seen_at) > self.max_flows:
                seen_at.popitem(last=False)
        source, destination = self._address(src), self._address(dst)
        peer = self._peers.get(src if ingress else dst)
        if peer is None:
            if len(self._peers) >= self.max_flows:
                self._peers.clear()
            peer = self._peers[src if ingress else dst] = peer_identity(source if ingress else destination)
        return DatapathEvent(
            time_ns=now_ns if pkt.time_ns is None else pkt.time_ns - wall_offset_ns,
            type=decision.type,
            verdict=decision.verdict,
            drop_reason=decision.reason,
            drop_reason_desc=decision.reason_desc,
            endpoint=endpoint,
            identity=identity_of_endpoint.get(endpoint, 0),
            peer_identity=peer,
            direction=direction,
            protocol=proto,
            source=source,
            destination=destination,
            sport=sport,
            dport=dport,
            tcp_flags=flags,
            count=count,
            rule_id=decision.rule_id,
            rule=rules.get(decision.rule_id),
            is_reply=proto == IPPROTO_TCP and flags & 0x12 == 0x12,  # SYN-ACK answers a SYN
        )

    def _address(self, packed: bytes) -> IPAddress:
        found = self._addresses.get(packed)
        if found is None:
            if len(self._addresses) >= self.max_flows:
                self._addresses.clear()
            found = self._addresses[packed] = _address(packed)
        return found
