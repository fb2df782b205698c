"""The service map: nodes and edges from flows, counted per verdict, with the rules that decided."""

from __future__ import annotations

from podnet.flows.export import read_jsonl
from podnet.flows.model import FlowEndpoint, RuleName
from podnet.flows.servicemap import ServiceMap, node_of
from tests.unit.analyzer.conftest import REPO
from tests.unit.flows.helpers import ALLOW, DENY, FRONTEND, flow, pod, sample


def test_nodes_are_namespaces_workloads_and_special_peers() -> None:
    world = FlowEndpoint(2, labels=("reserved:world",))
    host = FlowEndpoint(1, labels=("reserved:host",))
    cidr = FlowEndpoint(16777217, labels=("cidr:203.0.113.0/24", "reserved:world"))
    bare = FlowEndpoint(0, "ns", "lonely-pod")
    assert node_of(FRONTEND) == ("web/frontend", "workload", "frontend", "web")  # the endpoint's workload
    assert node_of(bare) == ("ns/lonely-pod", "workload", "lonely-pod", "ns")  # no workload: the pod
    assert node_of(world)[:2] == node_of(cidr)[:2] == ("world", "world")
    assert node_of(host)[:2] == ("host", "host")
    assert node_of(FlowEndpoint())[:2] == ("unknown", "unknown")


def test_edges_count_flows_per_verdict_with_the_deciding_rules() -> None:
    smap = ServiceMap(sample())
    doc = smap.to_json()
    assert doc["flows"] == 6
    assert [n["id"] for n in doc["nodes"]] == [
        "namespace:api", "namespace:data", "namespace:web", "api/backend", "data/postgres", "web/frontend",
    ]  # fmt: skip
    backend = next(n for n in doc["nodes"] if n["id"] == "api/backend")
    assert backend == {
        "id": "api/backend",
        "kind": "workload",
        "name": "backend",
        "namespace": "api",
        "parent": "namespace:api",
        "pods": ["backend-0"],
        "labels": {"app": "backend"},
    }
    edges = {e["id"]: e for e in doc["edges"]}
    assert sorted(edges) == [
        "web/frontend->api/backend:TCP/9000",
        "web/frontend->api/backend:UDP/53",
        "web/frontend->data/postgres:TCP/5432",
    ]
    allowed = edges["web/frontend->api/backend:TCP/9000"]
    assert allowed["verdict"] == "FORWARDED" and allowed["verdicts"] == {"FORWARDED": 3, "DROPPED": 0, "AUDIT": 0}
    assert allowed["allowed_by"] == [{"rule": ALLOW.to_json(), "text": str(ALLOW), "flows": 3}]
    assert allowed["denied_by"] == [] and allowed["source"] == "web/frontend" and allowed["target"] == "api/backend"
    drop = edges["web/frontend->data/postgres:TCP/5432"]
    assert drop["verdict"] == "DROPPED" and drop["flows"] == 2
    assert drop["drop_reasons"] == {"POLICY_DENIED": 5}  # packets: 1 + an aggregated record of 4
    assert drop["denied_by"] == [{"rule": DENY.to_json(), "text": str(DENY), "flows": 2}]
    assert drop["first_seen"] < drop["last_seen"] and drop["first_seen"].endswith("Z")


def test_updates_are_incremental_and_say_what_changed() -> None:
    smap = ServiceMap()
    first = smap.add(flow(0))
    assert [n.id for n in first.nodes] == ["namespace:web", "web/frontend", "namespace:api", "api/backend"]
    assert first.edge_new and first.edge.verdict == "FORWARDED"
    again = smap.add(flow(1))
    assert again.nodes == () and not again.edge_new and again.edge.verdicts["FORWARDED"] == 2
    audit = RuleName("NetworkPolicy", "backend", "ingress", None, "api")
    mixed = smap.add(flow(2, verdict="AUDIT", allowed_by=(), denied_by=(audit,)))
    assert mixed.edge is again.edge and mixed.edge.verdict == "MIXED"
    assert mixed.to_json()["edge"]["denied_by"][0]["rule"] == audit.to_json()
    # A second replica with other per-pod labels: the workload keeps the labels both share.
    other = pod("api", "backend-1", 300, app="backend", version="2")
    grown = smap.add(flow(3, destination=other))
    assert grown.nodes == ()
    assert smap.nodes["api/backend"].pods == {"backend-0", "backend-1"}
    assert smap.nodes["api/backend"].labels == {"app": "backend"}
    # The snapshot after the stream equals the map built at once.
    assert smap.to_json() == ServiceMap([flow(0), flow(1), flow(2, verdict="AUDIT", allowed_by=(), denied_by=(audit,)),
                                         flow(3, destination=other)]).to_json()  # fmt: skip


def test_outside_addresses_meet_in_the_world_node() -> None:
    world = FlowEndpoint(2, labels=("reserved:world",))
    smap = ServiceMap(
        [
            flow(i, destination=world, ip_destination=f"198.51.100.{i}", destination_port=443, allowed_by=())
            for i in range(20)
        ]
    )
    node = smap.nodes["world"]
    assert node.kind == "world" and len(node.addresses) == 16  # bounded
    assert list(smap.edges) == ["web/frontend->world:TCP/443"]


def test_the_recorded_shop() -> None:
    with open(REPO / "examples" / "flows" / "shop.jsonl", encoding="utf-8") as fh:
        smap = ServiceMap(read_jsonl(fh))
    edges = smap.to_json()["edges"]
    by_id = {e["id"]: e for e in edges}
    scrape = by_id["monitoring/prometheus->api/backend:TCP/9090"]
    assert scrape["verdict"] == "MIXED" and scrape["verdicts"]["DROPPED"] == 1  # egress passed, ingress dropped
    assert scrape["denied_by"][0]["rule"]["isolated_by"] == ["api/backend"]
    assert by_id["web/frontend->data/postgres:TCP/5432"]["verdict"] == "DROPPED"
    assert {n["kind"] for n in smap.to_json()["nodes"]} == {"namespace", "workload"}
