"""Byte layouts of podnet's BPF maps and ring-buffer records (mirrors ``podnet.h``), and the
translation of a compiled map image into kernel map entries. Pure: no I/O.

The policy map is an LPM trie over (endpoint, peer identity, direction, protocol, port prefix):
a port range from the image becomes the few prefixes that cover it exactly, so a lookup is one
trie walk whatever the number of ranges. Protocols other than TCP/UDP/SCTP use protocol 0 with an
empty port prefix; such a row is allowed toward a peer exactly when every TCP, UDP and SCTP port is
(a rule without ``ports`` admits every protocol, as in Cilium), else denied by the first denying rule.
"""

from __future__ import annotations

import ipaddress
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

from podnet.k8s.model import Direction, IPAddress, IPNetwork
from podnet.policy.compiler import Decision, RuleRef
from podnet.policy.mapimage import MapKey

DIR_CODE: dict[Direction, int] = {"ingress": 0, "egress": 1}
DIR_NAME: dict[int, Direction] = {0: "ingress", 1: "egress"}
VERDICT_ALLOW = 1
VERDICT_DENY = 2
VERDICT_AUDIT = 3
TIER_CODE = {"default": 0, "admin": 1, "network": 2, "baseline": 3}
EVENT_POLICY_VERDICT = 1
EVENT_DROP = 2
EP_HAS_V4 = 1
EP_HAS_V6 = 2
EP_OWNS_CLSACT = 4
OTHER_PROTOCOL = 0

DROP_REASONS: dict[int, str] = {
    130: "spoofed source (MAC)",
    132: "spoofed source",
    133: "policy denied",
    134: "invalid packet",
    160: "no endpoint",
    181: "no policy entry",
}
COUNTERS = (
    "packets",
    "forwarded",
    "drop_policy",
    "drop_spoof",
    "drop_other",
    "new_connections",
    "ct_hits",
    "events_lost",
    "events_aggregated",
    "redirected",
    "redirected_neigh",
    "related",
    "redirected_uplink",
    "peer_admitted",
)
N_COUNTERS = 16
RULE_TEXT_SIZE = 1024

ENDPOINT = struct.Struct("<I4s16s6sBx6s2x")
LOCAL_KEY = struct.Struct("<B3x16s")
LOCAL_VALUE = struct.Struct("<I6s6s")
IFINDEX = struct.Struct("<I")
IPCACHE_KEY = struct.Struct("<IB3x16s")
IDENTITY = struct.Struct("<I")
POLICY_KEY = struct.Struct("<IIIBB2s")
POLICY_VALUE = struct.Struct("<IBBxx")
CT_KEY = struct.Struct("<IBB2s2s2x16s16s")
CT_VALUE = struct.Struct("<QQQQIBBH")
EVENT = struct.Struct("<QIIIIIBBBBBBBBHH16s16s")
COUNTER = struct.Struct("<Q")

assert (
    ENDPOINT.size == 40
    and LOCAL_KEY.size == 20
    and LOCAL_VALUE.size == 16
    and IPCACHE_KEY.size == 24
    and POLICY_KEY.size == 16
    and POLICY_VALUE.size == 8
)
assert CT_KEY.size == 44 and CT_VALUE.size == 40 and EVENT.size == 72


def peer_tag(ifindex: int) -> int:
    """A local endpoint's tag in a conntrack entry (``pn_peer_tag`` in podnet.h): never 0."""
    return ifindex % 0xFFFF + 1


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"bad MAC address {mac!r}")
    return bytes(int(p, 16) for p in parts)


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def addr16(addr: IPAddress) -> bytes:
    """An address as the 16 bytes the kernel structs hold (IPv4 in the first four)."""
    return addr.packed.ljust(16, b"\0")


def addr_from16(family: int, raw: bytes) -> IPAddress:
    return ipaddress.IPv4Address(raw[:4]) if family == 4 else ipaddress.IPv6Address(raw)


