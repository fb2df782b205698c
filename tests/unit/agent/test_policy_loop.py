"""The policy loop's incremental syncs leave the kernel exactly as a fresh agent's full sync would.

The datapath here is an in-memory model of the kernel maps (endpoint entries, ipcache, per-endpoint
policy images); the cluster source is a :class:`StaticSource`. No root, no kernel.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podnet.agent.endpoints import Endpoint, EndpointRegistry
from podnet.agent.policy import PolicyLoop
from podnet.datapath.ebpf.audit import Audit
from podnet.datapath.ebpf.events import DatapathEvent
from podnet.flows.collector import FlowCollector
from podnet.flows.store import FlowStore
from podnet.k8s.source import StaticSource
from podnet.policy.identity import IdentityTable
from podnet.policy.mapimage import MapImage
from tests.unit.policy.test_incremental import change_sequences

Obj = dict[str, Any]


class MemoryDatapath:
    """The kernel state a :class:`PolicyDatapath` keeps, in dicts; counts the writes."""

    def __init__(self) -> None:
        self.links: dict[str, int] = {}  # host veth → ifindex (a re-created link gets a new one)
        self.endpoints: dict[int, tuple[str, str, int, tuple[str, ...]]] = {}
        self.images: dict[int, MapImage] = {}
        self.audits: dict[int, frozenset[str]] = {}  # the audit-mode policies each image was written with
        self.ipcache: dict[object, int] = {}
        self.writes = {"attach": 0, "image": 0, "ipcache": 0, "detach": 0}
        self._next = 10

    def link(self, host_veth: str) -> int:
        self._next += 1
        self.links[host_veth] = self._next
        return self._next

    def ensure_loaded(self) -> None:
        pass

    def sync_identities(self, identities: IdentityTable) -> object:
        self.writes["ipcache"] += 1
        self.ipcache = {**identities.address_identity, **identities.cidr_identity}
        return None

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int:
        self.writes["attach"] += 1
        ifindex = self.links.get(host_veth) or self.link(host_veth)
        self.endpoints[ifindex] = (host_veth, mac, identity, tuple(addresses))
        return ifindex

    def apply_pod_image(self, ifindex: int, image: MapImage, audit: Audit | None = None) -> object:
        self.writes["image"] += 1
        assert ifindex in self.endpoints
        self.images[ifindex] = dict(image)
        self.audits[ifindex] = audit.policies if audit is not None else frozenset()
        return None

    def attached(self) -> set[int]:
        return set(self.endpoints)

    def detach_pod(self, ifindex: int) -> object:
        self.writes["detach"] += 1
        self.endpoints.pop(ifindex, None)
        self.images.pop(ifindex, None)
        return None

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        return iter(())

    def counters(self) -> dict[str, int]:
        return {}

    def state(self) -> tuple[object, ...]:
        """The kernel state by veth (ifindexes differ between two datapaths)."""
        eps = {v[0]: v[1:] for v in self.endpoints.values()}
        imgs = {self.endpoints[i][0]: img for i, img in self.images.items()}
        return eps, imgs, self.ipcache


def _endpoint(pod: Obj, n: int) -> Endpoint:
    meta = pod["metadata"]
    address = ipaddress.ip_address(f"10.9.0.{n}")
    mac = f"0e:00:00:00:00:{n:02x}"
    ns = meta.get("namespace", "default")
    return Endpoint(f"c{n}", "eth0", f"/run/netns/p{n}", "podnet", f"pn{n}", (address,), mac, 1500, ns, meta["name"], n)


def _drain(loop: PolicyLoop, source: StaticSource) -> None:
    while (change := source.next_change(timeout=0)) is not None:
        loop.take(change)


def _fresh_state(loop: PolicyLoop, source: StaticSource, registry: EndpointRegistry) -> tuple[object, ...]:
    """What a newly started agent writes for the same objects and endpoints (same identity numbers)."""
    fresh_source = StaticSource([o for kind in ("Namespace", "Pod", "NetworkPolicy",
                                                "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")
                                 for o in source.objects(kind)])  # fmt: skip
    fresh_dp = MemoryDatapath()
    fresh = PolicyLoop(fresh_source, registry, fresh_dp)
    fresh.compiler.allocator = loop.compiler.allocator.copy()
    fresh_source.start()
    _drain(fresh, fresh_source)
    assert fresh.ready and fresh.sync_once(), fresh.last_error
    return fresh_dp.state()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(change_sequences(), st.data())
def test_incremental_syncs_leave_the_kernel_as_a_full_sync_would(
    case: tuple[list[Obj], list[tuple[str, Obj]]], data: st.DataObject
) -> None:
    docs, steps = case
    source = StaticSource(docs)
    registry = EndpointRegistry(None)
    dp = MemoryDatapath()
    loop = PolicyLoop(source, registry, dp)
    source.start()
    pods = [d for d in docs if d["kind"] == "Pod"]
    for n, pod in enumerate(pods):
        if data.draw(st.booleans()):
            registry.put(_endpoint(pod, n))
    _drain(loop, source)
    assert loop.sync_once(), loop.last_error
    assert dp.state() == _fresh_state(loop, source, registry)
    for i, (type_, obj) in enumerate(steps):
        source.push(type_, obj)  # type: ignore[arg-type]
        if type_ == "ADDED" and obj["kind"] == "Pod" and data.draw(st.booleans()):
            registry.put(_endpoint(obj, 100 + i))  # CNI ADD of the new pod
        if data.draw(st.booleans()) and registry.all():  # CNI DEL of some pod (its link goes with it)
            gone = data.draw(st.sampled_from(sorted(registry.all(), key=lambda e: e.host_veth)))
            registry.remove(gone.owner)
            dp.links.pop(gone.host_veth, None)
        _drain(loop, source)
        assert loop.sync_once(), loop.last_error
        assert dp.state() == _fresh_state(loop, source, registry)


def _pod(name: str, labels: dict[str, str], ip: str | None = None) -> Obj:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "web", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    if ip:
        obj["status"] = {"podIP": ip}
    return obj


def _synced_with_web_0(objects: list[Obj]) -> tuple[StaticSource, EndpointRegistry, MemoryDatapath, PolicyLoop]:
    """A loop over ``objects`` and pod web-0 (app=web, 10.9.0.1, its endpoint registered), synced once."""
    source = StaticSource([*objects, _pod("web-0", {"app": "web"}, "10.9.0.1")])
    registry = EndpointRegistry(None)
    dp = MemoryDatapath()
    loop = PolicyLoop(source, registry, dp)
    source.start()
    registry.put(_endpoint(_pod("web-0", {}), 1))
    _drain(loop, source)
    assert loop.sync_once()
    return source, registry, dp, loop


def test_a_scale_up_writes_only_the_new_endpoints_and_the_ipcache() -> None:
    ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}
    policy: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "web"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]},
    }
    source, registry, dp, loop = _synced_with_web_0([ns, policy])
    assert dp.writes == {"attach": 1, "image": 1, "ipcache": 1, "detach": 0}
    for n in range(2, 12):
        source.push("ADDED", _pod(f"web-{n}", {"app": "web"}, f"10.9.0.{n}"))
        registry.put(_endpoint(_pod(f"web-{n}", {}), n))
        _drain(loop, source)
        assert loop.sync_once()
    assert loop.compiler.compiles == 1  # one label set: compiled once
    assert dp.writes == {"attach": 11, "image": 11, "ipcache": 11, "detach": 0}
    assert loop.sync_once()  # nothing changed: nothing written
    assert dp.writes == {"attach": 11, "image": 11, "ipcache": 11, "detach": 0}
    assert dp.state() == _fresh_state(loop, source, registry)


def test_after_a_failed_sync_everything_is_written_again() -> None:
    source, registry, dp, loop = _synced_with_web_0([])

    def broken(*_a: object) -> object:
        raise OSError("injected")

    dp.apply_pod_image = broken  # type: ignore[method-assign]
    registry.put(_endpoint(_pod("web-0", {}), 2))  # the pod re-created: a new container
    registry.remove(_endpoint(_pod("web-0", {}), 1).owner)
    assert not loop.sync_once() and loop.last_error == "injected"
    del dp.apply_pod_image
    dp.images.clear()  # what the kernel holds is unknown after the failure
    assert loop.sync_once()
    assert dp.state() == _fresh_state(loop, source, registry)


def test_a_crash_in_the_update_starts_over_from_nothing() -> None:
    source, registry, dp, loop = _synced_with_web_0([])

    def crash(*_a: object) -> object:
        raise KeyError("a bug")

    broken = loop.compiler
    broken.update = crash  # type: ignore[method-assign]
    source.push("ADDED", _pod("web-1", {"app": "other"}, "10.9.0.2"))
    _drain(loop, source)
    assert not loop.sync_once() and loop.last_error == "KeyError: 'a bug'"
    assert loop.compiler is not broken  # a fresh compiler: the next sync compiles everything
    assert loop.sync_once()
    assert loop.compiler.compiles == 1
    assert dp.state() == _fresh_state(loop, source, registry)


def _event(port: int) -> DatapathEvent:
    a, b = ipaddress.ip_address("10.9.0.1"), ipaddress.ip_address("10.9.0.2")
    return DatapathEvent(1, "drop", "DROPPED", 133, "denied", 7, 1, 2, "ingress", 17, a, b, 1, port, 0, 1, 0, None)


class QuietSource(StaticSource):
    """A cluster source with no changes that records how long the loop waits for one."""

    def __init__(self) -> None:
        super().__init__([])
        self.waits: list[float | None] = []

    def next_change(self, timeout: float | None = None) -> Any:
        self.waits.append(timeout)
        if timeout:
            time.sleep(timeout)
        return None


class EventsDatapath(MemoryDatapath):
    def __init__(self, events: list[DatapathEvent]) -> None:
        super().__init__()
        self.pending = events

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        while self.pending:
            yield self.pending.pop(0)

    def counters(self) -> dict[str, int]:
        return {"events_lost": 0}


def test_the_loop_drains_again_without_waiting_while_events_are_left(monkeypatch: Any) -> None:
    import podnet.flows.collector as collector_mod

    monkeypatch.setattr(collector_mod, "MAX_EVENTS_PER_TICK", 3)
    source = QuietSource()
    dp = EventsDatapath([_event(port) for port in range(10)])
    flows = FlowCollector("n1", FlowStore(100))
    loop = PolicyLoop(source, EndpointRegistry(None), dp, flows)
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while flows.events < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.close()
    assert flows.events == 10 and [f.destination_port for f in flows.store.query()[0]] == list(range(10))
    # three full drains of 3 look for changes without waiting; the last (1 event) waits as usual
    assert source.waits[:4] == [0.0, 0.0, 0.0, 0.1]


def test_audit_mode_from_a_policy_or_its_namespace_reaches_the_datapath() -> None:
    """podnet.io/audit on a NetworkPolicy, or on its Namespace, makes the loop write the pod's image with
    those policies in audit mode (the datapath then lets their would-be drops pass as AUDIT); taking the
    annotation off writes the image again, enforcing."""
    ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}
    policy: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "isolate", "namespace": "web"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    source, _registry, dp, loop = _synced_with_web_0([ns, policy])
    (ifindex,) = dp.endpoints
    assert dp.audits[ifindex] == frozenset()
    writes = dp.writes["image"]
    annotated = {**ns, "metadata": {**ns["metadata"], "annotations": {"podnet.io/audit": "true"}}}
    source.push("MODIFIED", annotated)
    _drain(loop, source)
    assert loop.sync_once(), loop.last_error
    assert dp.audits[ifindex] == frozenset({"web/isolate"}) and dp.writes["image"] == writes + 1
    source.push("MODIFIED", ns)
    source.push("MODIFIED", {**policy, "metadata": {**policy["metadata"], "annotations": {"podnet.io/audit": "true"}}})
    _drain(loop, source)
    assert loop.sync_once(), loop.last_error
    assert dp.audits[ifindex] == frozenset({"web/isolate"})
    source.push("MODIFIED", policy)
    _drain(loop, source)
    assert loop.sync_once(), loop.last_error
    assert dp.audits[ifindex] == frozenset() and dp.writes["image"] > writes + 1
