"""The agent's cluster source (official client, list + watch) against the lab API server process."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from podnet.k8s.source import Change, WatchSource
from podnet.kube.client import KubeTransport, api_client
from podnet.lab.apiserver.api import Api
from podnet.lab.apiserver.app import DB_FILE
from podnet.lab.apiserver.store import Store
from tests.e2e.labserver import start


def _pod(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def _until(source: WatchSource, predicate: str, limit: int = 50) -> list[Change]:
    """Changes up to and including the first whose (type, kind, name) text contains ``predicate``."""
    seen: list[Change] = []
    for _ in range(limit):
        change = source.next_change(timeout=15)
        assert change is not None, f"timed out waiting for {predicate!r}; saw {seen}; errors {source.errors}"
        seen.append(change)
        if predicate in f"{change.type} {change.kind} {change.name}":
            return seen
    raise AssertionError(f"no {predicate!r} in {seen}")


def test_source_follows_every_kind_and_relists_after_missing_compacted_events(tmp_path: Path) -> None:
    srv = start(tmp_path, "--event-log-size", "4")
    source = WatchSource(KubeTransport.from_kubeconfig(srv.kubeconfig), watch_timeout=30, retry_seconds=0.5)
    try:
        v1 = client.CoreV1Api(api_client(srv.kubeconfig))
        v1.create_namespace({"metadata": {"name": "shop"}})
        v1.create_namespaced_pod("shop", _pod("web", {"app": "web"}))
        v1.create_namespaced_pod("shop", _pod("db", {"app": "db"}))
        source.start()
        initial = _until(source, "SYNCED")
        assert {(c.kind, c.name) for c in initial if c.type == "ADDED"} == {
            ("Namespace", "default"),
            ("Namespace", "shop"),
            ("Pod", "web"),
            ("Pod", "db"),
        }
        netpol = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny"},
            "spec": {"podSelector": {}},
        }
        client.NetworkingV1Api(api_client(srv.kubeconfig)).create_namespaced_network_policy("shop", netpol)
        change = _until(source, "ADDED NetworkPolicy deny")[-1]
        assert change.namespace == "shop" and change.obj["spec"]["policyTypes"] == ["Ingress"]

        # The server goes away; meanwhile more changes than its event log holds happen.
        srv.stop()
        store = Store(tmp_path / DB_FILE, event_log_size=4)
        api = Api(store)
        from podnet.lab.apiserver.resources import BY_KIND

        api.delete(BY_KIND["Pod"], "shop", "db")
        for i in range(5):
            api.create(BY_KIND["Pod"], "shop", _pod(f"new{i}", {"app": "new"}))
        store.close()
        url = srv.url
        srv = start(tmp_path, "--event-log-size", "4")
        assert srv.url == url  # the previous port again, so clients keep working

        after = _until(source, "ADDED Pod new4")
        assert ("DELETED", "Pod", "db") in [(c.type, c.kind, c.name) for c in after]
        assert source.relists["Pod"] >= 1
        assert sorted(o["metadata"]["name"] for o in source.objects("Pod")) == [
            "new0",
            "new1",
            "new2",
            "new3",
            "new4",
            "web",
        ]
    finally:
        source.close()
        srv.stop()
