"""Flows from a real lab: the kernel's decisions on the shop, named after the policies that made them."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from podnet.lab import manager
from tests.net.lab.helpers import ROOT, podnet, wait_for


def observe(lab: manager.Lab, *args: str) -> list[dict[str, Any]]:
    out = podnet("observe", "--name", lab.name, "-o", "json", "--last", "100000", *args).stdout
    return [json.loads(line)["flow"] for line in out.splitlines()]


def stable_flows(lab: manager.Lab) -> list[dict[str, Any]]:
    """All flows, once two reads a second apart agree (aggregated drop records arrive up to 1 s late)."""
    before = observe(lab)
    for _ in range(20):
        time.sleep(1.2)
        now = observe(lab)
        if now == before:
            return now
        before = now
    raise AssertionError("flows never settled")


def probe(lab: manager.Lab, src: str, dst: str, port: int) -> bool:
    out = podnet("lab", "probe", "--name", lab.name, "--from", src, "--to", dst, "--port", str(port), "-o", "json",
                 "--timeout", "1", check=False)  # fmt: skip
    return bool(json.loads(out.stdout)["reachable"])


def test_observe_names_the_policies_and_filters_exactly(lab: manager.Lab, tmp_path: Path) -> None:
    podnet("apply", "-f", "examples/shop", "--name", lab.name)

    def running() -> bool:
        items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout)["items"]
        return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

    wait_for(running, "6 running pods")
    assert probe(lab, "web/frontend-0", "api/backend-0", 9000)
    assert not probe(lab, "web/frontend-0", "data/postgres-0", 5432)
    flows = stable_flows(lab)
    assert [f["time"] for f in flows] == sorted(f["time"] for f in flows)  # merged by time over both nodes

    def pod(side: dict[str, Any]) -> str:
        return f"{side.get('namespace', '')}/{side.get('pod_name', '')}"

    allowed = [f for f in flows if pod(f["destination"]) == "api/backend-0" and f["verdict"] == "FORWARDED"]
    assert {f["traffic_direction"] for f in allowed} == {"EGRESS", "INGRESS"}  # judged on both veths
    ingress = next(f for f in allowed if f["traffic_direction"] == "INGRESS")
    assert ingress["allowed_by"] == [
        {"kind": "NetworkPolicy", "namespace": "api", "name": "backend", "direction": "ingress", "rule": 0}
    ]
    assert ingress["l4"]["TCP"]["destination_port"] == 9000 and ingress["l4"]["TCP"]["flags"] == {"SYN": True}
    assert pod(ingress["source"]) == "web/frontend-0" and ingress["source"]["identity"] > 0
    assert "k8s:app=frontend" in ingress["source"]["labels"] and ingress["Type"] == "L3_L4"

    denied = [f for f in flows if pod(f["destination"]) == "data/postgres-0"]
    assert denied and all(f["verdict"] == "DROPPED" for f in denied)
    drop = denied[0]
    assert drop["drop_reason_desc"] == "POLICY_DENIED" and drop["traffic_direction"] == "EGRESS"
    assert drop["denied_by"][0]["kind"] == "isolation" and drop["denied_by"][0]["isolated_by"] == ["web/frontend"]
    assert (drop["denied_by"][0]["namespace"], drop["denied_by"][0]["name"]) == ("web", "frontend")
    items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout)["items"]
    node_of = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"]["nodeName"] for p in items}
    assert drop["node_name"] == node_of["web/frontend-0"]  # dropped leaving the frontend's veth
    assert ingress["node_name"] == node_of["api/backend-0"]

    def port_of(f: dict[str, Any]) -> set[int]:
        tcp = next(iter(f["l4"].values()))
        return {tcp.get("source_port", 0), tcp.get("destination_port", 0)}

    expected = {
        ("--verdict", "DROPPED"): [f for f in flows if f["verdict"] == "DROPPED"],
        ("--to-pod", "api/backend-0"): [f for f in flows if pod(f["destination"]) == "api/backend-0"],
        ("--port", "5432"): [f for f in flows if 5432 in port_of(f)],
        ("--not", "--verdict", "DROPPED"): [f for f in flows if f["verdict"] != "DROPPED"],
        ("--to-pod", "api/backend-0", "--not", "--port", "5432"): allowed,
    }
    export = tmp_path / "flows.jsonl"
    export.write_text(podnet("observe", "--name", lab.name, "-o", "json", "--last", "100000").stdout)
    for args, want in expected.items():
        assert want, args
        assert observe(lab, *args) == want, args
        offline = podnet("observe", "--input-file", str(export), "-o", "json", *args).stdout
        assert [json.loads(line)["flow"] for line in offline.splitlines()] == want, args
    assert observe(lab, "--verdict", "DROPPED", "--not", "--verdict", "DROPPED") == []

    # One agent's socket: only the flows its node saw.
    node0 = lab.plan.nodes[0]
    one = podnet("observe", "--socket", str(lab.agent_socket(node0)), "-o", "json", "--last", "100000").stdout
    mine = [json.loads(line)["flow"] for line in one.splitlines()]
    assert mine == [f for f in flows if f["node_name"] == node0.name]

    # --follow streams new flows from every node as they happen.
    follow = subprocess.Popen(
        [sys.executable, "-m", "podnet.cli.main", "observe", "--name", lab.name, "--follow", "--last", "0",
         "--from-pod", "web/frontend-1", "--port", "9000", "-o", "json"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(2.0)
        assert probe(lab, "web/frontend-1", "api/backend-0", 9000)
        assert follow.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        out = follow.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in out], daemon=True).start()
        got = [json.loads(lines.get(timeout=20))["flow"] for _ in range(2)]
        assert sorted(f["traffic_direction"] for f in got) == ["EGRESS", "INGRESS"]
        assert all(f["verdict"] == "FORWARDED" and f["source"]["pod_name"] == "frontend-1" for f in got)
        # Stopping the agents ends their streams promptly (a follower does not hold up shutdown), and observe exits.
        started = time.monotonic()
        manager.down(lab.name, say=lambda _m: None)
        assert follow.wait(timeout=20) == 1 and time.monotonic() - started < 20
    finally:
        follow.terminate()
        follow.wait(timeout=10)


AUDIT_DATA = """apiVersion: v1
kind: Namespace
metadata:
  name: data
  labels: {team: platform}
  annotations: {podnet.io/audit: "true"}
