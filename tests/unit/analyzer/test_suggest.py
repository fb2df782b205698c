"""``podnet policy suggest``: policies that allow exactly the observed forwarded connections.

The suggestion is judged by the project's own parser and analyzer, independently of the check the command
runs itself: every observed forwarded connection must be allowed, every other pair denied.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.analyzer.endpoints import Resolver
from podnet.analyzer.suggest import Suggestion, WorkloadKey, stable_labels, suggest
from podnet.analyzer.suggest_check import check, to_yaml, world_documents
from podnet.analyzer.verdict import answer
from podnet.flows.model import Flow, FlowEndpoint, Workload, to_line
from podnet.k8s.manifests import load_documents, parse_text
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import compile_cluster
from tests.unit.analyzer.conftest import REPO, Podnet

SHOP_FLOWS = REPO / "examples" / "flows" / "shop.jsonl"
T0 = 1_795_000_000_000_000_000


@dataclass(frozen=True)
class P:
    """A pod of the generated world."""

    namespace: str
    workload: str
    pod: str
    ip: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.pod}"

    def endpoint(self, extra: dict[str, str] | None = None) -> FlowEndpoint:
        labels = {"app": self.workload, "pod-template-hash": f"h{self.pod[-1]}", **(extra or {})}
        text = (
            *(f"k8s:{k}={v}" for k, v in sorted(labels.items())),
            f"k8s:io.kubernetes.pod.namespace={self.namespace}",
        )
        return FlowEndpoint(100 + int(self.ip.rsplit(".", 1)[1]), self.namespace, self.pod, text,
                            (Workload(self.workload, "Deployment"),))  # fmt: skip


def world_ep(ip: str) -> FlowEndpoint:
    return FlowEndpoint(2, labels=("reserved:world",))


def flow(i: int, src: P | str, dst: P | str, proto: str, port: int, verdict: str, direction: str) -> Flow:
    return Flow(
        time_ns=T0 + i * 1000,
        verdict=verdict,  # type: ignore[arg-type]
        type="policy-verdict" if verdict != "DROPPED" else "drop",
        node_name="n0",
        traffic_direction=direction,  # type: ignore[arg-type]
        ip_source=src.ip if isinstance(src, P) else src,
        ip_destination=dst.ip if isinstance(dst, P) else dst,
        ip_version=4,
        protocol=proto,
        source_port=30000 + i,
        destination_port=port,
        tcp_flags=("SYN",) if proto == "TCP" else (),
        source=src.endpoint() if isinstance(src, P) else world_ep(src),
        destination=dst.endpoint() if isinstance(dst, P) else world_ep(dst),
        drop_reason_desc="POLICY_DENIED" if verdict == "DROPPED" else "",
    )


def connection_flows(i: int, src: P | str, dst: P | str, proto: str, port: int, dropped: bool = False) -> list[Flow]:
    """The flows of one connection as the kernel reports them: one per pod side."""
    out = []
    if isinstance(src, P):
        out.append(flow(i, src, dst, proto, port, "FORWARDED", "EGRESS"))
    if isinstance(dst, P):
        out.append(flow(i, src, dst, proto, port, "DROPPED" if dropped else "FORWARDED", "INGRESS"))
    return out


Verdicts = dict[tuple[str, str, str, int], bool]


def verdicts(result: Suggestion, ends: list[P | str], ports: list[tuple[str, int]]) -> Verdicts:
    """The analyzer's verdict for every pair of ``ends`` on every port, under the suggested YAML alone."""
    docs = world_documents(result) + parse_text(to_yaml(result.policies), "suggested.yaml")
    resolver = Resolver(compile_cluster(build_cluster(docs)))
    out = {}
    for src, dst in itertools.product(ends, ends):
        if src == dst or (not isinstance(src, P) and not isinstance(dst, P)):
            continue
        for proto, port in ports:
            s = src.ref if isinstance(src, P) else f"ip:{src}"
            d = dst.ref if isinstance(dst, P) else f"ip:{dst}"
            out[(s, d, proto, port)] = answer(resolver, s, d, proto, port).verdict.allowed  # type: ignore[arg-type]
    return out


