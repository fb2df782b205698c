from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from podnet.datapath.ebpf.events import DatapathEvent
from podnet.flows.collector import FlowCollector
from podnet.flows.decoder import Enricher, decode
from podnet.flows.metrics import FlowMetrics
from podnet.flows.model import RuleName
from podnet.flows.store import FlowStore
from podnet.k8s.model import Cluster, Namespace, Pod
from podnet.policy.compiler import RuleRef, compile_cluster

A = ipaddress.ip_address


def cluster() -> Cluster:
    return Cluster(
        namespaces={"web": Namespace("web", {}), "api": Namespace("api", {})},
        pods=[
            Pod("web", "frontend-0", {"app": "frontend"}, ips=(A("10.246.0.2"),), owner="frontend"),
            Pod("api", "backend-0", {"app": "backend"}, ips=(A("10.246.1.3"),)),
        ],
    )


def enricher() -> tuple[Enricher, dict[str, int]]:
    c = cluster()
    ids = compile_cluster(c).identities
    local = [("api", "late-0", (A("10.246.1.9"),))]  # in the registry, not yet known to the API server
    by_pod = {f"{ns}/{name}": i for (ns, name, _), i in ids.pod_identity.items()}
    return Enricher.build(c.pods, ids, local), by_pod


def event(**kw: Any) -> DatapathEvent:
    base: dict[str, Any] = {
        "time_ns": 5_000_000_123,
        "type": "policy-verdict",
        "verdict": "FORWARDED",
        "drop_reason": 0,
        "drop_reason_desc": "",
        "endpoint": 7,
        "identity": 0,
        "peer_identity": 0,
        "direction": "ingress",
        "protocol": 6,
        "source": A("10.246.0.2"),
        "destination": A("10.246.1.3"),
        "sport": 43210,
        "dport": 9000,
        "tcp_flags": 0x02,
        "count": 1,
        "rule_id": 3,
        "rule": RuleRef("NetworkPolicy", "backend", "ingress", 0, "api"),
    }
    base.update(kw)
    return DatapathEvent(**base)


def test_allowed_connection_is_enriched_and_names_its_rule() -> None:
    enr, ids = enricher()
    ev = event(identity=ids["api/backend-0"], peer_identity=ids["web/frontend-0"])
    f = decode(ev, enr, "node-1", offset_ns=1_000)
    assert f.time_ns == 5_000_001_123 and f.node_name == "node-1"
    assert f.verdict == "FORWARDED" and f.type == "policy-verdict" and f.traffic_direction == "INGRESS"
    assert (f.source.namespace, f.source.pod_name, f.source.identity) == ("web", "frontend-0", ids["web/frontend-0"])
    assert (f.destination.pod_name, f.destination.identity) == ("backend-0", ids["api/backend-0"])
    assert "k8s:app=frontend" in f.source.labels and f.source.workloads[0].name == "frontend"
    assert f.protocol == "TCP" and f.tcp_flags == ("SYN",) and (f.source_port, f.destination_port) == (43210, 9000)
    assert f.allowed_by == (RuleName("NetworkPolicy", "backend", "ingress", 0, "api"),) and f.denied_by == ()


def test_egress_drop_names_the_isolation_and_reason() -> None:
    enr, ids = enricher()
    rule = RuleRef("isolation", "", "egress", -1, None, isolated_by=("web/deny-all", "web/other"))
    ev = event(
        type="drop", verdict="DROPPED", drop_reason=133, drop_reason_desc="policy denied", direction="egress",
        identity=ids["web/frontend-0"], peer_identity=2, destination=A("192.0.2.1"), dport=443, count=5, rule=rule,
    )  # fmt: skip
    f = decode(ev, enr, "n", 0)
    assert f.verdict == "DROPPED" and f.drop_reason_desc == "POLICY_DENIED" and f.count == 5
    assert f.traffic_direction == "EGRESS" and f.source.pod_name == "frontend-0"
    assert f.destination.pod_name == "" and f.destination.identity == 2 and f.destination.labels == ("reserved:world",)
    assert f.denied_by == (RuleName("isolation", "deny-all", "egress", None, "web", ("web/deny-all", "web/other")),)
    assert str(f.denied_by[0]) == "default deny (egress isolated by NetworkPolicy web/deny-all, web/other)"


def test_unknown_pod_comes_from_the_registry_and_udp_has_no_flags() -> None:
    enr, _ = enricher()
    f = decode(event(protocol=17, tcp_flags=0x12, destination=A("10.246.1.9"), identity=77, rule=None), enr, "n", 0)
    assert (f.destination.namespace, f.destination.pod_name, f.destination.identity) == ("api", "late-0", 77)
    assert f.protocol == "UDP" and f.tcp_flags == () and f.allowed_by == () and f.summary == "UDP"


class FakeEvents:
    def __init__(self, events: list[DatapathEvent]) -> None:
        self.pending = events
        self.lost = 2

    def events(self, timeout: float = 0.0) -> Any:
        while self.pending:
            yield self.pending.pop(0)

    def counters(self) -> dict[str, int]:
        return {"events_lost": self.lost}


