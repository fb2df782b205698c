"""The lab's control plane for real: apply manifests, pods scheduled and wired, deletions undone."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from podnet.lab import fabric, manager, procs
from tests.net.lab.helpers import podnet, pods, wait_for


@pytest.mark.parametrize("lab", ["ebpf", "nft"], indirect=True)
def test_apply_runs_the_shop_on_two_nodes_and_probes_reach_every_declared_port(lab: manager.Lab) -> None:
    """The same scenario on both datapaths (``lab up --datapath``): the kernel does what the analyzer says,
    flows name the deciding rules, a killed agent leaves the policy enforced until its restart, and label and
    policy changes take effect on live pods."""
    assert lab.datapath in podnet("lab", "list").stdout
    out = podnet("apply", "-f", "examples/shop", "--name", lab.name).stdout
    assert "deployment/frontend created" in out and "networkpolicy/backend created" in out

    def running() -> bool:
        items = pods(lab)
        return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

    wait_for(running, "6 running pods")
    by_node: dict[str, list[str]] = {}
    for p in pods(lab):
        node = lab.plan.node(p["spec"]["nodeName"])
        assert p["status"]["podIP"] in [str(a) for a in node.pod_cidr.hosts()]
        by_node.setdefault(node.name, []).append(p["metadata"]["name"])
    assert sorted(len(v) for v in by_node.values()) == [3, 3]  # spread over both nodes
    matrix = json.loads(podnet("connectivity", "matrix", "-o", "json", "--name", lab.name, "--timeout", "1").stdout)
    assert len(matrix) == 40
    assert all(set(m) == {"from", "to", "protocol", "port", "reachable", "rtt_ms"} for m in matrix)
    reachable = {(m["from"], m["to"], m["port"]) for m in matrix if m["reachable"]}
    assert ("web/frontend-0", "api/backend-0", 9000) in reachable  # allowed by both sides' NetworkPolicies
    assert ("web/frontend-0", "data/postgres-0", 5432) not in reachable  # both sides deny: the kernel drops it
    # The kernel does what the analyzer says, pair by pair and port by port.
    test = json.loads(podnet("connectivity", "test", "-o", "json", "--name", lab.name, "--timeout", "1").stdout)
    # 40 pod to pod, 6 to their node, 12 to outside, 8 from each node to its pods' declared ports
    assert test == {"probes": 66, "differences": []}
    # pod to host (its node's underlay address) and pod to outside (the fabric's address): real answers

    def reaches(src: str, dst: str, port: int, proto: str = "TCP") -> bool:
        argv = ["lab", "probe", "--from", src, "--to", dst, "--port", str(port), "--protocol", proto]
        return podnet(*argv, "--timeout", "1", "--name", lab.name, check=False).returncode == 0

    node = lab.plan.node(next(p for p in pods(lab) if p["metadata"]["name"] == "prometheus-0")["spec"]["nodeName"])
    assert reaches("monitoring/prometheus-0", f"host:{node.name}", 4240)  # no egress policy: world is open
    assert reaches("monitoring/prometheus-0", "outside", 443)
    assert reaches("monitoring/prometheus-0", "outside", 53, "UDP")
    assert not reaches("web/frontend-0", "outside", 443)  # its egress allows only the backend
    # The node reaches its pods even where NetworkPolicy isolates them (the host identity), and only there:
    # postgres-0 accepts only the backend.
    db = lab.plan.node(next(p for p in pods(lab) if p["metadata"]["name"] == "postgres-0")["spec"]["nodeName"])
    assert reaches(f"host:{db.name}", "data/postgres-0", 5432)
    assert not reaches("web/frontend-0", "data/postgres-0", 5432)

    # Flows: both sides of an allowed connection name their rules, a drop names the isolating policy.
    def flows(*args: str) -> list[dict[str, Any]]:
        out = podnet("observe", "--name", lab.name, "-o", "json", "--last", "100000", *args).stdout
        return [json.loads(line)["flow"] for line in out.splitlines()]

    assert reaches("web/frontend-1", "api/backend-0", 9000)
    wanted = ("--from-pod", "web/frontend-1", "--to-pod", "api/backend-0", "--port", "9000")
    wait_for(lambda: len(flows(*wanted)) >= 2, "both sides' flows")
    by_side = {f["traffic_direction"]: f for f in flows(*wanted)}
    assert by_side["INGRESS"]["allowed_by"] == [
        {"kind": "NetworkPolicy", "namespace": "api", "name": "backend", "direction": "ingress", "rule": 0}
    ]
    assert by_side["EGRESS"]["allowed_by"][0]["name"] == "frontend"
    assert all(f["verdict"] == "FORWARDED" and f["l4"]["TCP"]["flags"] == {"SYN": True} for f in by_side.values())
    assert not reaches("web/frontend-0", "data/postgres-0", 5432)
    dropped = ("--from-pod", "web/frontend-0", "--to-pod", "data/postgres-0", "--port", "5432")
    wait_for(lambda: flows(*dropped), "the drop's flow")
    drop = flows(*dropped)[0]
    assert (drop["verdict"], drop["drop_reason_desc"]) == ("DROPPED", "POLICY_DENIED")
    assert drop["traffic_direction"] == "EGRESS"
    assert drop["denied_by"][0]["kind"] == "isolation" and drop["denied_by"][0]["isolated_by"] == ["web/frontend"]

    # Fail closed: with an agent killed, its node keeps enforcing; the restarted one re-syncs without a gap.
    old = manager.load(lab.name).procs["agent/node0"]
    os.kill(old.pid, signal.SIGKILL)
    wait_for(lambda: not procs.alive(old), "the agent to die")
    assert json.loads(podnet("connectivity", "test", "-o", "json", "--name", lab.name, "--timeout", "1").stdout) == {
        "probes": 66,
        "differences": [],
    }
    podnet("lab", "restart-agent", "--node", "node0", "--name", lab.name)
    test = json.loads(podnet("connectivity", "test", "-o", "json", "--name", lab.name, "--timeout", "1").stdout)
    assert test == {"probes": 66, "differences": []}

    # A label change and a policy deletion reach the kernel on live pods.
    podnet("label", "pod", "frontend-0", "app=other", "-n", "web", "--overwrite", "--name", lab.name)
    wait_for(lambda: not reaches("web/frontend-0", "api/backend-0", 9000), "the label change", 10)
    podnet("delete", "networkpolicy", "backend", "-n", "api", "--name", lab.name)
    wait_for(lambda: reaches("monitoring/prometheus-0", "api/backend-0", 9000), "the deletion to open 9000", 10)
    test = json.loads(podnet("connectivity", "test", "-o", "json", "--name", lab.name, "--timeout", "1").stdout)
    assert test["differences"] == []


def test_policy_and_label_changes_take_effect_on_live_pods(lab: manager.Lab) -> None:
    podnet("apply", "-f", "examples/shop", "--name", lab.name)
    wait_for(lambda: sum((p.get("status") or {}).get("phase") == "Running" for p in pods(lab)) == 6, "6 pods")

    def probe(src: str, dst: str, port: int) -> bool:
        r = podnet(
            "lab",
            "probe",
            "--from",
            src,
            "--to",
            dst,
            "--port",
            str(port),
            "--timeout",
            "1",
            "--name",
            lab.name,
            check=False,
        )
        return r.returncode == 0

    wait_for(lambda: probe("web/frontend-0", "api/backend-0", 9000), "frontend to reach the backend")
    assert not probe("monitoring/prometheus-0", "api/backend-0", 9000)  # only metrics (9100) is open to it
    # app=other: api/backend's ingress rule (pods app=frontend in web) no longer admits frontend-0
    podnet("label", "pod", "frontend-0", "app=other", "-n", "web", "--overwrite", "--name", lab.name)
    wait_for(lambda: not probe("web/frontend-0", "api/backend-0", 9000), "the label change", 10)
    assert probe("web/frontend-1", "api/backend-0", 9000)
    # without its NetworkPolicy the backend falls to the baseline, which lets monitoring in
    podnet("delete", "networkpolicy", "backend", "-n", "api", "--name", lab.name)
    wait_for(lambda: probe("monitoring/prometheus-0", "api/backend-0", 9000), "the deletion to open 9000", 10)
    test = json.loads(podnet("connectivity", "test", "-o", "json", "--name", lab.name, "--timeout", "1").stdout)
    assert test["differences"] == []


def test_invalid_manifests_change_nothing_and_deletes_remove_sandboxes(lab: manager.Lab, tmp_path: Path) -> None:
    bad = podnet("apply", "-f", "examples/shop", "-f", "examples/invalid/ports.yaml", "--name", lab.name, check=False)
    assert bad.returncode == 2 and "endPort" in bad.stderr and bad.stdout == ""
    assert podnet("get", "namespaces", "-o", "json", "--name", lab.name).stdout.count('"name": "web"') == 0

    manifest = tmp_path / "one.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: solo, namespace: default, labels: {app: solo}}\n"
        "spec: {containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}\n"
    )
    podnet("apply", "-f", str(manifest), "--name", lab.name)
    wait_for(lambda: "default/solo" in manager.load(lab.name).pods, "the solo pod's sandbox")
    netns = manager.load(lab.name).pods["default/solo"]["netns"]
    assert fabric.netns_exists(netns)
    podnet("label", "pod", "solo", "tier=web", "--name", lab.name)
    assert "tier=web" in podnet("get", "pods", "-o", "wide", "--name", lab.name).stdout
    podnet("delete", "pod", "solo", "--name", lab.name)
    wait_for(lambda: "default/solo" not in manager.load(lab.name).pods, "the sandbox to go")
    assert not fabric.netns_exists(netns)
    assert podnet("delete", "pod", "solo", "--name", lab.name, check=False).returncode == 1
