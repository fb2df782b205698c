"""The host identity: a node agent's own addresses. In, it is always allowed (NetworkPolicy never isolates a
pod from its own node); out, it is exactly the node's address as any other address (ipBlock or world)."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podnet.k8s.manifests import Document
from podnet.k8s.model import PROTOCOLS, Source
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import DIRECTIONS, FROM_HOST, compile_cluster
from podnet.policy.identity import HOST
from podnet.policy.mapimage import lookup, map_image
from tests.unit.policy.clusters import PORTS, cluster_manifests

QUERY_PORTS = [1, *PORTS, 81, 8100, 65535]
# Outside every pod address of the generated clusters; inside some of their policy CIDRs, or none.
HOST_ADDRESSES = ["10.0.0.50", "10.0.0.140", "192.168.1.9", "192.168.3.3", "172.30.0.1"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_manifests(), st.sampled_from(HOST_ADDRESSES))
def test_the_host_is_always_allowed_in_and_is_its_address_going_out(docs: list[dict[str, Any]], addr: str) -> None:
    cluster = build_cluster([Document(Source("gen.yaml", i), d) for i, d in enumerate(docs)])
    address = ipaddress.ip_address(addr)
    plain = compile_cluster(cluster)
    node = compile_cluster(cluster, host_addresses=(address,))
    ids = node.identities
    assert ids.identity_of_address(address) == HOST and ids.by_id[HOST].kind == "host"
    as_address = plain.identities.identity_of_address(address)  # world or a CIDR identity
    for subject in ids.pods():
        same = plain.identities.of_pod(next(p for p in cluster.pods if ids.of_pod(p) == subject.id))
        image = map_image(node, subject.id)
        for proto in PROTOCOLS:
            for port in QUERY_PORTS:
                verdict = node.decide(HOST, subject.id, proto, port)
                assert verdict.allowed and verdict.egress is None and verdict.ingress == FROM_HOST
                assert lookup(image, "ingress", HOST, proto, port) == FROM_HOST
                out = node.decide(subject.id, HOST, proto, port)
                assert out == plain.decide(same, as_address, proto, port)
                assert lookup(image, "egress", HOST, proto, port) == out.egress
        # every other row is what it is without a host identity
        for direction in DIRECTIONS:
            for peer in ids.by_id:
                if peer == HOST:
                    continue
                for proto in PROTOCOLS:
                    want = plain.table(same, direction, peer).lookup(proto, 80)
                    assert lookup(image, direction, peer, proto, 80) == want
