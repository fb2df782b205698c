"""Real packets through the eBPF datapath: what the compiler decides is what the kernel does."""

from __future__ import annotations

import ctypes
import gc
import ipaddress
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from podnet.datapath.ebpf import DatapathEvent, Endpoint, libbpf
from podnet.datapath.ebpf.codecs import CT_VALUE, CtEntry, peer_tag
from podnet.flows.decoder import Enricher, decode
from podnet.k8s.model import Protocol
from podnet.policy.compiler import CompiledPolicy, Decision
from podnet.policy.mapimage import map_image

from .agents import HOLD
from .conftest import NAMESPACE, SCTP_PORTS, TCP_PORTS, UDP_PORTS, Lab
from .topology import sh

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_RINGBUF = 27

PODS = ("web", "db", "client")


def np(name: str, app: str, types: list[str], audit: bool = False, **rules: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": types, **rules}
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if audit:
        meta["annotations"] = {"podnet.io/audit": "true"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


def pods(app: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app": app}}}


def subject(app: str) -> dict[str, Any]:
    return {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": app}}}}


# Admin tiers: the cluster denies client -> web on TCP 8081 before any NetworkPolicy (ANP), and, by
# default (BANP: only where no NetworkPolicy isolates), web's ingress from client on TCP 8080.
ADMIN = [
    {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "no-client-to-8081"},
        "spec": {
            "priority": 10,
            "subject": subject("client"),
            "egress": [
                {
                    "name": "deny-8081",
                    "action": "Deny",
                    "to": [subject("web")],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": 8081}}],
                }
            ],
        },
    },
    {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "subject": subject("web"),
            "ingress": [
                {
                    "name": "no-client-8080",
                    "action": "Deny",
                    "from": [subject("client")],
                    "ports": [{"portNumber": {"protocol": "TCP", "port": 8080}}],
                }
            ],
        },
    },
]

# db accepts web on a few ports (and client on its named port "dns") and initiates nothing; web may
# only talk to the /24 except client.
POLICIES_V1 = [
    np(
        "db-ingress",
        "db",
        ["Ingress"],
        ingress=[
            {
                "from": [pods("web")],
                "ports": [
                    {"protocol": "TCP", "port": 5432},
                    {"protocol": "TCP", "port": 8000, "endPort": 8080},
                    {"protocol": "UDP", "port": 53},
                    {"protocol": "SCTP", "port": 7777},
                ],
            },
            {"from": [pods("client")], "ports": [{"protocol": "UDP", "port": "dns"}]},
            {"from": [pods("far")], "ports": [{"protocol": "TCP", "port": 9000}]},
        ],
    ),
    np("db-egress", "db", ["Egress"], egress=[]),
    np(
        "web-egress",
        "web",
        ["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": "10.200.0.0/24", "except": ["10.200.0.13/32"]}}]}],
    ),
    *ADMIN,
]

# Audit mode: a policy that would isolate web's ingress to db only, annotated podnet.io/audit.
POLICIES_AUDIT = [*POLICIES_V1, np("web-only-db", "web", ["Ingress"], audit=True, ingress=[{"from": [pods("db")]}])]

# The change: web loses 5432, client gains 9000.
POLICIES_V2 = [
    np(
        "db-ingress",
        "db",
        ["Ingress"],
        ingress=[
            {
                "from": [pods("web")],
                "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8080}, {"protocol": "UDP", "port": 53}],
            },
            {"from": [pods("client")], "ports": [{"protocol": "TCP", "port": 9000}]},
        ],
    ),
    *POLICIES_V1[1:],
]

Case = tuple[str, str, Protocol, int]


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for src in PODS:
        for dst in PODS:
            if src != dst:
                cases += [(src, dst, "TCP", p) for p in TCP_PORTS]
                cases += [(src, dst, "UDP", p) for p in UDP_PORTS]
                cases += [(src, dst, "SCTP", p) for p in SCTP_PORTS]
    return cases


def verdict(lab: Lab, compiled: CompiledPolicy, case: Case) -> Any:
    src, dst, proto, port = case
    return compiled.decide(lab.identity(compiled, src), lab.identity(compiled, dst), proto, port)


def run_cases(lab: Lab, cases: list[Case], timeout: float = 1.0, family: int = 4) -> dict[Case, bool]:
    """Try every case with real packets; True when the connection worked (SCTP: the packet arrived)."""
    markers: dict[Case, str] = {}
    out: dict[Case, bool] = {}
    for src in sorted({c[0] for c in cases}):
        mine = [c for c in cases if c[0] == src]
        probes: list[dict[str, object]] = []
        for c in mine:
            markers[c] = f"{c[0]}-{c[1]}-{c[2]}-{c[3]}-{secrets.token_hex(4)}"
            kind = c[2].lower()
            dst = str(lab.topo.pods[c[1]].ip if family == 4 else lab.topo.pods[c[1]].ip6)
            probe: dict[str, object] = {"kind": kind, "dst": dst, "port": c[3], "data": markers[c], "timeout": timeout}
            if kind == "sctp":  # a fresh flow each time, as a new association would be
                probe["sport"] = 20000 + secrets.randbelow(40000)
            probes.append(probe)
        for c, ok in zip(mine, lab.topo.probe(src, probes), strict=True):
            out[c] = ok
    for c in cases:
        if c[2] == "SCTP":
            out[c] = lab.topo.wait_logged(c[1], markers[c], timeout=0.3)
    return out


def assert_matches_compiler(lab: Lab, compiled: CompiledPolicy, cases: list[Case], family: int = 4) -> dict[Case, bool]:
    got = run_cases(lab, cases, family=family)
    want = {c: verdict(lab, compiled, c).allowed for c in cases}
    wrong = {c: (got[c], want[c]) for c in cases if got[c] != want[c]}
    assert not wrong, f"kernel vs compiler (got, want): {wrong}"
    return got


