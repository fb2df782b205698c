"""A lab brought up for real: agents in node namespaces, pods wired by the podnet CNI plugin, traffic across nodes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.k8s.model import ContainerPort, Pod
from podnet.lab import fabric, manager, procs, runtime


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PODNET_LAB_ROOT", str(tmp_path / "labs"))
    return tmp_path / "labs"


@pytest.fixture(params=["direct", "vxlan"])
def lab(lab_root: Path, request: pytest.FixtureRequest) -> Iterator[manager.Lab]:
    name = f"t{secrets.token_hex(3)}"
    try:
        yield manager.up(name, 2, "10.248.0.0/16", request.param, say=lambda _m: None)
    finally:
        manager.down(name, say=lambda _m: None)


def _probe(netns: str, *targets: str) -> list[dict[str, object]]:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "podnet.lab.probe", "check", *targets],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_pods_on_two_nodes_are_wired_by_podnet_and_reach_each_other(lab: manager.Lab) -> None:
    web = Pod("shop", "web", {"app": "web"}, (ContainerPort(8080, "TCP", "http"), ContainerPort(5353, "UDP")))
    db = Pod("shop", "db", {"app": "db"}, (ContainerPort(5432, "TCP"),))
    rweb = runtime.start_pod(lab, web, lab.plan.nodes[0])
    rdb = runtime.start_pod(lab, db, lab.plan.nodes[1])
    assert rweb["ips"][0] in str(lab.plan.nodes[0].pod_cidr) or rweb["ips"][0].startswith("10.248.0.")
    assert rdb["ips"][0].startswith("10.248.1.")
    results = _probe(rweb["netns"], f"{rdb['ips'][0]}/TCP/5432", f"{rdb['ips'][0]}/TCP/80")
    assert [(r["reachable"], r["answer"]) for r in results] == [(True, "shop/db"), (False, "")]
    back = _probe(rdb["netns"], f"{rweb['ips'][0]}/TCP/8080", f"{rweb['ips'][0]}/UDP/5353")
    assert [(r["reachable"], r["answer"]) for r in back] == [(True, "shop/web"), (True, "shop/web")]
    # the agent on node1 knows its pod
    from podnet.agent.client import get_json

    endpoints = get_json(str(lab.agent_socket(lab.plan.nodes[1])), "/v1/endpoints")
    assert [(e["pod_namespace"], e["pod_name"]) for e in endpoints] == [("shop", "db")]
    runtime.stop_pod(lab, "shop/db")
    assert get_json(str(lab.agent_socket(lab.plan.nodes[1])), "/v1/endpoints") == []
    assert not fabric.netns_exists(rdb["netns"])
    runtime.stop_pod(lab, "shop/db")  # stopping twice is fine


def test_down_removes_every_namespace_process_and_file(lab_root: Path) -> None:
    name = f"t{secrets.token_hex(3)}"
    lab = manager.up(name, 2, "10.247.0.0/16", "direct", say=lambda _m: None)
    try:
        runtime.start_pod(lab, Pod("a", "p", {}, (ContainerPort(80, "TCP"),)), lab.plan.nodes[0])
        procs_before = list(lab.procs.values())
        assert sorted(lab.procs) == ["agent/node0", "agent/node1", "controller", "probe/node0", "probe/node1"]
        assert all(procs.alive(p) for p in procs_before)
    finally:
        manager.down(name, say=lambda _m: None)
    assert fabric.list_netns(lab.plan.prefix) == []
    assert not any(procs.alive(p) for p in procs_before)
    assert not (lab_root / name).exists()
    manager.down(name, say=lambda _m: None)  # twice is fine


def test_a_failed_pod_start_leaves_nothing_behind(lab: manager.Lab) -> None:
    bad = Pod("a", "bad", {}, (ContainerPort(80, "TCP"),))
    node = lab.plan.nodes[0]
    before = set(fabric.list_netns(lab.plan.prefix))
    conf = next(lab.cni_conf_dir(node).glob("*.conflist"))
    doc = json.loads(conf.read_text())
    doc["plugins"].append({"type": "tuning", "sysctl": {"net.ipv4.no_such_knob": "1"}})
    conf.write_text(json.dumps(doc))
    with pytest.raises(Exception, match="tuning"):
        runtime.start_pod(lab, bad, node)
    from podnet.agent.client import get_json

    assert get_json(str(lab.agent_socket(node)), "/v1/endpoints") == []
    assert set(fabric.list_netns(lab.plan.prefix)) == before
    assert "a/bad" not in lab.pods and os.path.exists(lab.dir)
