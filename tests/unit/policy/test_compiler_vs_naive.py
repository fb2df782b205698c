"""The compiled policy answers exactly what a direct reading of the specification answers."""

from __future__ import annotations

import ipaddress
import warnings
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import NonInteractiveExampleWarning

from podnet.analyzer.endpoints import Resolver
from podnet.analyzer.verdict import answer
from podnet.k8s.manifests import Document
from podnet.k8s.model import PROTOCOLS, Source
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import compile_cluster
from tests.unit.policy import naive
from tests.unit.policy.clusters import ADDRESSES, PORTS, cluster_manifests

warnings.filterwarnings("ignore", category=NonInteractiveExampleWarning)
QUERY_PORTS = [*PORTS, 81, 8100]


def _cluster(docs: list[dict[str, Any]]) -> Any:
    return build_cluster([Document(Source("gen.yaml", i), d) for i, d in enumerate(docs)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_manifests())
def test_compiled_verdicts_match_the_naive_evaluator(docs: list[dict[str, Any]]) -> None:
    cluster = _cluster(docs)
    compiled = compile_cluster(cluster)
    resolver = Resolver(compiled)
    pods = [p for p in cluster.pods]
    parties: list[tuple[str, Any]] = [(p.ref, p) for p in pods]
    parties += [
        (f"ip:{a}", ipaddress.ip_address(a))
        for a in ADDRESSES
        if not any(ipaddress.ip_address(a) in p.ips for p in pods)
    ]
    for src_ref, src in parties:
        for dst_ref, dst in parties:
            if src_ref == dst_ref or (not hasattr(src, "ips") and not hasattr(dst, "ips")):
                continue
            for proto in PROTOCOLS:
                for port in QUERY_PORTS:
                    got = answer(resolver, src_ref, dst_ref, proto, port).verdict.allowed
                    want = naive.allowed(cluster, src, dst, proto, port)
                    assert got == want, (src_ref, dst_ref, proto, port, docs)