# -- endpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointValue:
    identity: int
    mac: str
    ipv4: ipaddress.IPv4Address | None
    ipv6: ipaddress.IPv6Address | None
    flags: int = 0
    host_mac: str = "00:00:00:00:00:00"

    def pack(self) -> bytes:
        flags = self.flags & EP_OWNS_CLSACT
        v4 = b"\0" * 4
        v6 = b"\0" * 16
        if self.ipv4 is not None:
            flags |= EP_HAS_V4
            v4 = self.ipv4.packed
        if self.ipv6 is not None:
            flags |= EP_HAS_V6
            v6 = self.ipv6.packed
        return ENDPOINT.pack(self.identity, v4, v6, mac_bytes(self.mac), flags, mac_bytes(self.host_mac))

    @classmethod
    def unpack(cls, raw: bytes) -> EndpointValue:
        identity, v4, v6, mac, flags, host_mac = ENDPOINT.unpack(raw[: ENDPOINT.size])
        return cls(
            identity,
            mac_text(mac),
            ipaddress.IPv4Address(v4) if flags & EP_HAS_V4 else None,
            ipaddress.IPv6Address(v6) if flags & EP_HAS_V6 else None,
            flags,
            mac_text(host_mac),
        )

    def local_keys(self) -> list[bytes]:
        """The pod's addresses as ``pn_local`` keys."""
        return [LOCAL_KEY.pack(a.version, addr16(a)) for a in (self.ipv4, self.ipv6) if a is not None]

    def local_value(self, ifindex: int) -> bytes:
        """The ``pn_local`` value of the pod behind host veth ``ifindex``: the ifindex and the link's MACs."""
        return LOCAL_VALUE.pack(ifindex, mac_bytes(self.mac), mac_bytes(self.host_mac))


# -- ipcache -----------------------------------------------------------------------------------


def ipcache_key(net: IPNetwork) -> bytes:
    return IPCACHE_KEY.pack(32 + net.prefixlen, net.version, addr16(net.network_address))


def ipcache_key_decode(raw: bytes) -> IPNetwork:
    plen, family, addr = IPCACHE_KEY.unpack(raw)
    return ipaddress.ip_network(f"{addr_from16(family, addr)}/{plen - 32}")


def identity_entries(address_identity: dict[IPAddress, int], cidr_identity: dict[IPNetwork, int]) -> dict[bytes, bytes]:
    """The ipcache contents: every pod address as a host prefix, every policy CIDR as itself."""
    out: dict[bytes, bytes] = {}
    for net, ident in cidr_identity.items():
        out[ipcache_key(net)] = IDENTITY.pack(ident)
    for addr, ident in address_identity.items():
        out[ipcache_key(ipaddress.ip_network(addr))] = IDENTITY.pack(ident)
    return out


def pod_entries(address_identity: dict[IPAddress, int]) -> dict[bytes, bytes]:
    """The ``pn_pods`` contents: every pod address of the cluster, with its identity."""
    return {LOCAL_KEY.pack(a.version, addr16(a)): IDENTITY.pack(i) for a, i in address_identity.items()}


# -- policy ------------------------------------------------------------------------------------


def port_prefixes(lo: int, hi: int) -> list[tuple[int, int]]:
    """The minimal (value, prefix length) cover of the 16-bit range [lo, hi]."""
    if not 0 <= lo <= hi <= 0xFFFF:
        raise ValueError(f"bad port range {lo}-{hi}")
    out: list[tuple[int, int]] = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while lo + size - 1 > hi:
            size >>= 1
        out.append((lo, 16 - size.bit_length() + 1))
        lo += size
    return out


def policy_key(endpoint: int, peer: int, direction: Direction, protocol: int, port: int, plen: int) -> bytes:
    return POLICY_KEY.pack(80 + plen, endpoint, peer, DIR_CODE[direction], protocol, port.to_bytes(2, "big"))


@dataclass(frozen=True, slots=True)
class PolicyKey:
    endpoint: int
    peer: int
    direction: Direction
    protocol: int
    port: int
    plen: int

    @classmethod
    def unpack(cls, raw: bytes) -> PolicyKey:
        plen, ep, peer, d, proto, port = POLICY_KEY.unpack(raw)
        return cls(ep, peer, DIR_NAME[d], proto, int.from_bytes(port, "big"), plen - 80)


