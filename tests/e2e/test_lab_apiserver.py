"""The lab API server as a process on a loopback port, driven by the official client and by kubectl."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client import ApiException

from podnet.kube.client import api_client
from tests.e2e.labserver import Server, kubectl, start

Obj = dict[str, Any]
ANP = ("policy.networking.k8s.io", "v1alpha1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("lab"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server: Server) -> client.ApiClient:
    return api_client(server.kubeconfig)


def _pod(name: str, labels: dict[str, str]) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(name="c", image="busybox", ports=[client.V1ContainerPort(container_port=80)])
            ]
        ),
    )


def _ns(v1: client.CoreV1Api, name: str) -> None:
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"team": name})))


def test_official_client_core_kinds(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    _ns(v1, "crud")
    ns = v1.read_namespace("crud")
    assert ns.metadata.labels == {"team": "crud", "kubernetes.io/metadata.name": "crud"}
    assert ns.status.phase == "Active"
    v1.create_namespaced_pod("crud", _pod("web-1", {"app": "web"}))
    v1.create_namespaced_pod("crud", _pod("db-1", {"app": "db"}))
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod("crud", _pod("web-1", {"app": "web"}))
    assert exc.value.status == 409
    assert [p.metadata.name for p in v1.list_namespaced_pod("crud", label_selector="app=web").items] == ["web-1"]
    assert [p.metadata.name for p in v1.list_namespaced_pod("crud", label_selector="app notin (web)").items] == ["db-1"]
    web = v1.read_namespaced_pod("web-1", "crud")
    web.metadata.labels["tier"] = "front"
    replaced = v1.replace_namespaced_pod("web-1", "crud", web)
    assert replaced.metadata.labels == {"app": "web", "tier": "front"}
    assert int(replaced.metadata.resource_version) > int(web.metadata.resource_version)
    with pytest.raises(ApiException) as exc:
        v1.replace_namespaced_pod("web-1", "crud", web)  # web still has the old resourceVersion
    assert exc.value.status == 409
    replaced.status = client.V1PodStatus(
        phase="Running", pod_ip="10.244.1.7", pod_ips=[client.V1PodIP(ip="10.244.1.7")]
    )
    running = v1.replace_namespaced_pod_status("web-1", "crud", replaced)
    assert running.status.pod_ip == "10.244.1.7" and running.status.phase == "Running"
    v1.delete_namespaced_pod("db-1", "crud")
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_pod("db-1", "crud")
    assert exc.value.status == 404
    v1.delete_namespace("crud")
    assert v1.list_pod_for_all_namespaces(field_selector="metadata.namespace=crud").items == []


def test_official_client_workloads_and_policies(api: client.ApiClient) -> None:
    v1, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    custom = client.CustomObjectsApi(api)
    _ns(v1, "pol")
    template = client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "web"}), spec=_pod("x", {}).spec)
    selector = client.V1LabelSelector(match_labels={"app": "web"})
    apps.create_namespaced_deployment(
        "pol",
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"), spec=client.V1DeploymentSpec(selector=selector, template=template)
        ),
    )
    deploy = apps.read_namespaced_deployment("web", "pol")
    assert deploy.spec.replicas == 1
    deploy.spec.replicas = 3
    assert apps.replace_namespaced_deployment("web", "pol", deploy).metadata.generation == 2
    apps.create_namespaced_stateful_set(
        "pol",
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name="db"),
            spec=client.V1StatefulSetSpec(selector=selector, template=template, service_name="db"),
        ),
    )
    assert [s.metadata.name for s in apps.list_stateful_set_for_all_namespaces().items] == ["db"]
    policy = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="allow-web", labels={"role": "allow"}),
        spec=client.V1NetworkPolicySpec(
            pod_selector=selector,
            ingress=[client.V1NetworkPolicyIngressRule(ports=[client.V1NetworkPolicyPort(port=80)])],
        ),
    )
    created = net.create_namespaced_network_policy("pol", policy)
    assert created.spec.policy_types == ["Ingress"]
    assert [p.metadata.name for p in net.list_network_policy_for_all_namespaces(label_selector="role").items] == [
        "allow-web"
    ]
    anp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "guard", "labels": {"tier": "platform"}},
        "spec": {
            "priority": 5,
            "subject": {"namespaces": {}},
            "ingress": [{"name": "deny", "action": "Deny", "from": [{"namespaces": {"matchLabels": {"team": "x"}}}]}],
        },
    }
    custom.create_cluster_custom_object(*ANP, "adminnetworkpolicies", anp)
    got = custom.get_cluster_custom_object(*ANP, "adminnetworkpolicies", "guard")
    assert isinstance(got, dict)
    got["spec"]["priority"] = 6
    custom.replace_cluster_custom_object(*ANP, "adminnetworkpolicies", "guard", got)
    listed = custom.list_cluster_custom_object(*ANP, "adminnetworkpolicies", label_selector="tier=platform")
    assert isinstance(listed, dict)
    assert [i["spec"]["priority"] for i in listed["items"]] == [6]
    banp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {
            "subject": {"namespaces": {}},
            "egress": [{"name": "deny-all", "action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}],
        },
    }
    custom.create_cluster_custom_object(*ANP, "baselineadminnetworkpolicies", banp)
    custom.delete_cluster_custom_object(*ANP, "baselineadminnetworkpolicies", "default")
    custom.delete_cluster_custom_object(*ANP, "adminnetworkpolicies", "guard")
    empty = custom.list_cluster_custom_object(*ANP, "adminnetworkpolicies")
    assert isinstance(empty, dict) and empty["items"] == []
    v1.delete_namespace("pol")
    assert apps.list_deployment_for_all_namespaces().items == []


def test_invalid_objects_get_422_with_field_paths_and_change_nothing(api: client.ApiClient) -> None:
    v1, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    before = v1.list_namespace().metadata.resource_version
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": 79}]}]},
    }
    with pytest.raises(ApiException) as exc:
        net.create_namespaced_network_policy("default", bad)
    assert exc.value.status == 422
    status = json.loads(exc.value.body)
    assert status["reason"] == "Invalid"
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.ingress[0].ports[0].endPort"]
    assert v1.list_namespace().metadata.resource_version == before


def _events(api: client.ApiClient, namespace: str, rv: str, count: int) -> list[tuple[str, str]]:
    v1 = client.CoreV1Api(api)
    out: list[tuple[str, str]] = []
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=10):
        out.append((event["type"], event["object"].metadata.name))
        if len(out) == count:
            w.stop()
    return out


def test_watch_replays_events_in_order_from_a_resource_version(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    _ns(v1, "watched")
    rv = v1.list_namespaced_pod("watched").metadata.resource_version
    v1.create_namespaced_pod("watched", _pod("a", {"app": "a"}))
    b = v1.create_namespaced_pod("watched", _pod("b", {"app": "b"}))
    b.metadata.labels["v"] = "2"
    v1.replace_namespaced_pod("b", "watched", b)
    v1.delete_namespaced_pod("a", "watched")
    assert _events(api, "watched", rv, 4) == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")]


def test_two_live_watchers_see_the_same_order(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    _ns(v1, "race")
    rv = v1.list_namespaced_pod("race").metadata.resource_version
    results: list[list[tuple[str, str]]] = [[], []]

    def run(i: int) -> None:
        results[i] = _events(api, "race", rv, 30)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for i in range(15):
        v1.create_namespaced_pod("race", _pod(f"p{i}", {"i": str(i)}))
        if i % 3 == 2:
            v1.delete_namespaced_pod(f"p{i - 1}", "race")
        else:
            v1.create_namespaced_pod("race", _pod(f"q{i}", {}))
    for t in threads:
        t.join(timeout=30)
    assert len(results[0]) == 30
    assert results[0] == results[1]


def test_requests_without_the_token_are_refused(server: Server) -> None:
    config = yaml.safe_load(server.kubeconfig.read_text())
    assert server.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{server.url}/api/v1/namespaces", context=ctx, timeout=5)
    assert exc.value.code == 401
    token = config["users"][0]["user"]["token"]
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        assert json.load(resp)["kind"] == "NamespaceList"


def test_sequential_requests_do_not_wait_for_delayed_acks(api: client.ApiClient) -> None:
    # Without TCP_NODELAY on accepted sockets each response waited ~40 ms: 50 requests took over 2 s.
    v1 = client.CoreV1Api(api)
    v1.list_namespace()
    started = time.monotonic()
    for _ in range(50):
        assert v1.read_namespace("default").metadata.name == "default"
    assert time.monotonic() - started < 1.5


def _kubectl(server: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "--kubeconfig", str(server.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def test_kubectl_create_get_replace_delete(server: Server) -> None:
    created = _kubectl(server, "create", "-f", str(SHOP))
    assert created.returncode == 0, created.stderr
    assert "networkpolicy.networking.k8s.io/frontend created" in created.stdout
    got = _kubectl(server, "get", "networkpolicies", "-A", "-o", "json")
    assert got.returncode == 0, got.stderr
    names = sorted(i["metadata"]["name"] for i in json.loads(got.stdout)["items"])
    assert names == ["backend", "frontend", "postgres"]
    ns = _kubectl(server, "get", "namespaces", "-l", "team=platform", "-o", "name")
    assert ns.stdout.split() == ["namespace/data", "namespace/monitoring"]
    anp = _kubectl(server, "get", "anp", "-o", "yaml")
    assert "platform-guardrails" in anp.stdout
    table = _kubectl(server, "get", "anp").stdout.splitlines()  # server-side Table printing
    assert table[0].split() == ["NAME", "PRIORITY", "AGE"] and table[1].split()[:2] == ["platform-guardrails", "10"]
    wide = _kubectl(server, "get", "deploy", "-n", "web", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and wide[1].split()[-1] == "app=frontend"

    deploy = json.loads(_kubectl(server, "get", "deployment", "frontend", "-n", "web", "-o", "json").stdout)
    deploy["spec"]["replicas"] = 5
    replaced = _kubectl(server, "replace", "-f", "-", stdin=json.dumps(deploy))
    assert replaced.returncode == 0, replaced.stderr
    again = _kubectl(server, "replace", "-f", "-", stdin=json.dumps(deploy))  # stale resourceVersion
    assert again.returncode != 0 and "Conflict" in again.stderr
    now = json.loads(_kubectl(server, "get", "deploy", "frontend", "-n", "web", "-o", "json").stdout)
    assert now["spec"]["replicas"] == 5

    bad = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bad", "namespace": "web"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0}]}]},
        }
    )
    rejected = _kubectl(server, "create", "-f", "-", stdin=bad)
    assert rejected.returncode != 0
    assert "spec.containers[0].ports[0].containerPort: Invalid value: 0" in rejected.stderr
    assert "spec.containers[0].image: Required value" in rejected.stderr
    assert _kubectl(server, "get", "pod", "bad", "-n", "web").returncode != 0

    deleted = _kubectl(server, "delete", "-f", str(SHOP / "policies.yaml"))
    assert deleted.returncode == 0, deleted.stderr
    assert _kubectl(server, "get", "networkpolicies", "-A", "-o", "name").stdout.strip() == ""
    gone = _kubectl(server, "delete", "namespace", "web")
    assert gone.returncode == 0, gone.stderr
    assert _kubectl(server, "get", "deployments", "-n", "web", "-o", "name").stdout.strip() == ""


def test_restart_keeps_objects_versions_and_credentials(tmp_path: Path) -> None:
    srv = start(tmp_path)
    try:
        v1 = client.CoreV1Api(api_client(srv.kubeconfig))
        _ns(v1, "keep")
        pod = v1.create_namespaced_pod("keep", _pod("a", {"app": "a"}))
    finally:
        srv.stop()
    srv = start(tmp_path)
    try:
        v1 = client.CoreV1Api(api_client(srv.kubeconfig))
        again = v1.read_namespaced_pod("a", "keep")
        assert again.metadata.uid == pod.metadata.uid
        assert again.metadata.resource_version == pod.metadata.resource_version
        later = v1.create_namespaced_pod("keep", _pod("b", {}))
        assert int(later.metadata.resource_version) == int(pod.metadata.resource_version) + 1
        events = _events(api_client(srv.kubeconfig), "keep", str(int(pod.metadata.resource_version) - 1), 2)
        assert events == [("ADDED", "a"), ("ADDED", "b")]
    finally:
        srv.stop()


def test_watch_from_a_compacted_resource_version_is_410(tmp_path: Path) -> None:
    srv = start(tmp_path, "--event-log-size", "3")
    try:
        api = api_client(srv.kubeconfig)
        v1 = client.CoreV1Api(api)
        for i in range(5):
            v1.create_namespaced_pod("default", _pod(f"p{i}", {}))
        with pytest.raises(ApiException) as exc:
            _events(api, "default", "1", 1)
        assert exc.value.status == 410
    finally:
        srv.stop()


def test_listens_on_loopback_only(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "podnet.cli.main",
            "lab",
            "apiserver",
            "--state-dir",
            str(tmp_path),
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "loopback" in proc.stderr


def test_kubectl_apply_updates_an_image_and_keeps_the_rest(server: Server, tmp_path: Path) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "applied", "namespace": "default", "labels": {"app": "a"}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1", "ports": [{"containerPort": 8080, "name": "http"}]}]
        },
    }
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(manifest))
    first = _kubectl(server, "apply", "-f", str(path))
    assert first.returncode == 0 and "created" in first.stdout, first.stderr
    manifest["spec"]["containers"][0]["image"] = "busybox:2"
    path.write_text(yaml.safe_dump(manifest))
    second = _kubectl(server, "apply", "-f", str(path))
    assert second.returncode == 0 and "configured" in second.stdout, second.stderr
    pod = json.loads(_kubectl(server, "get", "pod", "applied", "-o", "json").stdout)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "busybox:2"
    assert container["ports"] == [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]
    assert "$" not in json.dumps(pod)


def test_kubectl_typed_create_commands_send_protobuf_that_is_understood(server: Server) -> None:
    made = _kubectl(server, "create", "namespace", "typed")
    assert made.returncode == 0, made.stderr
    deploy = _kubectl(
        server, "create", "deployment", "web", "--image=nginx", "--port=80", "--replicas=2", "-n", "typed"
    )
    assert deploy.returncode == 0, deploy.stderr
    got = json.loads(_kubectl(server, "get", "deployment", "web", "-n", "typed", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 2
    assert got["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