"""


@pytest.mark.parametrize("lab", ["ebpf", "nft"], indirect=True)
def test_a_namespace_in_audit_mode_lets_would_be_drops_pass_as_audit(lab: manager.Lab, tmp_path: Path) -> None:
    """podnet.io/audit on a Namespace: its NetworkPolicies' would-be drops pass, each flow says AUDIT and
    names the isolation that would have denied it; drops of other policies stay drops."""
    podnet("apply", "-f", "examples/shop", "--name", lab.name)

    def running() -> bool:
        items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout)["items"]
        return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

    wait_for(running, "6 running pods")
    # monitoring may reach postgres as far as the admin policies go; data/postgres isolates it
    assert not probe(lab, "monitoring/prometheus-0", "data/postgres-0", 5432)
    audit = tmp_path / "audit.yaml"
    audit.write_text(AUDIT_DATA)
    podnet("apply", "-f", str(audit), "--name", lab.name)
    wait_for(lambda: probe(lab, "monitoring/prometheus-0", "data/postgres-0", 5432), "the audited connection")
    # web's frontend is still denied by its own (enforcing) egress policy
    assert not probe(lab, "web/frontend-0", "data/postgres-0", 5432)
    flows = stable_flows(lab)
    audited = [f for f in flows if f["verdict"] == "AUDIT"]
    assert audited and all(f["destination"]["pod_name"] == "postgres-0" for f in audited)
    assert {f["traffic_direction"] for f in audited} == {"INGRESS"}
    assert audited[-1]["source"]["namespace"] == "monitoring"
    assert audited[-1]["denied_by"][0]["isolated_by"] == ["data/postgres"]
    last = [
        f
        for f in flows
        if f["source"].get("pod_name") == "frontend-0" and f["destination"].get("pod_name") == "postgres-0"
    ]
    assert last and last[-1]["verdict"] == "DROPPED"


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [(s.name, dict(s.labels), s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))


def test_lab_agents_count_flows_in_metrics_and_export_them(lab: manager.Lab) -> None:
    podnet("apply", "-f", "examples/shop", "--name", lab.name)

    def running() -> bool:
        items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout)["items"]
        return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

    wait_for(running, "6 running pods")
    before = _samples("".join(manager.scrape_metrics(lab, node) for node in lab.plan.nodes))
    assert _total(before, "podnet_endpoints") == 6  # every pod under policy, counted by its node's agent
    assert _total(before, "podnet_policy_map_entries") > 0
    forwarded_before = _total(before, "podnet_flows_processed_total", verdict="FORWARDED")
    dropped_before = _total(before, "podnet_drop_total", reason="POLICY_DENIED")
    for _ in range(3):
        assert probe(lab, "web/frontend-0", "api/backend-0", 9000)
    assert not probe(lab, "web/frontend-0", "data/postgres-0", 5432)

    def counted() -> list[tuple[str, dict[str, str], float]] | None:
        now = _samples(podnet("lab", "metrics", "--name", lab.name).stdout)  # every node, as a user scrapes them
        forwarded = _total(now, "podnet_flows_processed_total", verdict="FORWARDED")
        dropped = _total(now, "podnet_drop_total", reason="POLICY_DENIED")
        # 3 connections, each judged on both veths (the source's egress, the destination's ingress)
        return now if forwarded - forwarded_before >= 6 and dropped - dropped_before >= 1 else None

    wait_for(counted, "the probes counted in the agents' metrics", timeout=30)
    now = counted()
    assert now is not None
    assert _total(now, "podnet_flows_processed_total", verdict="FORWARDED", direction="INGRESS") >= 3
    assert _total(now, "podnet_flows_processed_total", verdict="FORWARDED", direction="EGRESS") >= 3
    # The datapath's own counters: between two nodes, the source's pod veth sends by bpf_redirect_neigh and the
    # destination's uplink hands the packets to the pod (pn_from_uplink); on one node, pod to pod by redirect.
    items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout)["items"]
    node_of = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"]["nodeName"] for p in items}
    if node_of["web/frontend-0"] != node_of["api/backend-0"]:
        assert _total(now, "podnet_datapath_packets", counter="redirected_uplink") > 0
        assert _total(now, "podnet_datapath_packets", counter="redirected_neigh") > 0
    else:
        assert _total(now, "podnet_datapath_packets", counter="redirected") > 0

    exported = []
    for node in lab.plan.nodes:
        path = manager.flows_export(lab, node)
        exported += [json.loads(line) for line in path.read_text().splitlines()]
    to_backend = [f for f in exported if f["flow"]["destination"].get("pod_name") == "backend-0"]
    assert len([f for f in to_backend if f["flow"]["verdict"] == "FORWARDED"]) >= 6
    to_db = [f for f in exported if f["flow"]["destination"].get("pod_name") == "postgres-0"]
    assert to_db and all(f["flow"]["verdict"] == "DROPPED" for f in to_db)
