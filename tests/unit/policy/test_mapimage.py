"""The map image (what the kernel will hold) answers exactly what the compiled tables answer."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from podnet.k8s.manifests import Document
from podnet.k8s.model import PROTOCOLS, Source
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import DIRECTIONS, compile_cluster
from podnet.policy.mapimage import apply_diff, diff_images, lookup, map_image
from tests.unit.policy.clusters import PORTS, cluster_manifests

QUERY_PORTS = [1, *PORTS, 81, 8100, 65535]


def _compiled(docs: list[dict[str, Any]]) -> Any:
    return compile_cluster(build_cluster([Document(Source("gen.yaml", i), d) for i, d in enumerate(docs)]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_manifests())
def test_map_image_lookup_equals_compiled_table(docs: list[dict[str, Any]]) -> None:
    compiled = _compiled(docs)
    ids = compiled.identities
    for subject in ids.pods():
        image = map_image(compiled, subject.id)
        for direction in DIRECTIONS:
            for peer in ids.by_id:
                table = compiled.table(subject.id, direction, peer)
                for proto in PROTOCOLS:
                    for port in QUERY_PORTS:
                        assert lookup(image, direction, peer, proto, port) == table.lookup(proto, port)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_manifests(), cluster_manifests())
def test_applying_the_diff_turns_one_image_into_the_other(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    ca, cb = _compiled(a), _compiled(b)
    for subject in ca.identities.pods()[:2]:
        old = map_image(ca, subject.id)
        for other in cb.identities.pods()[:2]:
            new = map_image(cb, other.id)
            d = diff_images(old, new)
            assert apply_diff(old, d) == new
            assert diff_images(new, new).empty


def test_a_pod_without_policy_has_one_allow_all_row_per_direction_and_protocol() -> None:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns1"}},
    ]
    compiled = _compiled(docs)
    (subject,) = compiled.identities.pods()
    image = map_image(compiled, subject.id)
    assert len(image) == len(DIRECTIONS) * len(PROTOCOLS)
    assert {k.peer for k in image} == {0}
    assert all(v.verdict == "allow" and (k.lo, k.hi) == (1, 65535) for k, v in image.items())


def test_egress_named_port_to_every_peer_gets_rows_for_peers_declaring_it() -> None:
    """An egress rule with no `to` and a named port resolves per destination: no wildcard can hold it."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "ns1", "labels": {"app": "a"}}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "b", "namespace": "ns1", "labels": {"app": "b"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "x", "namespace": "ns1"},
            "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "egress": [{"ports": [{"port": "http"}]}]},
        },
    ]
    compiled = _compiled(docs)
    a = compiled.identities.pod_identity[("ns1", "a", "Pod")]
    b = compiled.identities.pod_identity[("ns1", "b", "Pod")]
    image = map_image(compiled, a)
    assert lookup(image, "egress", b, "TCP", 80).verdict == "allow"
    assert lookup(image, "egress", b, "TCP", 81).verdict == "deny"
    assert lookup(image, "egress", a, "TCP", 80).verdict == "deny"
