"""The nftables backend's table and map elements, computed from identities and map images. Pure.

nftables has no LPM lookup feeding a second lookup, so the peer identity is folded into the policy
maps: each identity's addresses become disjoint address intervals (the laminar CIDRs and pod
addresses flattened: every interval belongs to its longest covering prefix, pods over CIDRs), and a
peer's exact rows are written once per interval of that peer. Lookup order is the eBPF one: the
exact map (interface, peer address, protocol, port), then the wildcard map (interface, protocol,
port); a miss on both drops ("no policy entry"). A decision is ``goto`` a chain per rule and verdict
(``pn_r<id>_allow`` and ``_audit`` count and return, ``pn_r<id>_deny`` counts and drops): the number of rules
evaluated per packet does not grow with the number of policies.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from podnet.k8s.model import Direction, IPAddress, IPNetwork
from podnet.policy.compiler import Decision, RuleRef
from podnet.policy.identity import WORLD_V4, WORLD_V6
from podnet.policy.mapimage import WILDCARD

from ..ebpf.audit import Enforced
from ..ebpf.codecs import VERDICT_ALLOW, VERDICT_AUDIT, other_protocol_row
from .nflog import prefix as nflog_prefix

Span = tuple[int, int]
Part = str | int | Span
ElemKey = tuple[Part, ...]
PORT_PROTOCOLS = "{ tcp, udp, sctp }"
PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp"}
PROTO_NUMBERS = {v: k for k, v in PROTO_NAMES.items()}
DIRECTIONS: tuple[Direction, Direction] = ("ingress", "egress")
FAMILIES = (4, 6)


def exact_map(direction: Direction, family: int) -> str:
    return f"exact_{direction}_v{family}"


def other_map(direction: Direction, family: int) -> str:
    return f"other_{direction}_v{family}"


def wild_map(direction: Direction) -> str:
    return f"wild_{direction}"


def wild_other_map(direction: Direction) -> str:
    return f"wild_other_{direction}"


def verdict_name(code: int) -> str:
    return "allow" if code == VERDICT_ALLOW else "audit" if code == VERDICT_AUDIT else "deny"


def verdict_chain(rule_id: int, code: int, direction: Direction) -> str:
    """``pn_r<id>_<e|i>_<allow|audit|deny>``: one chain per rule, direction and verdict."""
    return f"pn_r{rule_id}_{direction[0]}_{verdict_name(code)}"


def parse_verdict_chain(name: str) -> tuple[int, str, str] | None:
    """(rule id, "e"/"i", verdict) of a chain named by :func:`verdict_chain`; None for other names."""
    parts = name.split("_")
    if len(parts) != 4 or parts[0] != "pn" or not parts[1].startswith("r") or not parts[1][1:].isdigit():
        return None
    if parts[2] not in ("e", "i") or parts[3] not in ("allow", "audit", "deny"):
        return None
    return int(parts[1][1:]), parts[2], parts[3]


def log_statement(log_group: int | None, kind: str, direction: str = "", rule_id: int = 0) -> str:
    """``log prefix "pn <kind> ..." group N `` (empty without a group): the packet goes to NFLOG."""
    if log_group is None:
        return ""
    return f'log prefix "{nflog_prefix(kind, rule_id, direction)}" group {log_group} '


def chain_rule(name: str, log_group: int | None) -> str:
    """The one rule of a verdict chain: count, log (with a group), then drop (deny) or return."""
    parsed = parse_verdict_chain(name)
    if parsed is None:
        raise ValueError(f"not a verdict chain: {name}")
    rule_id, direction, verdict = parsed
    end = "drop" if verdict == "deny" else "return"
    return f"counter {log_statement(log_group, verdict, direction, rule_id)}{end}"


def table_script(table: str, log_group: int | None = None) -> str:
    """The table, created empty; ``add`` everywhere, so running it on an existing table changes nothing.

    With ``log_group``, drops by anti-spoofing and for a missing policy entry go to that NFLOG group too.
    """
    mac_log, ip_log = log_statement(log_group, "spoof-mac", "e"), log_statement(log_group, "spoof-ip", "e")
    lines = [f"add table inet {table}"]
    for name, typ in (
        ("endpoints", "ifname"),
        ("ep_mac", "ifname . ether_addr"),
        ("ep_v4", "ifname . ipv4_addr"),
        ("ep_v6", "ifname . ipv6_addr"),
    ):
        lines.append(f"add set inet {table} {name} {{ type {typ}; }}")
    for name in ("spoofed", "no_policy"):
        lines.append(f"add counter inet {table} {name}")
    for d in DIRECTIONS:
        for fam in FAMILIES:
            addr = "ipv4_addr" if fam == 4 else "ipv6_addr"
            lines.append(
                f"add map inet {table} {exact_map(d, fam)} "
                f"{{ type ifname . {addr} . inet_proto . inet_service : verdict; flags interval; }}"
            )
            lines.append(
                f"add map inet {table} {other_map(d, fam)} {{ type ifname . {addr} : verdict; flags interval; }}"
            )
        wild_type = "ifname . inet_proto . inet_service : verdict; flags interval;"
        lines.append(f"add map inet {table} {wild_map(d)} {{ type {wild_type} }}")
        lines.append(f"add map inet {table} {wild_other_map(d)} {{ type ifname : verdict; }}")
    for chain in ("anti_spoof", "ingress_check", "egress_check", "pn_policy"):
        lines.append(f"add chain inet {table} {chain}")
    lines.append(f"flush chain inet {table} anti_spoof")
    lines += [
        f"add rule inet {table} anti_spoof iifname != @endpoints return",
        f'add rule inet {table} anti_spoof iifname . ether saddr != @ep_mac counter name "spoofed" {mac_log}drop',
        f"add rule inet {table} anti_spoof meta nfproto ipv4 iifname . ip saddr != @ep_v4 "
        f'counter name "spoofed" {ip_log}drop',
        f"add rule inet {table} anti_spoof icmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }}"
        " return",
        f"add rule inet {table} anti_spoof meta nfproto ipv6 iifname . ip6 saddr != @ep_v6 "
        f'counter name "spoofed" {ip_log}drop',
    ]
    for d, dev, addr in (("egress", "iifname", "daddr"), ("ingress", "oifname", "saddr")):
        chain = f"{d}_check"
        lines.append(f"flush chain inet {table} {chain}")
        for fam, ipx in ((4, "ip"), (6, "ip6")):
            lines.append(
                f"add rule inet {table} {chain} meta nfproto ipv{fam} meta l4proto {PORT_PROTOCOLS} "
                f"{dev} . {ipx} {addr} . meta l4proto . th dport vmap @{exact_map(d, fam)}"
            )
        lines.append(
            f"add rule inet {table} {chain} meta l4proto {PORT_PROTOCOLS} "
            f"{dev} . meta l4proto . th dport vmap @{wild_map(d)}"
        )
        for fam, ipx in ((4, "ip"), (6, "ip6")):
            lines.append(
                f"add rule inet {table} {chain} meta nfproto ipv{fam} meta l4proto != {PORT_PROTOCOLS} "
                f"{dev} . {ipx} {addr} vmap @{other_map(d, fam)}"
            )
        lines.append(f"add rule inet {table} {chain} meta l4proto != {PORT_PROTOCOLS} {dev} vmap @{wild_other_map(d)}")
        no_policy_log = log_statement(log_group, "no-policy", d[0])
        lines.append(f'add rule inet {table} {chain} counter name "no_policy" {no_policy_log}drop')
    lines += [
        f"flush chain inet {table} pn_policy",
        f"add rule inet {table} pn_policy ct state established,related accept",
        f"add rule inet {table} pn_policy icmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }}"
        " accept",
        f"add rule inet {table} pn_policy iifname @endpoints jump egress_check",
        f"add rule inet {table} pn_policy oifname @endpoints jump ingress_check",
    ]
    for hook, prio in (("prerouting", -300), ("forward", 0), ("input", 0), ("output", 0)):
        base = "anti_spoof_hook" if hook == "prerouting" else hook
        target = "anti_spoof" if hook == "prerouting" else "pn_policy"
        lines.append(f"add chain inet {table} {base} {{ type filter hook {hook} priority {prio}; policy accept; }}")
        lines.append(f"flush chain inet {table} {base}")
        lines.append(f"add rule inet {table} {base} jump {target}")
    return "\n".join(lines) + "\n"


# -- identities as address intervals -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressPlan:
    """Per identity, the disjoint address intervals (per family) the datapath gives that identity."""

    intervals: dict[int, dict[int, list[Span]]]


def _span(net: IPNetwork) -> Span:
    return int(net.network_address), int(net.broadcast_address)


def address_plan(address_identity: dict[IPAddress, int], cidr_identity: dict[IPNetwork, int]) -> AddressPlan:
    """Flatten pod addresses and laminar CIDRs into disjoint intervals, longest prefix (pods first) winning."""
    out: dict[int, dict[int, list[Span]]] = {}
    for fam, bits, world in ((4, 32, WORLD_V4), (6, 128, WORLD_V6)):
        items: list[tuple[int, Span, int]] = []  # (priority, span, identity)
        for net, ident in cidr_identity.items():
            if net.version == fam:
                items.append((net.prefixlen, _span(net), ident))
        for addr, ident in address_identity.items():
            if addr.version == fam:
                items.append((bits + 1, (int(addr), int(addr)), ident))
        points = {0, 1 << bits}
        for _, (lo, hi), _ in items:
            points |= {lo, hi + 1}
        edges = sorted(points)
        merged: list[tuple[int, int, int]] = []
        for lo, nxt in itertools.pairwise(edges):
            covering = [(prio, ident) for prio, (a, b), ident in items if a <= lo <= b]
            ident = max(covering)[1] if covering else world
            if merged and merged[-1][2] == ident and merged[-1][1] + 1 == lo:
                merged[-1] = (merged[-1][0], nxt - 1, ident)
            else:
                merged.append((lo, nxt - 1, ident))
        for lo, hi, ident in merged:
            out.setdefault(ident, {}).setdefault(fam, []).append((lo, hi))
    return AddressPlan(out)


# -- elements ----------------------------------------------------------------------------------

Elements = dict[str, dict[ElemKey, str]]  # map name -> key -> verdict ("goto chain")


def endpoint_elements(
    ifname: str, rows: Enforced, plan: AddressPlan, rule_id: Callable[[RuleRef | None], int]
) -> Elements:
    """Every map element of one endpoint; ``rows`` is ``audit.enforced_image(image, ...)``."""
    out: Elements = {}

    def put(m: str, key: ElemKey, row: tuple[Decision, int], direction: Direction) -> None:
        out.setdefault(m, {})[key] = f"goto {verdict_chain(rule_id(row[0].rule), row[1], direction)}"

    groups: dict[tuple[Direction, int], list[tuple[Decision, int]]] = {}
    for key in sorted(rows):
        row = rows[key]
        groups.setdefault((key.direction, key.peer), []).append(row)
        if key.peer == WILDCARD:
            put(wild_map(key.direction), (ifname, key.protocol, (key.lo, key.hi)), row, key.direction)
            continue
        for fam, spans in plan.intervals.get(key.peer, {}).items():
            for span in spans:
                put(exact_map(key.direction, fam), (ifname, span, key.protocol, (key.lo, key.hi)), row, key.direction)
    for (direction, peer), group in groups.items():
        other = other_protocol_row(group)
        if peer == WILDCARD:
            put(wild_other_map(direction), (ifname,), other, direction)
            continue
        for fam, spans in plan.intervals.get(peer, {}).items():
            for span in spans:
                put(other_map(direction, fam), (ifname, span), other, direction)
    return out


def _addr(fam: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if fam == 4 else ipaddress.IPv6Address(value))


def render_key(map_name: str, key: ElemKey) -> str:
    fam = 6 if map_name.endswith("_v6") else 4
    parts: list[str] = []
    for i, part in enumerate(key):
        if isinstance(part, str):
            parts.append('"' + part + '"')
        elif isinstance(part, int):
            parts.append(str(part))
        else:
            is_addr = i == 1 and (map_name.startswith("exact_") or map_name.startswith("other_"))
            lo, hi = part
            a, b = (_addr(fam, lo), _addr(fam, hi)) if is_addr else (str(lo), str(hi))
            parts.append(a if lo == hi else f"{a}-{b}")
    return " . ".join(parts)


def parse_json_key(map_name: str, raw: object) -> ElemKey:
    """A map element key from ``nft -j`` output, in the form :func:`endpoint_elements` uses."""
    items = raw["concat"] if isinstance(raw, dict) and "concat" in raw else [raw]
    out: list[Part] = []
    for i, item in enumerate(items):
        is_addr = i == 1 and (map_name.startswith("exact_") or map_name.startswith("other_"))
        is_proto = (i == 1 and map_name.startswith("wild_") and not map_name.startswith("wild_other")) or (
            i == 2 and map_name.startswith("exact_")
        )
        if is_addr:
            if isinstance(item, dict) and "prefix" in item:
                out.append(_span(ipaddress.ip_network(f"{item['prefix']['addr']}/{item['prefix']['len']}")))
            elif isinstance(item, dict) and "range" in item:
                lo, hi = item["range"]
                out.append((int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi))))
            else:
                a = int(ipaddress.ip_address(str(item)))
                out.append((a, a))
        elif is_proto:
            out.append(PROTO_NUMBERS.get(str(item), 0) if isinstance(item, str) else int(str(item)))
        elif isinstance(item, str) and i == 0:
            out.append(item)
        elif isinstance(item, dict) and "range" in item:
            lo, hi = item["range"]
            out.append((int(lo), int(hi)))
        else:
            n = int(str(item))
            out.append((n, n))
    return tuple(out)