NAMESPACES = ["a", "b", "c"]
PORTS = [("TCP", 80), ("TCP", 443), ("UDP", 53), ("SCTP", 9000)]
OUTSIDE = ["198.51.100.7", "203.0.113.9"]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[P], list[tuple[int, int, int, bool]]]:
    """Pods of distinct workloads (one or two replicas) and connections between them and outside addresses."""
    n_workloads = draw(st.integers(2, 5))
    pods: list[P] = []
    for w in range(n_workloads):
        ns = draw(st.sampled_from(NAMESPACES))
        for r in range(draw(st.integers(1, 2))):
            pods.append(P(ns, f"wl{w}", f"wl{w}-{r}", f"10.0.{w}.{r + 1}"))
    ends = len(pods) + len(OUTSIDE)
    pair = st.tuples(st.integers(0, ends - 1), st.integers(0, ends - 1), st.integers(0, len(PORTS) - 1), st.booleans())
    conns = [c for c in draw(st.lists(pair, max_size=12)) if c[0] != c[1] and (c[0] < len(pods) or c[1] < len(pods))]
    return pods, conns


@settings(max_examples=100, deadline=None)
@given(worlds(), st.sampled_from([None, *NAMESPACES]))
def test_the_analyzer_allows_exactly_the_observed_forwarded_connections(
    world: tuple[list[P], list[Any]], namespace: str | None
) -> None:
    """With policies for every namespace, or for one (``--namespace``): every pair with a side in scope is
    allowed exactly when it was observed (replicas of a workload stand for each other)."""
    pods, conns = world
    ends: list[P | str] = [*pods, *OUTSIDE]
    flows: list[Flow] = []
    allowed: set[tuple[str, str, str, int]] = set()  # at workload level: replicas are one workload
    for i, (s, d, p, drop) in enumerate(conns):
        src, dst = ends[s], ends[d]
        proto, port = PORTS[p]
        dropped = drop and isinstance(dst, P)
        flows += connection_flows(i, src, dst, proto, port, dropped)
        if not dropped:
            allowed.add((_wl(src), _wl(dst), proto, port))
    result = suggest(flows, namespace)
    assert not result.warnings  # distinct app labels: no selector selects another workload
    assert all(namespace in (None, p["metadata"]["namespace"]) for p in result.policies)
    seen = {p for f in flows for p in pods if p.pod in (f.source.pod_name, f.destination.pod_name)}
    got = verdicts(result, [e for e in ends if not isinstance(e, P) or e in seen], PORTS)

    def in_scope(ref: str) -> bool:
        return not ref.startswith("ip:") and namespace in (None, ref.split("/")[0])

    for (s, d, proto, port), ok in got.items():
        if not (in_scope(s) or in_scope(d)):
            continue
        want = (_wl_of(s, pods), _wl_of(d, pods), proto, port) in allowed
        if _wl_of(s, pods) == _wl_of(d, pods) and s.split("/")[-1] == d.split("/")[-1]:
            continue
        assert ok == want, (s, d, proto, port, "allowed" if ok else "denied")
    report = check(result, namespace)
    assert report.ok and not report.broader and report.observed == report.observed_allowed


def _wl(end: P | str) -> str:
    return f"{end.namespace}/{end.workload}" if isinstance(end, P) else end


def _wl_of(ref: str, pods: list[P]) -> str:
    if ref.startswith("ip:"):
        return ref[3:]
    return next(_wl(p) for p in pods if p.ref == ref)


WEB = P("shop", "web", "web-0", "10.0.0.1")
WEB1 = P("shop", "web", "web-1", "10.0.0.2")
API = P("shop", "api", "api-0", "10.0.1.1")
DB = P("data", "db", "db-0", "10.0.2.1")


