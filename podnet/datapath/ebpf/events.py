"""Ring-buffer records of the tc programs, decoded into :class:`DatapathEvent`. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podnet.k8s.model import Direction, IPAddress
from podnet.policy.compiler import RuleRef

from .codecs import DIR_NAME, DROP_REASONS, EVENT, EVENT_DROP, VERDICT_ALLOW, VERDICT_AUDIT, addr_from16

EventType = Literal["policy-verdict", "drop"]
EventVerdict = Literal["FORWARDED", "DROPPED", "AUDIT"]
PROTOCOL_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
# The addresses of recent events by their kernel bytes: a flood repeats a few addresses, and an address
# object costs ~0.4 µs to make (a cached one ~0.1 µs). Bounded: emptied when it reaches ADDRESS_CACHE_SIZE.
ADDRESS_CACHE_SIZE = 4096
_addresses: dict[bytes, IPAddress] = {}


def _address(family: int, raw: bytes) -> IPAddress:
    key = raw[:4] if family == 4 else raw  # the length tells the families apart
    addr = _addresses.get(key)
    if addr is None:
        if len(_addresses) >= ADDRESS_CACHE_SIZE:
            _addresses.clear()
        addr = _addresses[key] = addr_from16(family, raw)
    return addr


@dataclass(slots=True)
class DatapathEvent:
    """One decision of the kernel: a new connection it allowed, or packets it dropped.

    A value: nothing changes an event once made. Not ``frozen``, because the readers make one per
    kernel event and a frozen dataclass takes four times as long to build (2 µs, a third of what the
    nftables reader spends per event under a flood).

    ``verdict`` AUDIT: a new connection that policy would deny, passed because every policy that
    isolates the pod is in audit mode (``podnet.io/audit: "true"``).

    ``count`` is the number of packets the record stands for: drops of one flow and reason are
    reported at most once a second, the record carrying how many were dropped since the last one.
    ``rule`` is the rule that decided (None when no rule applies: default allow, or no entry).
    ``is_reply``: the packet goes the reply way of its connection. Replies of a live connection pass
    conntrack unrecorded, so this is set on a packet judged after its entry expired (the entry still
    says which side opened the connection) and on a TCP SYN-ACK.
    """

    time_ns: int
    type: EventType
    verdict: EventVerdict
    drop_reason: int
    drop_reason_desc: str
    endpoint: int
    identity: int
    peer_identity: int
    direction: Direction
    protocol: int
    source: IPAddress | None
    destination: IPAddress | None
    sport: int
    dport: int
    tcp_flags: int
    count: int
    rule_id: int
    rule: RuleRef | None
    is_reply: bool = False  # the packet goes the reply way of a connection the endpoint's conntrack knows

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES.get(self.protocol, str(self.protocol))

    def __str__(self) -> str:
        what = self.drop_reason_desc if self.type == "drop" else "new connection"
        return (
            f"{self.verdict} {self.direction} {self.protocol_name} {self.source}:{self.sport} -> "
            f"{self.destination}:{self.dport} ({what}; rule {self.rule or '-'}; x{self.count})"
        )


def decode_event(raw: bytes, rules: dict[int, RuleRef]) -> DatapathEvent:
    """Decode one ring-buffer record; ``rules`` maps rule ids to the rules they stand for."""
    (
        time_ns,
        endpoint,
        identity,
        peer,
        rule_id,
        count,
        etype,
        verdict,
        reason,
        direction,
        family,
        proto,
        tcp_flags,
        is_reply,
        sport,
        dport,
        saddr,
        daddr,
    ) = EVENT.unpack(raw[: EVENT.size])
    src = dst = None
    if family in (4, 6):
        src, dst = _address(family, saddr), _address(family, daddr)
    return DatapathEvent(
        time_ns=time_ns,
        type="drop" if etype == EVENT_DROP else "policy-verdict",
        verdict="FORWARDED" if verdict == VERDICT_ALLOW else "AUDIT" if verdict == VERDICT_AUDIT else "DROPPED",
        drop_reason=reason,
        drop_reason_desc=DROP_REASONS.get(reason, f"reason {reason}") if reason else "",
        endpoint=endpoint,
        identity=identity,
        peer_identity=peer,
        direction=DIR_NAME.get(direction, "egress"),
        protocol=proto,
        source=src,
        destination=dst,
        sport=sport,
        dport=dport,
        tcp_flags=tcp_flags,
        count=count,
        rule_id=rule_id,
        rule=rules.get(rule_id),
        is_reply=bool(is_reply),
    )