def drain(lab: Lab) -> None:
    assert lab.dp is not None
    for _ in lab.dp.events(timeout=0.05):
        pass


def test_connections_match_compiler_for_every_pair_and_port(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    got = assert_matches_compiler(lab, compiled, all_cases())
    # the scenario really exercises both outcomes, on every protocol
    for proto in ("TCP", "UDP", "SCTP"):
        assert {ok for c, ok in got.items() if c[2] == proto} == {True, False}, proto
    assert got[("web", "db", "TCP", 8080)] and not got[("web", "db", "TCP", 8081)]  # endPort
    assert got[("web", "db", "TCP", 5432)] and not got[("web", "client", "TCP", 5432)]  # ipBlock except
    assert got[("client", "db", "UDP", 5353)] and not got[("client", "db", "UDP", 53)]  # named port
    assert got[("client", "web", "TCP", 8000)] and not got[("client", "web", "TCP", 8081)]  # ANP deny
    assert not got[("client", "web", "TCP", 8080)]  # BANP deny (web ingress is not isolated)


def test_ipv6_connections_match_compiler(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    cases = [c for c in all_cases() if c[2] != "SCTP"]  # raw SCTP probes are IPv4 only
    got = assert_matches_compiler(lab, compiled, cases, family=6)
    assert set(got.values()) == {True, False}
    assert lab.dp is not None
    ends = {(e.local.version, e.remote.version) for e in lab.dp.conntrack()}
    assert (6, 6) in ends


EXT_CASES: list[Case] = [
    ("client", "db", "UDP", 5353),
    ("client", "db", "UDP", 53),
    ("web", "db", "TCP", 5432),
    ("client", "db", "TCP", 9000),
    ("client", "web", "TCP", 8081),
]


def test_ipv6_ports_are_found_behind_extension_headers(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    # hop-by-hop and destination options headers (the sockets' sticky options) before TCP and UDP
    got = {}
    for c in EXT_CASES:
        src, dst, proto, port = c
        probe = {"kind": proto.lower(), "dst": str(lab.topo.pods[dst].ip6), "port": port, "ext6": True,
                 "data": f"ext-{secrets.token_hex(4)}"}  # fmt: skip
        got[c] = lab.topo.probe(src, [probe])[0]
    want = {c: verdict(lab, compiled, c).allowed for c in EXT_CASES}
    assert got == want and set(want.values()) == {True, False}
    events = list(lab.dp.events(timeout=0.3))
    client, db = lab.topo.pods["client"], lab.topo.pods["db"]
    denied = _events_for(events, lab.dp.ifindex(client.host_veth), "egress", str(client.ip6), str(db.ip6), 53, 17)
    _check_side(denied, verdict(lab, compiled, ("client", "db", "UDP", 53)).egress, "UDP 53 behind extension headers")
    # a raw frame: hop-by-hop, routing, an atomic fragment and destination options, then UDP
    frame = {"kind": "raw_eth6", "src": str(client.ip6), "dst": str(db.ip6), "src_mac": client.mac,
             "dst_mac": client.host_mac}  # fmt: skip
    allowed, dropped = f"ext-ok-{secrets.token_hex(4)}", f"ext-no-{secrets.token_hex(4)}"
    lab.topo.probe("client", [{**frame, "port": 5353, "data": allowed}, {**frame, "port": 53, "data": dropped}])
    assert lab.topo.wait_logged("db", allowed, timeout=2.0), "the allowed port behind four extension headers"
    assert not lab.topo.wait_logged("db", dropped, timeout=0.5)


def test_local_pods_are_reached_by_redirect_without_the_node_routing(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    before = lab.dp.counters()["redirected"]
    node = lab.topo.node
    lab.topo.ns_exec(node, "sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")
    try:
        cases: list[Case] = [("web", "db", "TCP", 5432), ("client", "db", "TCP", 5432), ("client", "web", "UDP", 53)]
        assert_matches_compiler(lab, compiled, cases)
        assert_matches_compiler(lab, compiled, cases, family=6)
    finally:
        lab.topo.ns_exec(node, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
    # both directions of both allowed connections, per family, went pod to pod without the node's routing
    assert lab.dp.counters()["redirected"] - before >= 8


def test_fragmented_datagrams_are_judged_by_their_ports(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    db = lab.topo.pods["db"]
    big = "x" * 4000  # three fragments on a 1500-byte MTU, each way
    for src, want in (("web", True), ("client", False)):
        assert verdict(lab, compiled, (src, "db", "UDP", 53)).allowed is want
        probe = {"kind": "udp", "dst": str(db.ip), "port": 53, "data": f"{src}-{secrets.token_hex(4)}-{big}"}
        assert lab.topo.probe(src, [probe]) == [want], src
    assert lab.dp is not None and lab.dp.maps["pn_frags"].key_list()  # first fragments left their ports


def test_ipv6_fragmented_datagrams_are_judged_by_their_ports(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    db = lab.topo.pods["db"]
    big = "x" * 4000  # three IPv6 fragments (fragment extension headers) on a 1500-byte MTU, each way
    for src, want in (("web", True), ("client", False)):
        assert verdict(lab, compiled, (src, "db", "UDP", 53)).allowed is want
        probe = {"kind": "udp", "dst": str(db.ip6), "port": 53, "data": f"{src}-{secrets.token_hex(4)}-{big}"}
        assert lab.topo.probe(src, [probe]) == [want], src
    assert lab.dp is not None and lab.dp.maps["pn_frags6"].key_list()  # first fragments left their ports


def test_traffic_from_another_node_meets_the_destination_ingress(lab: Lab) -> None:
    """ "far" stands for a pod on another node: its packets reach local pods through pn_to_pod."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    ports: list[tuple[Protocol, int]] = [("TCP", p) for p in TCP_PORTS] + [("UDP", p) for p in UDP_PORTS]
    cases: list[Case] = [("far", dst, proto, port) for dst in PODS for proto, port in ports]
    cases += [(src, "far", proto, port) for src in PODS for proto, port in ports]
    for family in (4, 6):
        got = assert_matches_compiler(lab, compiled, cases, family=family)
        assert got[("far", "db", "TCP", 9000)] and not got[("far", "db", "TCP", 5432)]
        assert got[("client", "far", "TCP", 8000)] and not got[("web", "far", "TCP", 8000)]
    db_ep = lab.dp.ifindex(lab.topo.pods["db"].host_veth)
    far_ip = str(lab.topo.pods["far"].ip)
    events = [e for e in lab.dp.events(timeout=0.3) if e.endpoint == db_ep and str(e.source) == far_ip]
    allowed = [e for e in events if e.dport == 9000]
    assert allowed and all(e.verdict == "FORWARDED" and e.direction == "ingress" for e in allowed)
    assert allowed[0].rule is not None and (allowed[0].rule.name, allowed[0].rule.index) == ("db-ingress", 2)
    assert all(e.verdict == "DROPPED" for e in events if e.dport == 5432)


def test_pods_of_another_node_are_reached_by_fib_redirect(lab: Lab) -> None:
    """What a local pod sends to a pod of another node leaves by bpf_redirect_neigh through the route's
    device (the uplink), without the node's forwarding path."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    before = lab.dp.counters()["redirected_neigh"]
    for family in (4, 6):
        got = assert_matches_compiler(lab, compiled, [("client", "far", "TCP", 8000)], family=family)
        assert got[("client", "far", "TCP", 8000)]
    # per family at least the SYN, the handshake's ACK, the data and the FIN went out by the redirect
    after = lab.dp.counters()["redirected_neigh"]
    assert after - before >= 6, (before, after)


def test_traffic_from_another_node_is_handed_to_the_pod_at_the_uplink(lab: Lab) -> None:
    """With pn_from_uplink on the node's uplink ("far"'s veth stands for it), another node's packets for local
    pods are judged at the uplink and redirected into the pod: the node does not forward them at all."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    uplink = lab.topo.pods["far"].host_veth
    node = lab.topo.node
    ifindex = lab.dp.attach_uplink(uplink)
    forwarding = (f"net.ipv4.conf.{uplink}.forwarding", f"net.ipv6.conf.{uplink}.forwarding")
    try:
        assert lab.dp.attach_uplink(uplink) == ifindex  # idempotent
        assert lab.dp.uplinks() == {ifindex}
        assert "clsact" in lab.topo.ns_exec(node, "tc", "qdisc", "show", "dev", uplink).stdout
        # the node may no longer forward what arrives on the uplink: only the redirect can deliver it
        lab.topo.ns_exec(node, "sysctl", "-qw", *(f"{k}=0" for k in forwarding))
        drain(lab)
        before = lab.dp.counters()["redirected_uplink"]
        cases: list[Case] = [("far", dst, "TCP", port) for dst in PODS for port in (5432, 9000)]
        cases += [("far", "db", "UDP", 53), ("far", "db", "UDP", 5353)]
        for family in (4, 6):
            got = assert_matches_compiler(lab, compiled, cases, family=family)
            assert got[("far", "db", "TCP", 9000)] and not got[("far", "db", "TCP", 5432)]
        assert lab.dp.counters()["redirected_uplink"] - before >= 8
        db_ep = lab.dp.ifindex(lab.topo.pods["db"].host_veth)
        far_ip = str(lab.topo.pods["far"].ip)
        events = [e for e in lab.dp.events(timeout=0.3) if e.endpoint == db_ep and str(e.source) == far_ip]
        assert any(e.verdict == "DROPPED" and e.dport == 5432 and e.direction == "ingress" for e in events)
        assert any(e.verdict == "FORWARDED" and e.dport == 9000 for e in events)
    finally:
        lab.topo.ns_exec(node, "sysctl", "-qw", *(f"{k}=1" for k in forwarding))
        removed = lab.dp.detach_uplink(uplink)
    assert removed and not lab.dp.detach_uplink(uplink) and lab.dp.uplinks() == set()
    assert "clsact" not in lab.topo.ns_exec(node, "tc", "qdisc", "show", "dev", uplink).stdout
    # without the program the node forwards again, and pn_to_pod judges the same way
    assert_matches_compiler(lab, compiled, [("far", "db", "TCP", 9000), ("far", "db", "TCP", 5432)])


TTL_RECEIVER = r"""
import socket, sys
v6 = ":" in sys.argv[1]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
IP_RECVTTL = 12  # linux/in.h (the socket module does not name it)
s.setsockopt(*((socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT) if v6 else (socket.IPPROTO_IP, IP_RECVTTL)), 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
try:
    _data, anc, _flags, _addr = s.recvmsg(100, 64)
    print(int.from_bytes(anc[0][2][:4], sys.byteorder))
except TimeoutError:
    print("none")
"""

TTL_SENDER = r"""
import socket, sys
v6 = ":" in sys.argv[1]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
level, name = (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) if v6 else (socket.IPPROTO_IP, socket.IP_TTL)
s.setsockopt(level, name, int(sys.argv[3]))
s.sendto(b"hop", (sys.argv[1], int(sys.argv[2])))
"""


def received_ttl(lab: Lab, src: str, dst: str, ttl: int, family: int) -> int | None:
    """Send one UDP datagram from ``src`` with this TTL / hop limit; what ``dst`` received it with (None: nothing)."""
    pod = lab.topo.pods[dst]
    addr, port = str(pod.ip6 if family == 6 else pod.ip), 47000 + secrets.randbelow(1000)
    wait = "2" if ttl > 1 else "0.7"
    cmd = ["ip", "netns", "exec", pod.netns, sys.executable, "-c", TTL_RECEIVER, addr, str(port), wait]
    receiver = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        lab.topo.ns_exec(lab.topo.pods[src].netns, sys.executable, "-c", TTL_SENDER, addr, str(port), str(ttl))
        out = receiver.stdout.readline().strip()
    finally:
        receiver.kill()
        receiver.wait()
    return None if out == "none" else int(out)


def test_redirected_packets_count_the_nodes_hop_and_expire_there(lab: Lab) -> None:
    """The redirects write what the node's forwarding would: TTL / hop limit one less (the IPv4 checksum with
    it, or the pod would drop the packet), and a packet whose TTL runs out is left to the node, not delivered."""
    compiled = lab.compile([])  # nothing isolated: every port open
    lab.apply(compiled)
    assert lab.dp is not None
    uplink = lab.topo.pods["far"].host_veth
    lab.dp.attach_uplink(uplink)
    try:
        before = lab.dp.counters()
        for family in (4, 6):
            assert received_ttl(lab, "web", "db", 5, family) == 4  # local: bpf_redirect_peer
            assert received_ttl(lab, "client", "far", 5, family) == 4  # to another node: bpf_redirect_neigh
            assert received_ttl(lab, "far", "db", 5, family) == 4  # from another node: pn_from_uplink
            assert received_ttl(lab, "web", "db", 1, family) is None
        after = lab.dp.counters()
        for counter in ("redirected", "redirected_neigh", "redirected_uplink"):
            assert after[counter] - before[counter] >= 2, counter
    finally:
        lab.dp.detach_uplink(uplink)


REFUSED = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2]))); s.send(b"anyone?")
try:
    s.recv(100); print("answered")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print(type(exc).__name__)
"""


def test_an_icmp_error_about_an_allowed_connection_passes_both_hooks(lab: Lab) -> None:
    """web's port unreachable for client's datagram crosses web's egress (which allows nothing) and
    client's ingress (which allows nothing) as related to the connection both sides allowed."""
    udp_from_client = {"from": [pods("client")], "ports": [{"protocol": "UDP", "port": 5999}]}
    isolated = [
        np("web-udp", "web", ["Ingress", "Egress"], ingress=[udp_from_client]),
        np("client-closed", "client", ["Ingress"]),
    ]
    compiled = lab.compile(isolated)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    before = lab.dp.counters()["related"]
    client, web = lab.topo.pods["client"], lab.topo.pods["web"]
    for addr in (web.ip, web.ip6):  # nothing listens on 5999: web's kernel answers port unreachable
        out = lab.topo.ns_exec(client.netns, sys.executable, "-c", REFUSED, str(addr), "5999").stdout.strip()
        assert out == "refused", (addr, out)
    assert lab.dp.counters()["related"] - before >= 4  # per family: web's egress and client's ingress
    icmp_drops = [e for e in lab.dp.events(timeout=0.3) if e.type == "drop" and e.dport == 0]
    assert icmp_drops == []
    # an ICMP error quoting a connection nobody allowed is judged by policy as before: dropped
    out = lab.topo.ns_exec(client.netns, sys.executable, "-c", REFUSED, str(web.ip), "6000").stdout.strip()
    assert out == "TimeoutError"  # the datagram itself is dropped at web's ingress; nothing comes back


def test_a_bulk_transfer_is_one_connection_event_and_conntrack_hits(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    before = lab.dp.counters()
    db = lab.topo.pods["db"]
    size = 64 << 20
    started = time.monotonic()
    assert lab.topo.probe("web", [{"kind": "bulk", "dst": str(db.ip), "port": 5432, "bytes": size}]) == [True]
    elapsed = time.monotonic() - started
    after = lab.dp.counters()
    events = [e for e in lab.dp.events(timeout=0.3) if e.dport == 5432 or e.sport == 5432]
    # one verdict per side of the one connection; every other packet went through conntrack
    assert sorted((e.type, e.direction) for e in events) == [
        ("policy-verdict", "egress"),
        ("policy-verdict", "ingress"),
    ]
    assert after["ct_hits"] - before["ct_hits"] > 100
    assert after["drop_policy"] == before["drop_policy"]
    # each side's entry says the other side's ingress admitted the connection, so most of its packets
    # skipped the destination's conntrack lookup
    assert after["peer_admitted"] - before["peer_admitted"] > 100
    web_ep, db_ep = (lab.dp.ifindex(lab.topo.pods[p].host_veth) for p in ("web", "db"))
    tags = {(e.endpoint, e.origin): e.peer_tag for e in lab.dp.conntrack() if 5432 in (e.lport, e.rport)}
    assert tags[(web_ep, "egress")] == peer_tag(db_ep) and tags[(db_ep, "ingress")] == peer_tag(web_ep)
    print(f"bulk 2 x {size >> 20} MiB through the datapath in {elapsed:.2f}s")


def test_replies_pass_where_the_reverse_direction_is_denied(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    cases: list[Case] = [
        ("web", "db", "TCP", 5432),  # db may initiate nothing, yet answers
        ("db", "web", "TCP", 5432),
        ("client", "web", "TCP", 9000),  # web may not talk to client, yet answers
        ("web", "client", "TCP", 9000),
        ("client", "web", "UDP", 5353),
        ("web", "client", "UDP", 5353),
    ]
    got = assert_matches_compiler(lab, compiled, cases)
    assert got == {cases[0]: True, cases[1]: False, cases[2]: True, cases[3]: False, cases[4]: True, cases[5]: False}
    assert lab.dp is not None
    db_ep = lab.dp.ifindex(lab.topo.pods["db"].host_veth)
    entries = [e for e in lab.dp.conntrack() if e.endpoint == db_ep and e.lport == 5432]
    assert entries and all(e.origin == "ingress" and e.packets >= 2 for e in entries)


def _events_for(
    events: list[DatapathEvent], endpoint: int, direction: str, src: str, dst: str, port: int, proto: int
) -> list[DatapathEvent]:
    return [
        e
        for e in events
        if e.endpoint == endpoint
        and e.direction == direction
        and str(e.source) == src
        and str(e.destination) == dst
        and e.dport == port
        and e.protocol == proto
    ]


def _check_side(found: list[DatapathEvent], decision: Decision, what: str) -> None:
    assert found, f"no event for {what}"
    for e in found:
        if decision.verdict == "allow":
            assert (e.type, e.verdict) == ("policy-verdict", "FORWARDED"), (what, e)
        else:
            assert (e.type, e.verdict, e.drop_reason_desc) == ("drop", "DROPPED", "policy denied"), (what, e)
        assert e.rule == decision.rule, (what, str(e), decision)


def test_events_carry_verdict_and_the_deciding_rule(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    cases: list[Case] = [c for c in all_cases() if c[2] != "SCTP"]
    run_cases(lab, cases)
    events = list(lab.dp.events(timeout=0.3))
    numbers = {"TCP": 6, "UDP": 17}
    for c in cases:
        src, dst, proto, port = c
        v = verdict(lab, compiled, c)
        src_ip, dst_ip = str(lab.topo.pods[src].ip), str(lab.topo.pods[dst].ip)
        src_ep = lab.dp.ifindex(lab.topo.pods[src].host_veth)
        _check_side(
            _events_for(events, src_ep, "egress", src_ip, dst_ip, port, numbers[proto]), v.egress, f"{c} egress"
        )
        if v.egress.verdict == "allow":
            dst_ep = lab.dp.ifindex(lab.topo.pods[dst].host_veth)
            _check_side(
                _events_for(events, dst_ep, "ingress", src_ip, dst_ip, port, numbers[proto]), v.ingress, f"{c} ingress"
            )
    # one verdict event per connection: the replies and later packets went through conntrack
    new = [e for e in events if e.type == "policy-verdict"]
    assert len(new) == len({(e.endpoint, e.direction, e.source, e.sport, e.destination, e.dport) for e in new})
    # the deciding rules are named: a NetworkPolicy rule and the isolation default deny both appear
    kinds = {e.rule.kind for e in events if e.rule is not None}
    assert {"NetworkPolicy", "isolation", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy"} <= kinds


def test_a_reply_judged_after_its_entry_expired_is_marked_as_reply(lab: Lab) -> None:
    """is_reply comes from conntrack: the entry (expired, not yet evicted) says who opened the connection."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None and verdict(lab, compiled, ("client", "db", "UDP", 5353)).allowed
    drain(lab)
    client, db = lab.topo.pods["client"], lab.topo.pods["db"]
    sport = 20000 + secrets.randbelow(20000)
    opener = {"kind": "raw_udp", "src": str(client.ip), "dst": str(db.ip), "port": 5353, "sport": sport, "data": "o"}
    lab.topo.probe("client", [opener])
    opened = [e for e in lab.dp.events(timeout=0.3) if e.type == "policy-verdict" and e.sport == sport]
    assert sorted((e.direction, e.is_reply) for e in opened) == [("egress", False), ("ingress", False)]
    # the db side's entry expires (as after 60 s idle); the db then answers from 5353
    db_ep = lab.dp.ifindex(db.host_veth)
    ct = lab.dp.maps["pn_ct"]
    for key, value in ct.entries():
        entry = CtEntry.unpack(key, value)
        if entry.endpoint == db_ep and (entry.lport, entry.rport) == (5353, sport):
            fields = list(CT_VALUE.unpack(value[: CT_VALUE.size]))
            fields[1] = 1  # expires_ns
            ct.update(key, CT_VALUE.pack(*fields))
            break
    else:
        raise AssertionError("no conntrack entry for the opened flow")
    answer = {"kind": "raw_udp", "src": str(db.ip), "dst": str(client.ip), "port": sport, "sport": 5353, "data": "a"}
    lab.topo.probe("db", [answer])
    judged = [e for e in lab.dp.events(timeout=0.3) if e.endpoint == db_ep and e.dport == sport]
    assert len(judged) == 1 and judged[0].direction == "egress" and judged[0].is_reply, judged
    want = compiled.decide(lab.identity(compiled, "db"), lab.identity(compiled, "client"), "UDP", sport)
    assert (judged[0].verdict == "FORWARDED") == (want.egress is None or want.egress.verdict == "allow")
    assert decode(judged[0], Enricher(), "node", 0).to_json()["is_reply"] is True


def test_spoofed_source_is_dropped_and_reported(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    before = lab.dp.counters()["drop_spoof"]
    client, web = lab.topo.pods["client"], lab.topo.pods["web"]
    honest, spoofed = f"honest-{secrets.token_hex(4)}", f"spoofed-{secrets.token_hex(4)}"
    fake = "10.200.0.99"
    lab.topo.probe(
        "client",
        [
            {"kind": "raw_udp", "src": str(client.ip), "dst": str(web.ip), "port": 5353, "data": honest},
            {"kind": "raw_udp", "src": fake, "dst": str(web.ip), "port": 5353, "data": spoofed},
        ],
    )
    assert lab.topo.wait_logged("web", honest, timeout=2.0), "the control packet (true source) must arrive"
    assert not lab.topo.wait_logged("web", spoofed, timeout=0.5), "the spoofed packet must not arrive"
    events = list(lab.dp.events(timeout=0.3))
    client_ep = lab.dp.ifindex(client.host_veth)
    spoof = [e for e in events if e.type == "drop" and e.drop_reason_desc == "spoofed source"]
    assert spoof, events
    assert all(e.endpoint == client_ep and e.source == ipaddress.ip_address(fake) for e in spoof)
    assert spoof[0].direction == "egress" and spoof[0].dport == 5353 and spoof[0].verdict == "DROPPED"
    assert lab.dp.counters()["drop_spoof"] == before + 1


def test_spoofed_source_mac_is_dropped_and_reported(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    client, web = lab.topo.pods["client"], lab.topo.pods["web"]
    honest, spoofed = f"honest-{secrets.token_hex(4)}", f"spoofed-{secrets.token_hex(4)}"
    frame = {"kind": "raw_eth", "src": str(client.ip), "dst": str(web.ip), "port": 5353, "dst_mac": client.host_mac}
    lab.topo.probe(
        "client",
        [{**frame, "src_mac": client.mac, "data": honest}, {**frame, "src_mac": "02:00:00:00:0f:0f", "data": spoofed}],
    )
    assert lab.topo.wait_logged("web", honest, timeout=2.0), "the control frame (true MAC) must arrive"
    assert not lab.topo.wait_logged("web", spoofed, timeout=0.5)
    # Only the probe's datagrams: web's echo to the client's unbound port can bring an ICMP error back
    # from the client, which its egress policy judges too.
    drops = [e for e in lab.dp.events(timeout=0.3) if e.type == "drop" and e.dport == 5353]
    assert [(e.drop_reason, e.drop_reason_desc) for e in drops] == [(130, "spoofed source (MAC)")]
    assert drops[0].endpoint == lab.dp.ifindex(client.host_veth)


def test_arp_speaking_for_another_address_is_dropped(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    client = lab.topo.pods["client"]
    before = lab.dp.counters()["drop_spoof"]
    arp = {"kind": "raw_arp", "src_mac": client.mac, "sha": client.mac, "dst": "169.254.1.1"}
    lab.topo.probe("client", [{**arp, "spa": str(client.ip)}, {**arp, "spa": str(lab.topo.pods["web"].ip)}])
    drops = [e for e in lab.dp.events(timeout=0.3) if e.type == "drop"]
    assert [(e.drop_reason_desc, e.source) for e in drops] == [("spoofed source", None)], drops
    assert lab.dp.counters()["drop_spoof"] == before + 1  # the honest ARP passed


def test_drops_of_one_flow_are_aggregated(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    client, db = lab.topo.pods["client"], lab.topo.pods["db"]
    sport = 40000 + secrets.randbelow(10000)

    def burst(n: int) -> list[dict[str, object]]:
        return [
            {"kind": "raw_udp", "src": str(client.ip), "dst": str(db.ip), "port": 53, "sport": sport, "data": f"b{i}"}
            for i in range(n)
        ]

    aggregated = lab.dp.counters()["events_aggregated"]
    lab.topo.probe("client", burst(40))
    first = [e for e in lab.dp.events(timeout=0.3) if e.type == "drop" and e.sport == sport]
    # 40 packets of one denied flow within a second: one record, the rest counted
    assert len(first) == 1 and first[0].count == 1, [str(e) for e in first]
    assert first[0].drop_reason_desc == "policy denied" and first[0].rule is not None
    assert lab.dp.counters()["events_aggregated"] - aggregated == 39
    # after the interval the next drop reports how many packets it stands for
    time.sleep(1.1)
    lab.topo.probe("client", burst(1))
    second = [e for e in lab.dp.events(timeout=0.3) if e.type == "drop" and e.sport == sport]
    assert [e.count for e in second] == [40]


def test_an_endpoint_without_policy_rows_fails_closed(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    db = lab.topo.pods["db"]
    stats = lab.dp.apply_image(db.host_veth, {})  # what a freshly attached endpoint has
    assert stats.written == 0 and stats.deleted > 0
    drain(lab)
    got = run_cases(lab, [("client", "db", "TCP", 8000), ("db", "client", "UDP", 53)], timeout=0.5)
    assert not any(got.values()), got
    reasons = {(e.direction, e.drop_reason_desc) for e in lab.dp.events(timeout=0.3) if e.type == "drop"}
    assert reasons == {("ingress", "no policy entry"), ("egress", "no policy entry")}, reasons
    lab.apply(compiled)
    assert run_cases(lab, [("client", "web", "TCP", 8000)]) == {("client", "web", "TCP", 8000): True}


def test_audit_mode_passes_would_be_drops_and_records_them(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_AUDIT)
    lab.apply(compiled)
    assert lab.dp is not None
    drain(lab)
    cases: list[Case] = [
        ("client", "web", "TCP", 8000),  # only the audit policy denies: passes, recorded as AUDIT
        ("client", "web", "TCP", 8080),  # the baseline denies it once the audit policy is set aside
        ("client", "web", "TCP", 8081),  # the admin policy denies it whatever the audit policy says
    ]
    assert all(not verdict(lab, compiled, c).allowed for c in cases)  # what the analyzer says
    got = run_cases(lab, cases)
    assert [got[c] for c in cases] == [True, False, False]
    web = lab.topo.pods["web"]
    web_ep = lab.dp.ifindex(web.host_veth)
    events = [e for e in lab.dp.events(timeout=0.3) if e.endpoint == web_ep and e.direction == "ingress"]
    by_port = {e.dport: e for e in events}
    assert by_port[8000].verdict == "AUDIT" and by_port[8000].type == "policy-verdict"
    assert by_port[8000].rule is not None and by_port[8000].rule.isolated_by == ("shop/web-only-db",)
    assert by_port[8080].verdict == "DROPPED" and by_port[8080].rule is not None
    assert by_port[8080].rule.kind == "BaselineAdminNetworkPolicy"
    assert 8081 not in by_port  # dropped at client's egress by the admin policy


def test_policy_change_writes_only_the_diff_and_applies_to_the_next_connection(lab: Lab) -> None:
    v1 = lab.compile(POLICIES_V1)
    lab.apply(v1)
    assert run_cases(lab, [("web", "db", "TCP", 5432), ("client", "db", "TCP", 9000)]) == {
        ("web", "db", "TCP", 5432): True,
        ("client", "db", "TCP", 9000): False,
    }
    v2 = lab.compile(POLICIES_V2)
    stats = lab.apply(v2)
    assert stats["db"][0] > 0 and stats["db"][1] > 0, stats  # db's rows changed
    assert stats["web"] == (0, 0) and stats["client"] == (0, 0), stats  # nothing else was rewritten
    got = assert_matches_compiler(lab, v2, all_cases())
    assert not got[("web", "db", "TCP", 5432)] and got[("client", "db", "TCP", 9000)]
    # and back: the reverse diff restores the first behaviour
    lab.apply(v1)
    assert_matches_compiler(lab, v1, [c for c in all_cases() if c[1] == "db"])


def test_established_connections_survive_a_policy_change_within_100ms(lab: Lab) -> None:
    v1 = lab.compile(POLICIES_V1)
    lab.apply(v1)
    web, db = lab.topo.pods["web"], lab.topo.pods["db"]
    cmd = ["ip", "netns", "exec", web.netns, sys.executable, "-c", HOLD, str(db.ip), "5432"]
    hold = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdin is not None and hold.stdout is not None
        assert hold.stdout.readline().strip() == "connected"
        v2 = lab.compile(POLICIES_V2)
        assert not verdict(lab, v2, ("web", "db", "TCP", 5432)).allowed
        assert lab.dp is not None
        lab.dp.sync_identities(v2.identities)
        started = time.monotonic()
        lab.dp.apply_image(db.host_veth, map_image(v2, lab.identity(v2, "db")))
        assert time.monotonic() - started < 0.1
        # the next connection is judged by the new policy; the open one goes on
        assert run_cases(lab, [("web", "db", "TCP", 5432)]) == {("web", "db", "TCP", 5432): False}
        hold.stdin.write("still-there\n")
        hold.stdin.flush()
        assert hold.stdout.readline().strip() == "echo"
    finally:
        hold.kill()
        hold.wait()


def test_a_pod_given_a_gone_pods_place_judges_its_open_connections(lab: Lab) -> None:
    """A connection between local pods skips the destination's conntrack lookup once its ingress admitted
    it. When that endpoint goes, the word goes with it: an endpoint attached in its place (here: the same
    veth, with a policy that denies the connection) judges the connection's next packet itself."""
    v1 = lab.compile(POLICIES_V1)
    lab.apply(v1)
    assert lab.dp is not None
    web, db = lab.topo.pods["web"], lab.topo.pods["db"]
    earlier = {e.lport for e in lab.dp.conntrack() if e.rport == 5432}  # earlier tests' connections
    cmd = ["ip", "netns", "exec", web.netns, sys.executable, "-c", HOLD, str(db.ip), "5432"]
    hold = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdin is not None and hold.stdout is not None
        assert hold.stdout.readline().strip() == "connected"
        hold.stdin.write("one\n")
        hold.stdin.flush()
        assert hold.stdout.readline().strip() == "echo"
        db_ep = lab.dp.ifindex(db.host_veth)
        web_ep = lab.dp.ifindex(web.host_veth)
        held = [e for e in lab.dp.conntrack() if e.endpoint == web_ep and e.rport == 5432 and e.lport not in earlier]
        assert len(held) == 1 and held[0].peer_tag == peer_tag(db_ep)  # the held connection's entry at web
        sport = held[0].lport
        lab.dp.detach(db.host_veth)
        assert not any(e.peer_tag == peer_tag(db_ep) for e in lab.dp.conntrack())
        v2 = lab.compile(POLICIES_V2)  # db's ingress no longer admits web on 5432
        ident = lab.identity(v2, "db")
        lab.dp.sync_identities(v2.identities)
        lab.dp.attach(Endpoint(db.host_veth, db.mac, ident, ipv4=db.ip, ipv6=db.ip6))
        lab.dp.apply_image(db.host_veth, map_image(v2, ident))
        hold.stdin.write("two\n")
        hold.stdin.flush()
        # web's packets (its ACK of the echo, then "two" and its retransmissions) meet db's new ingress policy
        drops: list[DatapathEvent] = []
        deadline = time.monotonic() + 3
        while not drops and time.monotonic() < deadline:
            drops = [e for e in lab.dp.events(timeout=0.2) if e.type == "drop" and (e.sport, e.dport) == (sport, 5432)]
        assert drops and all(e.endpoint == db_ep and e.direction == "ingress" for e in drops)
        assert not [e for e in lab.dp.conntrack() if e.endpoint == db_ep and e.lport == 5432]
    finally:
        hold.kill()
        hold.wait()


def test_a_restart_replaces_a_local_pod_map_of_another_layout(lab: Lab) -> None:
    """An earlier build pinned ``pn_local`` with 4-byte values (the ifindex alone): the next load replaces
    it (libbpf would refuse to reuse it), the attach calls fill it again, and local pods are reached."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    pin = lab.pin_dir / "pn_local"
    assert libbpf.pinned_map_sizes(str(pin))[:2] == (20, 16)
    _pin_in_place_of(lab, pin, BPF_MAP_TYPE_HASH, 20, 4, 8192)
    lab.open()
    assert libbpf.pinned_map_sizes(str(pin))[:2] == (20, 16)
    lab.apply(compiled)
    assert lab.dp is not None
    before = lab.dp.counters()["redirected"]
    assert_matches_compiler(lab, compiled, [("web", "db", "TCP", 5432), ("client", "db", "TCP", 5432)])
    assert lab.dp.counters()["redirected"] - before >= 2


def _tc_filters(lab: Lab, veth: str) -> str:
    out = ""
    for where in ("ingress", "egress"):
        out += lab.topo.ns_exec(lab.topo.node, "tc", "filter", "show", "dev", veth, where).stdout
    return out


def test_enforcement_survives_the_process_and_a_restart_has_no_gap(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    sample: list[Case] = [
        ("web", "db", "TCP", 5432),
        ("client", "db", "TCP", 5432),
        ("db", "web", "TCP", 8000),
        ("web", "db", "UDP", 53),
        ("web", "client", "UDP", 53),
    ]
    dp = lab.dp
    assert dp is not None
    dp.close()
    lab.dp = None
    del dp
    gc.collect()
    # no process holds the programs or maps now: the pins and the tc filters do
    assert {p.name for p in lab.pin_dir.iterdir()} >= {"pn_policy", "pn_ct", "pn_ipcache", "pn_from_pod", "pn_to_pod"}
    for pod in lab.topo.pods.values():
        assert ("pn_from_pod" in _tc_filters(lab, pod.host_veth)) is pod.local
    assert_matches_compiler(lab, compiled, sample)
    # a new process converges with what the kernel holds: nothing to write
    lab.open()
    stats = lab.apply(compiled)
    assert all(s == (0, 0) for s in stats.values()), stats
    assert lab.dp is not None and len(lab.dp.rules) > 0
    assert_matches_compiler(lab, compiled, sample)


def _pin_in_place_of(lab: Lab, pin: Path, map_type: int, key_size: int, value_size: int, max_entries: int) -> None:
    """Close the lab's datapath and pin a new map of the given layout where ``pin`` was, as an agent of an
    earlier build would have left it."""
    assert lab.dp is not None
    lab.dp.close()
    lab.dp = None
    gc.collect()
    handle = libbpf.lib()
    create = handle.bpf_map_create
    create.restype, create.argtypes = (
        ctypes.c_int,
        [ctypes.c_int, ctypes.c_char_p] + [ctypes.c_uint32] * 3 + [ctypes.c_void_p],
    )
    fd = libbpf.check(create(map_type, pin.name.encode(), key_size, value_size, max_entries, None), f"create {pin}")
    pin_fn = handle.bpf_obj_pin
    pin_fn.restype, pin_fn.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_char_p]
    try:
        pin.unlink()
        libbpf.check(pin_fn(fd, str(pin).encode()), f"pin {pin}")
    finally:
        os.close(fd)


def test_a_restart_replaces_an_event_ring_of_another_size(lab: Lab) -> None:
    """An agent of a build with another ring buffer size pinned ``pn_events``: the next one loads (libbpf
    would refuse to reuse the pin), pins a ring of its own size, and its events arrive there."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    pin = lab.pin_dir / "pn_events"
    size = libbpf.pinned_map_sizes(str(pin))[2]
    assert size >= 16 << 20  # this build's ring: ~210,000 records
    _pin_in_place_of(lab, pin, BPF_MAP_TYPE_RINGBUF, 0, 0, 4 << 20)
    assert libbpf.pinned_map_sizes(str(pin))[2] == 4 << 20
    lab.open()
    assert libbpf.pinned_map_sizes(str(pin))[2] == size
    stats = lab.apply(compiled)
    assert all(s == (0, 0) for s in stats.values()), stats  # the policy maps were reused as they were
    drain(lab)
    case: Case = ("web", "client", "UDP", 53)
    run_cases(lab, [case])
    events = [e for e in lab.dp.events(timeout=0.3) if e.dport == 53 and e.protocol == 17]
    assert events and {e.source for e in events} == {lab.topo.pods["web"].ip}


def test_destroy_removes_exactly_what_was_created(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    assert lab.dp is not None
    # a qdisc podnet did not create stays (the test's own, on a host veth)
    web = lab.topo.pods["web"]
    for pod in lab.topo.pods.values():
        qdiscs = lab.topo.ns_exec(lab.topo.node, "tc", "qdisc", "show", "dev", pod.host_veth).stdout
        assert ("clsact" in qdiscs) is pod.local
    lab.dp.destroy()
    assert not lab.pin_dir.exists()
    assert sorted(p.name for p in lab.bpffs.iterdir() if not p.name.endswith(".debug")) == []
    for pod in lab.topo.pods.values():
        assert _tc_filters(lab, pod.host_veth).strip() == ""
        assert "clsact" not in lab.topo.ns_exec(lab.topo.node, "tc", "qdisc", "show", "dev", pod.host_veth).stdout
    # routes, neighbours and links of the topology are untouched, and nothing filters any more
    assert str(web.ip) in lab.topo.ns_exec(lab.topo.node, "ip", "route").stdout
    got = run_cases(lab, [("client", "db", "TCP", 9000), ("db", "web", "TCP", 8000)])
    assert all(got.values()), got
    # and a clsact somebody else made is left alone by detach
    sh("ip", "netns", "exec", lab.topo.node, "tc", "qdisc", "add", "dev", web.host_veth, "clsact")
    dp = lab.open()
    lab.apply(compiled)
    dp.detach(web.host_veth)
    assert "clsact" in lab.topo.ns_exec(lab.topo.node, "tc", "qdisc", "show", "dev", web.host_veth).stdout
    assert _tc_filters(lab, web.host_veth).strip() == ""
    dp.destroy()