def test_one_policy_per_workload_and_direction_with_stable_labels_and_peers() -> None:
    flows = [
        *connection_flows(0, WEB, API, "TCP", 8080),
        *connection_flows(1, WEB1, API, "TCP", 8080),
        *connection_flows(2, API, DB, "TCP", 5432),
        *connection_flows(3, API, "198.51.100.7", "TCP", 443),
        *connection_flows(4, "203.0.113.5", WEB, "TCP", 80),
    ]
    result = suggest(flows)
    by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in result.policies}
    assert sorted(by_name) == [
        ("data", "db-egress"), ("data", "db-ingress"), ("shop", "api-egress"), ("shop", "api-ingress"),
        ("shop", "web-egress"), ("shop", "web-ingress"),
    ]  # fmt: skip
    api_in = by_name[("shop", "api-ingress")]["spec"]
    assert api_in["podSelector"] == {"matchLabels": {"app": "api"}}  # pod-template-hash and pseudo labels dropped
    assert api_in["policyTypes"] == ["Ingress"]
    # Two replicas of web are one peer; same namespace: a bare podSelector.
    assert api_in["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                  "ports": [{"protocol": "TCP", "port": 8080}]}]  # fmt: skip
    api_out = by_name[("shop", "api-egress")]["spec"]["egress"]
    assert api_out == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
                    "podSelector": {"matchLabels": {"app": "db"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 5432}],
        },
        {"to": [{"ipBlock": {"cidr": "198.51.100.7/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    ]
    assert by_name[("shop", "web-ingress")]["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "203.0.113.5/32"}}]
    assert by_name[("data", "db-egress")]["spec"] == {
        "podSelector": {"matchLabels": {"app": "db"}},
        "policyTypes": ["Egress"],
        "egress": [],  # never seen to open a connection: egress denied
    }
    # Valid for the API server's rules, as the project's validator applies them.
    cluster = build_cluster(parse_text(to_yaml(result.policies), "s.yaml"))
    assert len(cluster.policies) == 6 and not cluster.warnings
    report = check(result)
    assert (report.observed, report.observed_allowed, report.missing, report.broader) == (5, 5, [], [])
    assert report.unobserved == report.unobserved_denied > 0


def test_dropped_connections_replies_and_icmp_are_left_out_with_notes() -> None:
    flows = [
        *connection_flows(0, WEB, API, "TCP", 8080),
        *connection_flows(1, WEB, DB, "TCP", 5432, dropped=True),  # egress FORWARDED, ingress DROPPED
        flow(2, WEB, API, "ICMPv4", 0, "FORWARDED", "EGRESS"),
    ]
    reply = flow(3, API, WEB, "TCP", 40000, "FORWARDED", "INGRESS")
    flows.append(Flow(**{**{s: getattr(reply, s) for s in Flow.__slots__}, "is_reply": True}))
    result = suggest(flows)
    assert [(c.src.ref, c.dst.ref, c.protocol, c.port) for c in result.connections] == [
        ("shop/web-0", "shop/api-0", "TCP", 8080)
    ]
    assert result.notes == [
        "left out 1 ICMPv4 flows (NetworkPolicy names only TCP, UDP and SCTP ports)",
        "left out 1 reply flows",
        "left out 1 connection(s) with a DROPPED or AUDIT flow",
    ]
    web_out = next(p for p in result.policies if p["metadata"]["name"] == "web-egress")["spec"]["egress"]
    assert [e["to"][0]["podSelector"]["matchLabels"]["app"] for e in web_out] == ["api"]  # not db


def test_audit_flows_count_only_when_asked() -> None:
    flows = [flow(0, WEB, API, "TCP", 8080, "FORWARDED", "EGRESS"), flow(0, WEB, API, "TCP", 8080, "AUDIT", "INGRESS")]
    assert suggest(flows).connections == []
    assert len(suggest(flows, include_audit=True).connections) == 1


def test_outside_addresses_group_into_cidrs() -> None:
    flows = [f for i in range(3) for f in connection_flows(i, API, f"198.51.100.{i + 1}", "TCP", 443)]
    one = suggest(flows)
    blocks = [e["ipBlock"]["cidr"] for e in _egress(one.policies, "api")[0]["to"]]
    assert blocks == ["198.51.100.1/32", "198.51.100.2/31"]  # exact, and adjacent /32s collapsed
    grouped = suggest(flows, cidr_prefix=(24, 64))
    assert [e["ipBlock"]["cidr"] for e in _egress(grouped.policies, "api")[0]["to"]] == ["198.51.100.0/24"]


def _egress(policies: list[dict[str, Any]], workload: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = next(p for p in policies if p["metadata"]["name"] == f"{workload}-egress")["spec"][
        "egress"
    ]
    return rules


def test_namespace_limits_the_policies_not_the_peers() -> None:
    flows = [*connection_flows(0, API, DB, "TCP", 5432), *connection_flows(1, WEB, API, "TCP", 8080)]
    result = suggest(flows, namespace="data")
    assert [p["metadata"]["name"] for p in result.policies] == ["db-ingress", "db-egress"]
    report = check(result, namespace="data")
    assert report.ok and report.observed == 1 and not report.broader


def test_labels_that_do_not_tell_workloads_apart_are_warned_about_and_found_broader() -> None:
    api2 = P("shop", "api2", "api2-0", "10.0.3.1")
    flows = [*connection_flows(0, WEB, API, "TCP", 8080), *connection_flows(1, WEB, api2, "TCP", 9090)]
    # api2's pods carry app=api too: the api selector also selects them.
    flows = [
        Flow(**{**{s: getattr(f, s) for s in Flow.__slots__}, "destination": api2.endpoint({"app": "api", "v": "2"})})
        if f.destination.pod_name == "api2-0"
        else f
        for f in flows
    ]
    result = suggest(flows)
    assert result.warnings == ["the labels of shop/api (app=api) also select shop/api2: it gets shop/api's rules"]
    report = check(result)
    assert report.ok and "shop/web-0 -> shop/api2-0 TCP/8080" in report.broader


def test_stable_labels() -> None:
    ep = FlowEndpoint(
        labels=(
            "k8s:app=x",
            "k8s:pod-template-hash=abc",
            "k8s:io.kubernetes.pod.namespace=ns",
            "k8s:io.cilium.k8s.policy.cluster=default",
            "reserved:world",
            "k8s:statefulset.kubernetes.io/pod-name=x-0",
            "tier=db",
        )
    )
    assert stable_labels(ep) == {"app": "x", "tier": "db"}


# ---- the command -------------------------------------------------------------------------------------------------


def test_cli_over_the_recorded_shop_flows(podnet: Podnet, tmp_path: Path) -> None:
    run = podnet("policy", "suggest", "--from-flows", SHOP_FLOWS)
    assert run.code == 0, run.err
    assert run.err.splitlines() == [
        "note: left out 3 connection(s) with a DROPPED or AUDIT flow",
        "checked by the analyzer: 5 of 5 observed connections allowed, 80 of 80 unobserved pairs denied",
    ]
    out = tmp_path / "suggested.yaml"
    out.write_text(run.out)
    cluster = build_cluster(load_documents([str(out)]))
    assert sorted(p.ref for p in cluster.policies) == sorted(
        f"{ns}/{wl}-{d}"
        for ns, wl in [
            ("api", "backend"),
            ("data", "postgres"),
            ("kube-system", "coredns"),
            ("monitoring", "prometheus"),
            ("web", "frontend"),
        ]
        for d in ("ingress", "egress")
    )
    as_json = podnet("policy", "suggest", "--from-flows", "-", "-o", "json", "-n", "api", stdin=SHOP_FLOWS.read_text())
    assert as_json.code == 0
    doc = json.loads(as_json.out)
    assert doc["kind"] == "List" and [p["metadata"]["name"] for p in doc["items"]] == [
        "backend-ingress",
        "backend-egress",
    ]
    assert doc["items"] == list(
        yaml.safe_load_all(podnet("policy", "suggest", "--from-flows", SHOP_FLOWS, "-n", "api").out)
    )


def test_cli_bad_input_is_a_clear_error(podnet: Podnet, tmp_path: Path) -> None:
    missing = podnet("policy", "suggest", "--from-flows", tmp_path / "nope.jsonl")
    assert missing.code != 0 and "--from-flows" in missing.err and "No such file" in missing.err and not missing.out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"flow": {"verdict": "FORWARDED"}}\n')
    run = podnet("policy", "suggest", "--from-flows", bad)
    assert run.code != 0 and "not a file of flows" in run.err and not run.out
    empty = podnet("policy", "suggest", "--from-flows", SHOP_FLOWS, "-n", "nothing-here")
    assert empty.code != 0 and "no workload" in empty.err
    prefix = podnet("policy", "suggest", "--from-flows", SHOP_FLOWS, "--cidr-prefix", "33")
    assert prefix.code != 0 and "--cidr-prefix" in prefix.err


def test_flows_written_by_observe_round_trip_into_the_same_suggestion(podnet: Podnet, tmp_path: Path) -> None:
    flows = [*connection_flows(0, WEB, API, "TCP", 8080), *connection_flows(1, API, DB, "TCP", 5432)]
    path = tmp_path / "f.jsonl"
    path.write_text("".join(to_line(f) + "\n" for f in flows))
    run = podnet("policy", "suggest", "--from-flows", path)
    assert run.code == 0 and list(yaml.safe_load_all(run.out)) == suggest(flows).policies


def test_a_workload_without_labels_is_warned_about() -> None:
    bare = FlowEndpoint(7, "shop", "job-x", (), (Workload("job-x", "Job"),))
    flows = [
        Flow(**{**{s: getattr(f, s) for s in Flow.__slots__}, "source": bare, "ip_source": "10.0.9.9"})
        for f in connection_flows(0, WEB, API, "TCP", 8080)
    ]
    flows += connection_flows(1, WEB, DB, "TCP", 5432)
    result = suggest(flows)
    assert "shop/job-x has no stable labels: its selector selects every pod of shop" in result.warnings
    policy = next(p for p in result.policies if p["metadata"]["name"] == "job-x-egress")
    assert policy["spec"]["podSelector"] == {}
    api_in = next(p for p in result.policies if p["metadata"]["name"] == "api-ingress")
    assert api_in["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]  # every pod of shop
    report = check(result)
    assert report.ok and "shop/web-0 -> shop/api-0 TCP/8080" in report.broader  # web reaches what job-x reached


def test_cli_lists_pairs_allowed_but_never_observed(podnet: Podnet, tmp_path: Path) -> None:
    api2 = P("shop", "api2", "api2-0", "10.0.3.1")
    flows = [*connection_flows(0, WEB, API, "TCP", 8080), *connection_flows(1, WEB, api2, "TCP", 9090)]
    flows = [
        Flow(**{**{s: getattr(f, s) for s in Flow.__slots__}, "destination": api2.endpoint({"app": "api", "v": "2"})})
        if f.destination.pod_name == "api2-0"
        else f
        for f in flows
    ]
    path = tmp_path / "f.jsonl"
    path.write_text("".join(to_line(f) + "\n" for f in flows))
    run = podnet("policy", "suggest", "--from-flows", path)
    assert run.code == 0
    assert "warning: the labels of shop/api (app=api) also select shop/api2: it gets shop/api's rules" in run.err
    assert "warning: allowed by the suggestion but never observed: shop/web-0 -> shop/api2-0 TCP/8080" in run.err


def test_unenriched_observations_and_flows_without_addresses() -> None:
    unlabelled = FlowEndpoint(0, "shop", "api-0", (), (Workload("api", "Deployment"),))
    base = connection_flows(0, WEB, API, "TCP", 8080)
    early = Flow(**{**{s: getattr(base[1], s) for s in Flow.__slots__}, "destination": unlabelled, "source_port": 1})
    fields = {s: getattr(base[0], s) for s in Flow.__slots__}
    lost = Flow(**{**fields, "destination": FlowEndpoint(2), "ip_destination": "", "source_port": 2})
    result = suggest([early, *base, lost])
    assert result.workloads[WorkloadKey("shop", "api")].labels == {"app": "api"}  # the label-less sighting ignored
    assert "left out 1 flows without a pod or an address on one side" in result.notes
    assert len(result.connections) == 1 and check(result).ok  # one connection: same pods, same port