def test_collector_feeds_store_and_metrics() -> None:
    c = cluster()
    ids = compile_cluster(c).identities
    metrics = FlowMetrics()
    col = FlowCollector("n1", FlowStore(10), None, metrics)
    col.synced(c.pods, ids, [], policy_entries=12, endpoints=2)
    src = FakeEvents([event(), event(type="drop", verdict="DROPPED", drop_reason=133, count=3)])
    assert col.drain(src) == 2 and col.drain(src) == 0
    flows, _ = col.store.query()
    assert [f.verdict for f in flows] == ["FORWARDED", "DROPPED"]
    assert flows[0].source.pod_name == "frontend-0"
    assert metrics.registry.get_sample_value("podnet_drop_total", {"reason": "POLICY_DENIED"}) == 3
    assert metrics.registry.get_sample_value("podnet_events_lost_total") == 2
    assert metrics.registry.get_sample_value("podnet_policy_map_entries") == 12


def test_audit_verdict_names_the_rule_that_would_have_denied() -> None:
    enr, _ = enricher()
    rule = RuleRef("isolation", "", "ingress", -1, None, isolated_by=("api/backend",))
    f = decode(event(verdict="AUDIT", rule=rule), enr, "n", 0)
    assert f.verdict == "AUDIT" and f.type == "policy-verdict" and f.allowed_by == ()
    assert f.denied_by == (RuleName("isolation", "backend", "ingress", None, "api", ("api/backend",)),)
    from podnet.flows.printer import compact

    assert "policy-verdict:L3-L4 INGRESS AUDIT (TCP Flags: SYN) by default deny" in compact(f)


def test_the_node_itself_is_reserved_host_and_its_rule_is_named() -> None:
    c = cluster()
    ids = compile_cluster(c, host_addresses=(A("172.30.0.1"),)).identities
    enr = Enricher.build(c.pods, ids, [])
    backend = ids.pod_identity[("api", "backend-0", "Pod")]
    host_rule = RuleRef("host", "", "ingress", -1)
    ev = event(identity=backend, peer_identity=1, source=A("172.30.0.1"), rule=host_rule)
    f = decode(ev, enr, "n", 0)
    assert f.verdict == "FORWARDED" and f.destination.pod_name == "backend-0"
    assert f.source.identity == 1 and f.source.labels == ("reserved:host",) and f.source.pod_name == ""
    assert f.allowed_by == (RuleName("host", "", "ingress", -1, ""),)


def test_enrichment_is_cached_per_side_and_a_sync_brings_the_new_pods() -> None:
    c = cluster()
    ids = compile_cluster(c).identities
    col = FlowCollector("n1", FlowStore(10))
    col.synced(c.pods, ids, [], policy_entries=0, endpoints=0)
    late = A("10.246.1.9")
    src = FakeEvents([event(source=late), event(source=late, sport=1)])
    col.drain(src)
    flows, _ = col.store.query()
    assert [f.source.pod_name for f in flows] == ["", ""] and flows[0].source is flows[1].source
    assert flows[0].ip_source == "10.246.1.9" and flows[0].source.labels == ("reserved:world",)
    # the pod appears (a sync): the next flows from that address name it
    c.pods.append(Pod("api", "late-0", {"app": "late"}, ips=(late,)))
    ids = compile_cluster(c).identities
    col.synced(c.pods, ids, [], policy_entries=0, endpoints=0)
    col.drain(FakeEvents([event(source=late)]))
    flows, _ = col.store.query()
    assert flows[-1].source.pod_name == "late-0" and flows[-1].source.namespace == "api"


def test_the_side_cache_is_bounded(monkeypatch: Any) -> None:
    import podnet.flows.decoder as decoder_mod

    monkeypatch.setattr(decoder_mod, "SIDE_CACHE_SIZE", 4)
    enr, _ = enricher()
    for i in range(10):
        text, ep = enr.side(A(f"192.0.2.{i}"), 2)
        assert text == f"192.0.2.{i}" and ep.labels == ("reserved:world",)
        assert len(enr._sides) <= 4
    assert enr.side(None, 5) == ("", enr.endpoint(None, 5))


def test_collector_drains_at_most_a_tick_of_events_at_once(monkeypatch: Any) -> None:
    import podnet.flows.collector as collector_mod

    monkeypatch.setattr(collector_mod, "MAX_EVENTS_PER_TICK", 3)
    col = FlowCollector("n1", FlowStore(10))
    src = FakeEvents([event(sport=i) for i in range(5)])
    assert col.drain(src) == 3 and col.backlog  # the agent's loop then drains again without waiting
    assert col.drain(src) == 2 and not col.backlog and col.drain(src) == 0
    assert [f.source_port for f in col.store.query()[0]] == [0, 1, 2, 3, 4]


def test_a_failing_export_file_costs_the_flows_only_the_file(tmp_path: Any) -> None:
    from podnet.flows.export import JsonlExporter

    class FullDisk(JsonlExporter):
        def write_all(self, flows: Any) -> None:
            raise OSError(28, "No space left on device")

    metrics = FlowMetrics()
    col = FlowCollector("n1", FlowStore(10), FullDisk(tmp_path / "f.jsonl"), metrics)
    with pytest.raises(OSError, match="No space"):  # reaches the loop, which logs it
        col.drain(FakeEvents([event(), event(sport=2)]))
    assert len(col.store) == 2
    assert (
        metrics.registry.get_sample_value(
            "podnet_flows_processed_total", {"verdict": "FORWARDED", "type": "policy-verdict", "direction": "INGRESS"}
        )
        == 2
    )
