"""The cluster source's informer logic over a scripted transport: cache, changes, relist after 410."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from podnet.errors import PodnetError
from podnet.k8s.source import Change, NotServed, StaticSource, WatchSource, cluster

Obj = dict[str, Any]


def ns(name: str, rv: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "resourceVersion": str(rv)}}


class Stream:
    def __init__(self, events: queue.Queue[Obj | None]) -> None:
        self.events = events
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Obj]:
        while not self.closed.is_set():
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event is None:
                return
            yield event

    def close(self) -> None:
        self.closed.set()


class Scripted:
    """Namespaces come from ``lists`` (one per list call) and ``watches`` (one queue per watch call)."""

    def __init__(self, lists: list[tuple[list[Obj], str]], not_served: tuple[str, ...] = ()) -> None:
        self.lists = lists
        self.not_served = not_served
        self.watches: queue.Queue[queue.Queue[Obj | None]] = queue.Queue()
        self.watch_calls: list[str] = []
        self.list_calls = 0

    def list(self, kind: str) -> tuple[list[Obj], str]:
        if kind in self.not_served:
            raise NotServed(kind)
        if kind != "Namespace":
            return [], "1"
        self.list_calls += 1
        return self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]

    def watch(self, kind: str, resource_version: str, timeout_seconds: int) -> Stream:
        if kind != "Namespace":
            return Stream(queue.Queue())
        self.watch_calls.append(resource_version)
        try:
            return Stream(self.watches.get(timeout=5))
        except queue.Empty:
            raise PodnetError("no more scripted watches") from None


def take(source: WatchSource | StaticSource, n: int) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for _ in range(n):
        change = source.next_change(timeout=5)
        assert change is not None, f"only {out}"
        out.append((change.type, change.kind, change.name))
    return out


def test_list_then_watch_then_relist_after_410_reports_what_was_missed() -> None:
    transport = Scripted([([ns("a", 1), ns("b", 2)], "2"), ([ns("a", 1), ns("c", 9)], "9")])
    first: queue.Queue[Obj | None] = queue.Queue()
    second: queue.Queue[Obj | None] = queue.Queue()
    transport.watches.put(first)
    transport.watches.put(second)
    source = WatchSource(transport, retry_seconds=0.01)
    source.start()
    try:
        got = take(source, 3)
        assert sorted(got[:2]) == [("ADDED", "Namespace", "a"), ("ADDED", "Namespace", "b")]
        assert got[2] == ("SYNCED", "", "")
        first.put({"type": "MODIFIED", "object": ns("b", 3)})
        first.put({"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}})
        # relist: b is gone (DELETED with its last state), c is new
        assert take(source, 3) == [
            ("MODIFIED", "Namespace", "b"),
            ("DELETED", "Namespace", "b"),
            ("ADDED", "Namespace", "c"),
        ]
        assert transport.watch_calls == ["2", "9"]
        assert source.relists["Namespace"] == 1
        assert [o["metadata"]["name"] for o in source.objects("Namespace")] == ["a", "c"]
        second.put({"type": "DELETED", "object": ns("a", 10)})
        assert take(source, 1) == [("DELETED", "Namespace", "a")]
        assert source.get("Namespace", "", "a") is None
    finally:
        source.close()


def test_watch_resumes_from_the_last_seen_version_when_the_stream_ends() -> None:
    transport = Scripted([([], "5")])
    first: queue.Queue[Obj | None] = queue.Queue()
    transport.watches.put(first)
    transport.watches.put(queue.Queue())
    source = WatchSource(transport, retry_seconds=0.01)
    source.start()
    try:
        assert take(source, 1) == [("SYNCED", "", "")]
        first.put({"type": "ADDED", "object": ns("x", 6)})
        first.put({"type": "BOOKMARK", "object": {"kind": "Namespace", "metadata": {"resourceVersion": "8"}}})
        first.put(None)  # the server ends the watch (timeoutSeconds)
        assert take(source, 1) == [("ADDED", "Namespace", "x")]
        for _ in range(100):
            if len(transport.watch_calls) == 2:
                break
            threading.Event().wait(0.02)
        assert transport.watch_calls == ["5", "8"]
        assert transport.list_calls == 1
    finally:
        source.close()


def test_kinds_the_server_does_not_serve_count_as_empty_and_synced() -> None:
    transport = Scripted([([ns("a", 1)], "1")], not_served=("AdminNetworkPolicy", "BaselineAdminNetworkPolicy"))
    transport.watches.put(queue.Queue())
    source = WatchSource(transport, retry_seconds=0.01)
    source.start()
    try:
        assert take(source, 2) == [("ADDED", "Namespace", "a"), ("SYNCED", "", "")]
        assert source.synced.is_set()
        assert source.objects("AdminNetworkPolicy") == []
    finally:
        source.close()
    assert source.next_change(timeout=1) is None


def test_static_source_and_cluster_skip_invalid_objects() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "a", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
        "status": {"podIPs": [{"ip": "10.0.0.1"}]},
    }
    bad = {**pod, "metadata": {"name": "q", "namespace": "a", "labels": {"-": "x"}}}
    source = StaticSource([ns("a", 1), pod, bad])
    source.start()
    assert take(source, 4)[-1] == ("SYNCED", "", "")
    built = cluster(source)
    assert [p.ref for p in built.pods] == ["a/p"]
    assert str(built.pods[0].ips[0]) == "10.0.0.1"
    assert any("ignoring invalid object" in w and "metadata.labels" in w for w in built.warnings)
    source.push("DELETED", pod)
    change = source.next_change(timeout=1)
    assert change == Change("DELETED", "Pod", "a", "p", resource_version="")
