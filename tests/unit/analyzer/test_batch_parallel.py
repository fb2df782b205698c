"""Batch verdicts over forked workers answer exactly what one process answers, in the input's order."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from podnet.analyzer.endpoints import Resolver
from podnet.analyzer.verdict import batch, batch_parallel
from podnet.k8s.parse import load_cluster
from podnet.policy.compiler import compile_cluster

SHOP = str(Path(__file__).resolve().parents[3] / "examples" / "shop")
PODS = [
    "web/frontend",
    "api/backend",
    "data/postgres",
    "monitoring/prometheus",
    "kube-system/coredns",
    "ip:203.0.113.9",
    "ip:8.8.8.8",
]
PORTS = [("TCP", 80), ("TCP", 8080), ("TCP", 9000), ("TCP", 5432), ("UDP", 53), ("TCP", "http"), ("TCP", 443)]


def test_parallel_batch_equals_serial_batch_line_for_line() -> None:
    lines = [
        json.dumps({"from": a, "to": b, "protocol": proto, "port": port})
        for (a, b), (proto, port) in itertools.product(itertools.permutations(PODS, 2), PORTS)
    ]
    lines.append("not json")
    resolver = Resolver(compile_cluster(load_cluster([SHOP])))
    serial = list(batch(resolver, lines))
    fresh = Resolver(compile_cluster(load_cluster([SHOP])))
    parallel = list(batch_parallel(fresh, lines, workers=2, chunk=37))
    assert parallel == serial
    assert len(serial) == len(lines)
    assert sum('"verdict": "allowed"' in line for line in serial) > 0
    assert sum('"verdict": "denied"' in line for line in serial) > 0
