"""deploy/kubernetes: the manifests load, have the kinds and fields a cluster needs, and every podnet
command line in them is one podnet's own parser accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from podnet.cli.agent import write_in_cluster_kubeconfig
from podnet.cli.main import build_parser
from podnet.cni.install import conflist

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _one(kind: str) -> dict[str, Any]:
    [doc] = [d for d in _docs() if d["kind"] == kind]
    return doc


def test_the_manifests_hold_the_kinds_a_cluster_needs() -> None:
    kinds = sorted(d["kind"] for d in _docs())
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"]
    for d in _docs():
        assert d["apiVersion"] and d["metadata"]["name"]


def test_rbac_lets_the_agent_list_and_watch_what_it_enforces() -> None:
    role = _one("ClusterRole")
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for group, resource in [
        ("", "namespaces"),
        ("", "pods"),
        ("networking.k8s.io", "networkpolicies"),
        ("policy.networking.k8s.io", "adminnetworkpolicies"),
        ("policy.networking.k8s.io", "baselineadminnetworkpolicies"),
    ]:
        assert {(group, resource, "list"), (group, resource, "watch")} <= allowed
    assert ("", "nodes", "get") in allowed
    assert not any(v in {"create", "update", "patch", "delete", "*"} for _, _, v in allowed)  # read-only
    binding, account = _one("ClusterRoleBinding"), _one("ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "podnet-agent",
    }
    [subject] = binding["subjects"]
    assert (subject["name"], subject["namespace"]) == (account["metadata"]["name"], account["metadata"]["namespace"])
    assert _one("DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_the_conflist_is_what_install_cni_writes() -> None:
    data = _one("ConfigMap")["data"]
    assert json.loads(data["10-podnet.conflist"]) == conflist(
        "podnet", "/run/podnet/agent.sock", "1.0.0", None, None, []
    )


def test_the_daemonset_runs_the_agent_privileged_on_the_host_network_after_installing_cni() -> None:
    ds = _one("DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert spec["hostNetwork"] is True
    assert [c["name"] for c in spec["initContainers"]] == ["install-cni", "install-conflist"]
    assert spec["initContainers"][0]["args"][0] == "install-cni"
    [agent] = spec["containers"]
    assert agent["args"][0] == "agent" and agent["securityContext"]["privileged"] is True
    volumes = {v["name"] for v in spec["volumes"]}
    for c in [*spec["initContainers"], *spec["containers"]]:
        assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes
    config_maps = {v["configMap"]["name"] for v in spec["volumes"] if "configMap" in v}
    assert config_maps == {_one("ConfigMap")["metadata"]["name"]}


def _podnet_command_lines() -> list[list[str]]:
    lines = []
    for d in _docs():
        if d["kind"] != "DaemonSet":
            continue
        spec = d["spec"]["template"]["spec"]
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            argv = [*c.get("command", []), *c.get("args", [])]
            if argv and argv[0] == "podnet":
                lines.append(argv[1:])
    return lines


def test_every_podnet_command_line_is_accepted_by_podnets_parser() -> None:
    lines = _podnet_command_lines()
    assert [line[0] for line in lines] == ["install-cni", "agent"]
    parser = build_parser()
    for argv in lines:
        args = parser.parse_args(argv)  # SystemExit (exit 2) on anything podnet does not accept
        assert callable(args.func)
    agent = parser.parse_args(lines[1])
    assert agent.in_cluster and agent.pod_cidr_from_node and agent.node_name == "$(NODE_NAME)"


def test_a_command_line_podnet_rejects_is_caught() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "--node-name", "n", "--no-such-flag"])


def test_in_cluster_kubeconfig_uses_the_service_account(tmp_path: Path) -> None:
    account = tmp_path / "sa"
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    path = write_in_cluster_kubeconfig(tmp_path / "state" / "kubeconfig", env, account)
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://10.96.0.1:443",
        "certificate-authority": f"{account}/ca.crt",
    }
    assert doc["users"][0]["user"] == {"tokenFile": f"{account}/token"}
    assert path.stat().st_mode & 0o777 == 0o600
    v6 = write_in_cluster_kubeconfig(tmp_path / "k6", {"KUBERNETES_SERVICE_HOST": "fd00::1"}, account)
    assert yaml.safe_load(v6.read_text())["clusters"][0]["cluster"]["server"] == "https://[fd00::1]:443"
