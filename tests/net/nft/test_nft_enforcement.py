"""Real packets through the nftables backend: the same scenarios and expectations as the eBPF datapath."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from podnet.agent.nftpath import NftPolicyDatapath
from podnet.datapath.nft import NftDatapath
from podnet.datapath.nft.nflog import NflogError
from podnet.policy.mapimage import map_image
from tests.net.ebpf import test_enforcement as ebpf
from tests.net.ebpf.agents import HOLD
from tests.net.ebpf.conftest import NFT_LOG_GROUP, Lab
from tests.net.ebpf.test_enforcement import (
    POLICIES_AUDIT,
    POLICIES_V1,
    POLICIES_V2,
    Case,
    all_cases,
    assert_matches_compiler,
    drain,
    run_cases,
    verdict,
)


def _table(lab: Lab) -> str:
    return lab.topo.ns_exec(lab.topo.node, "nft", "list", "ruleset").stdout


def test_nft_connections_match_compiler_ipv4_and_ipv6(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    got = assert_matches_compiler(lab, compiled, all_cases())
    for proto in ("TCP", "UDP", "SCTP"):
        assert {ok for c, ok in got.items() if c[2] == proto} == {True, False}, proto
    got6 = assert_matches_compiler(lab, compiled, [c for c in all_cases() if c[2] != "SCTP"], family=6)
    assert set(got6.values()) == {True, False}
    # the policy lives in verdict maps: the chains hold a fixed number of rules whatever the policies
    assert _table(lab).count("vmap @") == 12


def test_nft_traffic_from_another_node(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    cases: list[Case] = [("far", dst, "TCP", p) for dst in ("web", "db", "client") for p in (5432, 9000)]
    cases += [(src, "far", "TCP", 8000) for src in ("web", "db", "client")]
    for family in (4, 6):
        got = assert_matches_compiler(lab, compiled, cases, family=family)
        assert got[("far", "db", "TCP", 9000)] and not got[("far", "db", "TCP", 5432)]


def test_nft_replies_pass_where_the_reverse_direction_is_denied(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    cases: list[Case] = [
        ("web", "db", "TCP", 5432),
        ("db", "web", "TCP", 5432),
        ("client", "web", "UDP", 5353),
        ("web", "client", "UDP", 5353),
    ]
    got = assert_matches_compiler(lab, compiled, cases)
    assert [got[c] for c in cases] == [True, False, True, False]


def test_nft_fragmented_datagrams(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    db = lab.topo.pods["db"]
    for src, want in (("web", True), ("client", False)):
        probe = {"kind": "udp", "dst": str(db.ip), "port": 53, "data": f"{src}-{secrets.token_hex(4)}-" + "x" * 4000}
        assert lab.topo.probe(src, [probe]) == [want], src


def test_nft_spoofed_source_is_dropped_and_counted(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    before = lab.dp.counters()["spoofed"]
    client, web = lab.topo.pods["client"], lab.topo.pods["web"]
    honest, spoofed = f"honest-{secrets.token_hex(4)}", f"spoofed-{secrets.token_hex(4)}"
    lab.topo.probe(
        "client",
        [
            {"kind": "raw_udp", "src": str(client.ip), "dst": str(web.ip), "port": 5353, "data": honest},
            {"kind": "raw_udp", "src": "10.200.0.99", "dst": str(web.ip), "port": 5353, "data": spoofed},
        ],
    )
    assert lab.topo.wait_logged("web", honest, timeout=2.0)
    assert not lab.topo.wait_logged("web", spoofed, timeout=0.5)
    assert lab.dp.counters()["spoofed"] == before + 1


def test_nft_spoofed_source_is_reported(lab: Lab) -> None:
    lab.apply(lab.compile(POLICIES_V1))
    drain(lab)
    client, web = lab.topo.pods["client"], lab.topo.pods["web"]
    fake = "10.200.0.98"
    lab.topo.probe("client", [{"kind": "raw_udp", "src": fake, "dst": str(web.ip), "port": 5353, "data": "s"}])
    spoof = [e for e in lab.dp.events(timeout=0.5) if e.type == "drop"]
    assert [(e.drop_reason, e.drop_reason_desc, str(e.source), e.dport) for e in spoof] == [
        (132, "spoofed source", fake, 5353)
    ]
    assert spoof[0].endpoint == lab.dp.ifindex(client.host_veth) and spoof[0].direction == "egress"


# The eBPF datapath's event tests, as they are, against the NFLOG events of the nftables backend.
def test_nft_events_carry_verdict_and_the_deciding_rule(lab: Lab) -> None:
    ebpf.test_events_carry_verdict_and_the_deciding_rule(lab)


def test_nft_drops_of_one_flow_are_aggregated(lab: Lab) -> None:
    ebpf.test_drops_of_one_flow_are_aggregated(lab)


def test_nft_an_endpoint_without_policy_rows_fails_closed(lab: Lab) -> None:
    ebpf.test_an_endpoint_without_policy_rows_fails_closed(lab)


def test_nft_policy_change_writes_only_the_diff_and_keeps_open_connections(lab: Lab) -> None:
    v1 = lab.compile(POLICIES_V1)
    lab.apply(v1)
    web, db = lab.topo.pods["web"], lab.topo.pods["db"]
    cmd = ["ip", "netns", "exec", web.netns, sys.executable, "-c", HOLD, str(db.ip), "5432"]
    hold = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdin is not None and hold.stdout is not None
        assert hold.stdout.readline().strip() == "connected"
        v2 = lab.compile(POLICIES_V2)
        stats = lab.apply(v2)  # how fast is measured by benchmarks/, not asserted here
        assert stats["db"][0] > 0 and stats["web"] == (0, 0) and stats["client"] == (0, 0), stats
        assert not verdict(lab, v2, ("web", "db", "TCP", 5432)).allowed
        got = assert_matches_compiler(lab, v2, all_cases())
        assert not got[("web", "db", "TCP", 5432)] and got[("client", "db", "TCP", 9000)]
        hold.stdin.write("still-there\n")
        hold.stdin.flush()
        assert hold.stdout.readline().strip() == "echo"
    finally:
        hold.kill()
        hold.wait()


def test_nft_restart_converges_without_writes(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    lab.dp.close()
    lab.open()
    stats = lab.apply(compiled)
    assert all(s == (0, 0) for s in stats.values()), stats
    sample: list[Case] = [("web", "db", "TCP", 5432), ("client", "db", "TCP", 5432)]
    assert_matches_compiler(lab, compiled, sample)
    again = lab.dp.apply_image(lab.topo.pods["db"].host_veth, map_image(compiled, lab.identity(compiled, "db")))
    assert (again.written, again.deleted) == (0, 0)


def test_nft_audit_mode_passes_would_be_drops(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_AUDIT)
    lab.apply(compiled)
    cases: list[Case] = [("client", "web", "TCP", 8000), ("client", "web", "TCP", 8080), ("client", "web", "TCP", 8081)]
    got = run_cases(lab, cases)
    assert [got[c] for c in cases] == [True, False, False]
    assert "_audit" in lab.topo.ns_exec(lab.topo.node, "nft", "list", "chains").stdout


def test_nft_destroy_removes_the_table_only(lab: Lab) -> None:
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    lab.topo.ns_exec(lab.topo.node, "nft", "add", "table", "inet", "someone_else")
    lab.dp.destroy()
    ruleset = _table(lab)
    assert "podnet" not in ruleset and "someone_else" in ruleset
    assert all(run_cases(lab, [("client", "db", "TCP", 9000)]).values())


def test_nft_policy_datapath_restarts_without_writes_and_detaches_what_is_gone(lab: Lab) -> None:
    """The agent's adapter on a table of its own in the node: a second object converges with no writes, and an
    endpoint whose interface went away while no agent ran is found and removed."""
    compiled = lab.compile(POLICIES_V1)
    lab.apply(compiled)
    table = f"podnet_t{secrets.token_hex(3)}"
    db = lab.topo.pods["db"]
    ident = lab.identity(compiled, "db")
    image = map_image(compiled, ident)
    first = NftPolicyDatapath("t", netns=lab.topo.node, table=table, events=False)
    try:
        first.ensure_loaded()
        first.sync_identities(compiled.identities)
        ifindex = first.attach_pod(db.host_veth, db.mac, ident, [str(db.ip), str(db.ip6)])
        assert first.apply_pod_image(ifindex, image).written > 0
        lab.topo.ns_exec(lab.topo.node, "nft", "add", "element", "inet", table, "endpoints", '{ "pngone0000" }')
        first.close()  # the agent stops: the table stays
        second = NftPolicyDatapath("t", netns=lab.topo.node, table=table, events=False)
        second.ensure_loaded()
        second.sync_identities(compiled.identities)
        assert second.attach_pod(db.host_veth, db.mac, ident, [str(db.ip), str(db.ip6)]) == ifindex
        stats = second.apply_pod_image(ifindex, image)
        assert (stats.written, stats.deleted) == (0, 0)
        attached = second.attached()
        gone = [i for i in attached if i < 0]
        assert ifindex in attached and len(gone) == 1
        second.detach_pod(gone[0])
        assert (
            "pngone0000" not in lab.topo.ns_exec(lab.topo.node, "nft", "list", "set", "inet", table, "endpoints").stdout
        )
        assert_matches_compiler(lab, compiled, [("web", "db", "TCP", 5432), ("client", "db", "TCP", 5432)])
        second.destroy()
        assert table not in _table(lab)
    finally:
        lab.topo.ns_exec(lab.topo.node, "nft", "delete", "table", "inet", table, check=False)


def test_nft_ipv6_ports_are_found_behind_extension_headers(lab: Lab) -> None:
    ebpf.test_ipv6_ports_are_found_behind_extension_headers(lab)


def test_nft_a_taken_log_group_fails_with_its_number_and_changes_nothing(lab: Lab) -> None:
    lab.dp.ensure_loaded()  # holds NFT_LOG_GROUP in the node's namespace
    other = NftDatapath(netns=lab.topo.node, table="podnet_other", log_group=NFT_LOG_GROUP)
    with pytest.raises(NflogError, match=f"nflog group {NFT_LOG_GROUP}: bind"):
        other.ensure_loaded()
    assert "podnet_other" not in _table(lab)


BURST = r"""
import socket, struct, sys
src, dst, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 29, 0, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
for i in range(n):
    s.sendto(head + struct.pack("!HHHH", base + i, 53, 9, 0) + b"x", (dst, 0))
