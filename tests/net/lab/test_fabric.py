"""A lab's fabric moves real packets between pod CIDRs on different nodes, directly or over VXLAN."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from podnet.lab import fabric
from podnet.lab.plan import LabPlan, make_plan


def _fake_pod(plan: LabPlan, node_index: int) -> tuple[str, str]:
    """A netns behind node ``node_index`` with one address of the node's pod CIDR (a stand-in for CNI)."""
    node = plan.nodes[node_index]
    name = f"{plan.prefix}fp{node_index}"
    fabric.ensure_netns(name)
    gw = str(node.pod_cidr.network_address + 1)
    addr = str(node.pod_cidr.network_address + 10)
    with IPRoute(netns=node.netns) as ipr:
        ipr.link("add", ifname="fpv", kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})
        idx = ipr.link_lookup(ifname="fpv")[0]
        ipr.addr("add", index=idx, address=gw, prefixlen=node.pod_cidr.prefixlen)
        ipr.link("set", index=idx, state="up")
    with IPRoute(netns=name) as ipr:
        idx = ipr.link_lookup(ifname="eth0")[0]
        ipr.addr("add", index=idx, address=addr, prefixlen=node.pod_cidr.prefixlen)
        ipr.link("set", index=idx, state="up")
        ipr.route("add", dst="default", gateway=gw)
    return name, addr


@pytest.fixture(params=["direct", "vxlan"])
def lab(request: pytest.FixtureRequest) -> Iterator[LabPlan]:
    plan = make_plan(f"t{secrets.token_hex(3)}", 2, "10.250.0.0/16", request.param)
    try:
        fabric.ensure_fabric(plan)
        for node in plan.nodes:
            fabric.ensure_node(plan, node)
        for node in plan.nodes:
            fabric.ensure_routes(plan, node)
        yield plan
    finally:
        fabric.remove_lab_namespaces(plan.prefix)


def test_pods_on_two_nodes_reach_each_other(lab: LabPlan) -> None:
    pod0, _ = _fake_pod(lab, 0)
    pod1, addr1 = _fake_pod(lab, 1)
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            pod1,
            sys.executable,
            "-m",
            "podnet.lab.probe",
            "serve",
            "--name",
            "t/pod1",
            "--tcp",
            "8080",
            "--udp",
            "5353",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stderr is not None
        assert b"serving" in server.stderr.readline()
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                pod0,
                sys.executable,
                "-m",
                "podnet.lab.probe",
                "check",
                f"{addr1}/TCP/8080",
                f"{addr1}/UDP/5353",
                f"{addr1}/TCP/8081",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        results = [json.loads(line) for line in out.splitlines()]
        assert [(r["protocol"], r["port"], r["reachable"], r["answer"]) for r in results] == [
            ("TCP", 8080, True, "t/pod1"),
            ("UDP", 5353, True, "t/pod1"),
            ("TCP", 8081, False, ""),
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_ensure_is_idempotent_and_removal_takes_only_the_labs_namespaces(lab: LabPlan) -> None:
    other = make_plan(f"o{secrets.token_hex(3)}", 1, "10.251.0.0/16", "direct")
    try:
        fabric.ensure_fabric(other)
        fabric.ensure_node(other, other.nodes[0])
        for _ in range(2):  # a second pass changes nothing and fails on nothing
            fabric.ensure_fabric(lab)
            for node in lab.nodes:
                fabric.ensure_node(lab, node)
                fabric.ensure_routes(lab, node)
        assert set(fabric.list_netns(lab.prefix)) == {lab.fabric_netns, *(n.netns for n in lab.nodes)}
        removed = fabric.remove_lab_namespaces(lab.prefix)
        assert set(removed) == {lab.fabric_netns, *(n.netns for n in lab.nodes)}
        assert fabric.list_netns(lab.prefix) == []
        assert set(fabric.list_netns(other.prefix)) == {other.fabric_netns, other.nodes[0].netns}
        time.sleep(0)
    finally:
        fabric.remove_lab_namespaces(other.prefix)
