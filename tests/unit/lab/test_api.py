"""The lab API server's request logic, in process: verbs, errors as Status, selectors, watch, persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podnet.lab.apiserver.api import Api, Reply, WatchPlan
from podnet.lab.apiserver.store import Store

Obj = dict[str, Any]


def pod(name: str, ns: str = "default", labels: dict[str, str] | None = None, node: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": spec,
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def netpol(name: str, ns: str = "default", port: object = 80) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": port}]}]},
    }


class Client:
    """Calls Api.handle the way the HTTP layer does and decodes the reply."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def call(
        self, method: str, path: str, body: Obj | None = None, ctype: str = "application/json", **query: str
    ) -> Reply:
        raw = json.dumps(body).encode() if body is not None else b""
        out = self.api.handle(method, path, query, raw, ctype)
        assert isinstance(out, Reply), out
        return out

    def ok(self, method: str, path: str, body: Obj | None = None, **query: str) -> Obj:
        reply = self.call(method, path, body, **query)
        assert reply.code in (200, 201), reply.body
        assert isinstance(reply.body, dict)
        return reply.body

    def watch(self, path: str, **query: str) -> WatchPlan:
        out = self.api.handle("GET", path, {"watch": "true", **query})
        assert isinstance(out, WatchPlan), out
        return out


@pytest.fixture
def client() -> Client:
    return Client(Api(Store(None)))


PODS = "/api/v1/namespaces/default/pods"


def test_create_sets_server_fields_and_get_returns_the_object(client: Client) -> None:
    created = client.ok("POST", PODS, pod("a", labels={"app": "web"}))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(meta["resourceVersion"]) == client.api.store.resource_version
    assert created["status"] == {"phase": "Pending"}
    assert created["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"  # defaulted
    assert client.ok("GET", f"{PODS}/a") == created


def test_resource_versions_come_from_one_global_counter(client: Client) -> None:
    rvs = [
        int(client.ok("POST", "/api/v1/namespaces", namespace("n1"))["metadata"]["resourceVersion"]),
        int(client.ok("POST", PODS, pod("a"))["metadata"]["resourceVersion"]),
        int(
            client.ok("POST", "/apis/networking.k8s.io/v1/namespaces/n1/networkpolicies", netpol("p", "n1"))[
                "metadata"
            ]["resourceVersion"]
        ),
    ]
    assert rvs == [rvs[0], rvs[0] + 1, rvs[0] + 2]


def test_create_twice_is_409_already_exists(client: Client) -> None:
    client.ok("POST", PODS, pod("a"))
    reply = client.call("POST", PODS, pod("a"))
    assert reply.code == 409
    assert isinstance(reply.body, dict)
    assert reply.body["reason"] == "AlreadyExists" and reply.body["kind"] == "Status"
    assert reply.body["details"] == {"name": "a", "kind": "pods"}


def test_missing_namespace_is_404_and_nothing_is_stored(client: Client) -> None:
    before = client.api.store.resource_version
    reply = client.call("POST", "/api/v1/namespaces/nope/pods", pod("a", "nope"))
    assert reply.code == 404
    assert isinstance(reply.body, dict)
    assert reply.body["message"] == 'namespaces "nope" not found'
    assert client.api.store.resource_version == before


def test_invalid_object_is_422_with_field_paths_and_changes_nothing(client: Client) -> None:
    client.ok("POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", netpol("p"))
    before = client.api.store.resource_version
    bad = netpol("q", port=70000)
    bad["spec"]["podSelector"] = {"matchLabels": {"bad key!": "x"}}
    reply = client.call("POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", bad)
    assert reply.code == 422
    assert isinstance(reply.body, dict)
    assert reply.body["reason"] == "Invalid"
    fields = {c["field"] for c in reply.body["details"]["causes"]}
    assert fields == {"spec.podSelector.matchLabels", "spec.ingress[0].ports[0].port"}
    assert reply.body["message"].startswith('NetworkPolicy.networking.k8s.io "q" is invalid: [')
    assert client.api.store.resource_version == before
    listed = client.ok("GET", "/apis/networking.k8s.io/v1/networkpolicies")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["p"]


def test_pod_without_container_image_is_invalid(client: Client) -> None:
    p = pod("a")
    del p["spec"]["containers"][0]["image"]
    reply = client.call("POST", PODS, p)
    assert reply.code == 422
    assert isinstance(reply.body, dict)
    causes = reply.body["details"]["causes"]
    assert causes == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}
    ]


def test_namespace_in_body_must_match_the_url(client: Client) -> None:
    client.ok("POST", "/api/v1/namespaces", namespace("other"))
    reply = client.call("POST", PODS, pod("a", "other"))
    assert reply.code == 400