def policy_value(decision: Decision, code: int, rule_id: Callable[[RuleRef | None], int]) -> bytes:
    return POLICY_VALUE.pack(rule_id(decision.rule), code, TIER_CODE[decision.tier])


def policy_entries(
    endpoint: int, rows: dict[MapKey, tuple[Decision, int]], rule_id: Callable[[RuleRef | None], int]
) -> dict[bytes, bytes]:
    """Every kernel policy-map entry of one endpoint; ``rows`` is ``audit.enforced_image(image, ...)``."""
    out: dict[bytes, bytes] = {}
    groups: dict[tuple[Direction, int], list[tuple[Decision, int]]] = {}
    for key in sorted(rows):
        decision, code = rows[key]
        groups.setdefault((key.direction, key.peer), []).append((decision, code))
        value = policy_value(decision, code, rule_id)
        for port, plen in port_prefixes(key.lo, key.hi):
            out[policy_key(endpoint, key.peer, key.direction, key.protocol, port, plen)] = value
    for (direction, peer), group in groups.items():
        decision, code = other_protocol_row(group)
        out[policy_key(endpoint, peer, direction, OTHER_PROTOCOL, 0, 0)] = policy_value(decision, code, rule_id)
    return out


def other_protocol_row(rows: list[tuple[Decision, int]]) -> tuple[Decision, int]:
    """Protocols without ports toward one peer: allowed when every port is, else the first non-allow row."""
    for row in rows:
        if row[1] != VERDICT_ALLOW:
            return row
    return rows[0]


# -- rules -------------------------------------------------------------------------------------


def rule_text(ref: RuleRef) -> bytes:
    """A rule as the JSON text stored in the pinned rule map (cut to fit, isolated_by last)."""
    isolated = list(ref.isolated_by)
    while True:
        doc = {
            "kind": ref.kind,
            "name": ref.name,
            "direction": ref.direction,
            "index": ref.index,
            "namespace": ref.namespace,
            "rule_name": ref.rule_name,
            "isolated_by": isolated,
        }
        raw = json.dumps(doc, separators=(",", ":")).encode()
        if len(raw) < RULE_TEXT_SIZE or not isolated:
            return raw[: RULE_TEXT_SIZE - 1].ljust(RULE_TEXT_SIZE, b"\0")
        isolated.pop()


def rule_from_text(raw: bytes) -> RuleRef:
    doc = json.loads(raw.rstrip(b"\0").decode())
    direction: Direction = "egress" if doc["direction"] == "egress" else "ingress"
    return RuleRef(
        str(doc["kind"]),
        str(doc["name"]),
        direction,
        int(doc["index"]),
        doc.get("namespace"),
        str(doc.get("rule_name", "")),
        tuple(doc.get("isolated_by", ())),
    )


# -- conntrack ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CtEntry:
    """One conntrack entry, from the endpoint's point of view (local = the pod's side)."""

    endpoint: int
    protocol: int
    local: IPAddress
    lport: int
    remote: IPAddress
    rport: int
    origin: Direction
    rule_id: int
    packets: int
    nbytes: int
    closing: bool
    peer_tag: int = 0  # egress entry of a TCP connection to a local pod: that pod's tag once its ingress admitted it

    @classmethod
    def unpack(cls, key: bytes, value: bytes) -> CtEntry:
        ep, family, proto, lport, rport, laddr, raddr = CT_KEY.unpack(key)
        _created, _expires, packets, nbytes, rule, origin, closing, peer = CT_VALUE.unpack(value[: CT_VALUE.size])
        return cls(
            ep,
            proto,
            addr_from16(family, laddr),
            int.from_bytes(lport, "big"),
            addr_from16(family, raddr),
            int.from_bytes(rport, "big"),
            DIR_NAME[origin],
            rule,
            packets,
            nbytes,
            bool(closing),
            peer,
        )


def sum_percpu(raw: bytes) -> int:
    return sum(v for (v,) in COUNTER.iter_unpack(raw))