"""


def test_nft_a_burst_of_denied_flows_is_one_event_each_in_few_datagrams(lab: Lab) -> None:
    lab.apply(lab.compile(POLICIES_V1))
    drain(lab)
    client, db = lab.topo.pods["client"], lab.topo.pods["db"]
    n, base = 3000, 20000 + secrets.randbelow(20000)
    before = lab.dp.counters()
    lab.topo.ns_exec(client.netns, sys.executable, "-c", BURST, str(client.ip), str(db.ip), str(base), str(n))
    sports: list[int] = []
    for _ in range(40):  # each read waits for the next batch; a quiet 0.25 s ends it
        got = [e.sport for e in lab.dp.events(timeout=0.25) if e.type == "drop" and e.dport == 53]
        sports += [p for p in got if base <= p < base + n]
        if len(sports) >= n and not got:
            break
    after = lab.dp.counters()
    # every packet of the burst a flow of its own, denied: one drop event each, none lost, none twice
    assert sorted(sports) == list(range(base, base + n))
    assert after["events_lost"] == before["events_lost"] and after["events_overruns"] == before["events_overruns"]
    # the kernel batched them: a 32 KiB datagram holds ~150 of these messages (and the client's egress verdicts)
    assert after["events_datagrams"] - before["events_datagrams"] <= n // 20