def test_list_by_namespace_label_and_field_selectors(client: Client) -> None:
    client.ok("POST", "/api/v1/namespaces", namespace("n1"))
    client.ok("POST", PODS, pod("a", labels={"app": "web", "tier": "fe"}, node="node-1"))
    client.ok("POST", PODS, pod("b", labels={"app": "db"}, node="node-2"))
    client.ok("POST", "/api/v1/namespaces/n1/pods", pod("c", "n1", labels={"app": "web"}, node="node-1"))

    def names(path: str, **query: str) -> list[str]:
        body = client.ok("GET", path, **query)
        assert body["kind"] == "PodList" and int(body["metadata"]["resourceVersion"]) > 0
        return [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in body["items"]]

    assert names("/api/v1/pods") == ["default/a", "default/b", "n1/c"]
    assert names(PODS) == ["default/a", "default/b"]
    assert names("/api/v1/pods", labelSelector="app=web") == ["default/a", "n1/c"]
    assert names("/api/v1/pods", labelSelector="app in (web,db),!tier") == ["default/b", "n1/c"]
    assert names("/api/v1/pods", fieldSelector="spec.nodeName=node-1") == ["default/a", "n1/c"]
    assert names("/api/v1/pods", fieldSelector="metadata.namespace!=default,metadata.name=c") == ["n1/c"]
    assert client.call("GET", "/api/v1/pods", labelSelector="a in (").code == 400
    assert client.call("GET", "/api/v1/pods", fieldSelector="spec.hostname=x").code == 400


def test_limit_and_continue_page_through_a_list(client: Client) -> None:
    for i in range(5):
        client.ok("POST", PODS, pod(f"p{i}"))
    seen: list[str] = []
    token = ""
    while True:
        page = client.ok("GET", PODS, limit="2", **({"continue": token} if token else {}))
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert seen == ["p0", "p1", "p2", "p3", "p4"]


def test_replace_with_stale_resource_version_is_409_conflict(client: Client) -> None:
    first = client.ok("POST", PODS, pod("a", labels={"v": "1"}))
    first["metadata"]["labels"] = {"v": "2"}
    second = client.ok("PUT", f"{PODS}/a", first)
    assert second["metadata"]["labels"] == {"v": "2"}
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    first["metadata"]["labels"] = {"v": "3"}
    reply = client.call("PUT", f"{PODS}/a", first)  # still carries the first resourceVersion
    assert reply.code == 409
    assert isinstance(reply.body, dict)
    assert reply.body["reason"] == "Conflict"
    assert client.ok("GET", f"{PODS}/a")["metadata"]["labels"] == {"v": "2"}


def test_replace_bumps_generation_only_when_spec_changes_and_a_noop_keeps_the_version(client: Client) -> None:
    path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
    created = client.ok("POST", path, netpol("p"))
    same = client.ok("PUT", f"{path}/p", created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = client.ok("PUT", f"{path}/p", netpol("p", port=81))
    assert changed["metadata"]["generation"] == 2
    labelled = dict(changed, metadata={**changed["metadata"], "labels": {"x": "y"}})
    assert client.ok("PUT", f"{path}/p", labelled)["metadata"]["generation"] == 2


def test_pod_spec_is_immutable_except_images(client: Client) -> None:
    created = client.ok("POST", PODS, pod("a"))
    moved = json.loads(json.dumps(created))
    moved["spec"]["containers"][0]["ports"] = []
    assert client.call("PUT", f"{PODS}/a", moved).code == 422
    image = json.loads(json.dumps(created))
    image["spec"]["containers"][0]["image"] = "busybox:2"
    assert client.ok("PUT", f"{PODS}/a", image)["spec"]["containers"][0]["image"] == "busybox:2"


def test_status_subresource_writes_only_status(client: Client) -> None:
    created = client.ok("POST", PODS, pod("a", labels={"app": "web"}))
    update = json.loads(json.dumps(created))
    update["status"] = {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]}
    update["metadata"]["labels"] = {"app": "ignored"}
    stored = client.ok("PUT", f"{PODS}/a/status", update)
    assert stored["status"]["podIPs"] == [{"ip": "10.244.1.5"}]
    assert stored["metadata"]["labels"] == {"app": "web"}
    # a main-resource replace cannot change status
    again = json.loads(json.dumps(stored))
    again["status"] = {"phase": "Failed"}
    assert client.ok("PUT", f"{PODS}/a", again)["status"]["phase"] == "Running"
    bad = json.loads(json.dumps(stored))
    bad["status"]["podIPs"] = [{"ip": "not-an-ip"}]
    reply = client.call("PUT", f"{PODS}/a/status", bad)
    assert reply.code == 422
    assert isinstance(reply.body, dict)
    assert reply.body["details"]["causes"][0]["field"] == "status.podIPs[0].ip"


def test_binding_sets_node_name_once(client: Client) -> None:
    client.ok("POST", PODS, pod("a"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"}, "target": {"name": "node-1"}}
    client.ok("POST", f"{PODS}/a/binding", binding)
    assert client.ok("GET", f"{PODS}/a")["spec"]["nodeName"] == "node-1"
    assert client.call("POST", f"{PODS}/a/binding", binding).code == 409


def test_merge_patch_changes_labels(client: Client) -> None:
    client.ok("POST", PODS, pod("a", labels={"app": "web", "old": "x"}))
    patch = {"metadata": {"labels": {"old": None, "new": "y"}}}
    reply = client.call("PATCH", f"{PODS}/a", patch, ctype="application/merge-patch+json")
    assert reply.code == 200
    assert client.ok("GET", f"{PODS}/a")["metadata"]["labels"] == {"app": "web", "new": "y"}
    assert client.call("PATCH", f"{PODS}/a", [], ctype="application/json-patch+json").code == 415


def test_delete_returns_pods_and_status_for_others_then_404(client: Client) -> None:
    client.ok("POST", PODS, pod("a"))
    gone = client.ok("DELETE", f"{PODS}/a")
    assert gone["kind"] == "Pod" and gone["metadata"]["name"] == "a"
    assert client.call("GET", f"{PODS}/a").code == 404
    assert client.call("DELETE", f"{PODS}/a").code == 404
    client.ok("POST", "/api/v1/namespaces", namespace("n1"))
    status = client.ok("DELETE", "/api/v1/namespaces/n1")
    assert status["kind"] == "Status" and status["status"] == "Success"


def test_deleting_a_namespace_deletes_its_objects(client: Client) -> None:
    client.ok("POST", "/api/v1/namespaces", namespace("n1"))
    client.ok("POST", "/api/v1/namespaces/n1/pods", pod("a", "n1"))
    client.ok("POST", "/apis/networking.k8s.io/v1/namespaces/n1/networkpolicies", netpol("p", "n1"))
    client.ok("POST", PODS, pod("keep"))
    client.ok("DELETE", "/api/v1/namespaces/n1")
    assert [i["metadata"]["name"] for i in client.ok("GET", "/api/v1/pods")["items"]] == ["keep"]
    assert client.ok("GET", "/apis/networking.k8s.io/v1/networkpolicies")["items"] == []


def test_deleting_an_owner_deletes_its_dependents_unless_orphaned(client: Client) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod("x")["spec"]},
        },
    }
    for orphan in (False, True):
        d = client.ok("POST", "/apis/apps/v1/namespaces/default/deployments", deploy)
        assert d["spec"]["replicas"] == 1
        owned = pod("web-1", labels={"app": "web"})
        owned["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "uid": d["metadata"]["uid"],
                "controller": True,
            }
        ]
        client.ok("POST", PODS, owned)
        query = {"propagationPolicy": "Orphan"} if orphan else {}
        client.ok("DELETE", "/apis/apps/v1/namespaces/default/deployments/web", **query)
        left = [i["metadata"]["name"] for i in client.ok("GET", PODS)["items"]]
        assert left == (["web-1"] if orphan else [])


def test_cluster_scoped_admin_policies(client: Client) -> None:
    anp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "guard"},
        "spec": {
            "priority": 10,
            "subject": {"namespaces": {}},
            "ingress": [{"name": "deny", "action": "Deny", "from": [{"namespaces": {}}]}],
        },
    }
    path = "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies"
    created = client.ok("POST", path, anp)
    assert "namespace" not in created["metadata"]
    assert client.ok("GET", f"{path}/guard")["spec"]["priority"] == 10
    anp["spec"]["priority"] = 5000
    anp["metadata"]["name"] = "bad"
    reply = client.call("POST", path, anp)
    assert reply.code == 422
    assert isinstance(reply.body, dict)
    assert reply.body["details"]["causes"][0]["field"] == "spec.priority"
    banp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "other"},
        "spec": {"subject": {"namespaces": {}}},
    }
    bpath = "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies"
    assert client.call("POST", bpath, banp).code == 422  # only "default" is allowed
    banp["metadata"]["name"] = "default"
    client.ok("POST", bpath, banp)


def test_discovery_documents(client: Client) -> None:
    assert client.ok("GET", "/api")["versions"] == ["v1"]
    groups = {g["name"] for g in client.ok("GET", "/apis")["groups"]}
    assert groups == {"apps", "networking.k8s.io", "policy.networking.k8s.io"}
    core = {r["name"]: r for r in client.ok("GET", "/api/v1")["resources"]}
    assert core["pods"]["namespaced"] and not core["namespaces"]["namespaced"]
    assert "watch" in core["pods"]["verbs"] and "pods/status" in core
    anp = client.ok("GET", "/apis/policy.networking.k8s.io/v1alpha1")["resources"]
    assert {r["kind"] for r in anp} == {"AdminNetworkPolicy", "BaselineAdminNetworkPolicy"}
    assert client.call("GET", "/apis/nope/v1").code == 404
    assert client.call("GET", "/api/v1/services").code == 404


def _drain(client: Client, plan: WatchPlan) -> list[tuple[str, str]]:
    watcher = client.api.watcher(plan)
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in watcher.poll()]


def test_watch_from_a_resource_version_replays_events_in_order(client: Client) -> None:
    start = client.api.store.resource_version
    a = client.ok("POST", PODS, pod("a"))
    client.ok("POST", PODS, pod("b"))
    a["metadata"]["labels"] = {"x": "y"}
    client.ok("PUT", f"{PODS}/a", a)
    client.ok("DELETE", f"{PODS}/b")
    events = _drain(client, client.watch(PODS, resourceVersion=str(start)))
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    # without a resourceVersion: the current state first, as ADDED
    assert _drain(client, client.watch(PODS)) == [("ADDED", "a")]


def test_watch_with_selector_sees_objects_enter_and_leave(client: Client) -> None:
    start = client.api.store.resource_version
    a = client.ok("POST", PODS, pod("a", labels={"app": "db"}))
    a["metadata"]["labels"] = {"app": "web"}
    a = client.ok("PUT", f"{PODS}/a", a)
    a["metadata"]["labels"] = {"app": "web", "v": "2"}
    a = client.ok("PUT", f"{PODS}/a", a)
    a["metadata"]["labels"] = {"app": "db"}
    client.ok("PUT", f"{PODS}/a", a)
    plan = client.watch("/api/v1/pods", resourceVersion=str(start), labelSelector="app=web")
    assert _drain(client, plan) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_from_a_compacted_resource_version_gets_410_expired() -> None:
    client = Client(Api(Store(None, event_log_size=3)))
    for i in range(6):
        client.ok("POST", PODS, pod(f"p{i}"))
    watcher = client.api.watcher(client.watch(PODS, resourceVersion="1"))
    events = watcher.poll()
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    assert watcher.done
    recent = client.api.store.resource_version - 2
    assert [e["type"] for e in client.api.watcher(client.watch(PODS, resourceVersion=str(recent))).poll()] == [
        "ADDED",
        "ADDED",
    ]


def test_objects_and_the_counter_survive_reopening_the_store(tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    client = Client(Api(Store(db)))
    client.ok("POST", PODS, pod("a"))
    rv = client.api.store.resource_version
    client.api.store.close()
    reopened = Client(Api(Store(db)))
    assert reopened.ok("GET", f"{PODS}/a")["metadata"]["resourceVersion"] == str(rv)
    created = reopened.ok("POST", PODS, pod("b"))
    assert int(created["metadata"]["resourceVersion"]) == rv + 1
    assert _drain(reopened, reopened.watch(PODS, resourceVersion=str(rv - 1))) == [("ADDED", "a"), ("ADDED", "b")]


def test_two_watchers_see_the_same_order(client: Client) -> None:
    start = str(client.api.store.resource_version)
    for i in range(20):
        client.ok("POST", PODS, pod(f"p{i % 7}-{i}"))
    first = _drain(client, client.watch("/api/v1/pods", resourceVersion=start))
    second = _drain(client, client.watch(PODS, resourceVersion=start))
    assert first == second and len(first) == 20


def test_send_initial_events_ends_the_current_state_with_a_bookmark(client: Client) -> None:
    client.ok("POST", PODS, pod("a"))
    plan = client.watch(PODS, sendInitialEvents="true", resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true")
    events = client.api.watcher(plan).poll()
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    meta = events[1]["object"]["metadata"]
    assert meta["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert meta["resourceVersion"] == str(client.api.store.resource_version)
    bad = client.api.handle("GET", PODS, {"watch": "true", "sendInitialEvents": "true"})
    assert isinstance(bad, Reply) and bad.code == 422


def test_bodies_other_than_json_are_415(client: Client) -> None:
    reply = client.api.handle(
        "POST", "/api/v1/namespaces", {}, b"k8s\x00\x0a\x0f", "application/vnd.kubernetes.protobuf"
    )
    assert isinstance(reply, Reply) and reply.code == 415
    assert isinstance(reply.body, dict) and reply.body["reason"] == "UnsupportedMediaType"
