"""Flows → suggested policies and the service map: cost against reading the flows, in the same run.

Generates a flows file (``--flows`` JSON lines over ``--workloads`` workloads of 2 pods in 5 namespaces,
a tenth of them dropped, some to outside addresses), then times, ``--repeat`` times each:

- baseline: reading the file into Flow objects (``read_jsonl``), what any consumer pays;
- ``suggest``: flows → NetworkPolicies (``podnet.analyzer.suggest``);
- ``check``: the suggestion through the manifest validator and the analyzer (observed allowed, the rest denied);
- ``servicemap``: ``ServiceMap`` built flow by flow (what the live UI stream does per flow).

Prints one JSON object: medians in ms, per-flow µs, and ratios to the baseline.

    .venv/bin/python benchmarks/flows_ui.py [--flows 100000] [--workloads 40] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from podnet.analyzer.suggest import suggest
from podnet.analyzer.suggest_check import check
from podnet.flows.export import read_jsonl
from podnet.flows.model import Flow, FlowEndpoint, Workload, to_line
from podnet.flows.servicemap import ServiceMap

T0 = 1_795_000_000_000_000_000
PORTS = [("TCP", 80), ("TCP", 443), ("TCP", 5432), ("UDP", 53), ("TCP", 9000), ("TCP", 9100)]


def generate(n_flows: int, n_workloads: int, seed: int = 7) -> list[Flow]:
    rng = random.Random(seed)
    pods: list[tuple[FlowEndpoint, str]] = []
    for w in range(n_workloads):
        ns = f"ns{w % 5}"
        for r in range(2):
            labels = (f"k8s:app=wl{w}", f"k8s:pod-template-hash=h{w}", f"k8s:io.kubernetes.pod.namespace={ns}")
            ep = FlowEndpoint(256 + w, ns, f"wl{w}-{r}", labels, (Workload(f"wl{w}", "Deployment"),))
            pods.append((ep, f"10.{w // 200}.{w % 200}.{r + 1}"))
    world = FlowEndpoint(2, labels=("reserved:world",))
    # Each workload talks to a few others on a few ports: a realistic sparse graph.
    pairs = [(rng.randrange(len(pods)), rng.randrange(len(pods)), rng.choice(PORTS)) for _ in range(n_workloads * 4)]
    out: list[Flow] = []
    i = 0
    while len(out) < n_flows:
        s, d, (proto, port) = pairs[i % len(pairs)]
        src, src_ip = pods[s]
        dst, dst_ip = pods[d]
        if i % 17 == 0:
            dst, dst_ip = world, f"198.51.100.{i % 250 + 1}"
        dropped = i % 10 == 0
        common: dict[str, Any] = {
            "node_name": "n0", "ip_source": src_ip, "ip_destination": dst_ip, "ip_version": 4, "protocol": proto,
            "source_port": 30000 + i % 30000, "destination_port": port, "source": src, "destination": dst,
        }  # fmt: skip
        out.append(Flow(time_ns=T0 + i * 1000, verdict="FORWARDED", type="policy-verdict",
                        traffic_direction="EGRESS", **common))  # fmt: skip
        if dst is not world:
            out.append(Flow(time_ns=T0 + i * 1000 + 1, verdict="DROPPED" if dropped else "FORWARDED",
                            type="drop" if dropped else "policy-verdict", traffic_direction="INGRESS",
                            drop_reason_desc="POLICY_DENIED" if dropped else "", **common))  # fmt: skip
        i += 1
    return out[:n_flows]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--workloads", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    flows = generate(args.flows, args.workloads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.jsonl"
        path.write_text("".join(to_line(f) + "\n" for f in flows))

        def read() -> list[Flow]:
            with open(path, encoding="utf-8") as fh:
                return read_jsonl(fh)

        read_s, parsed = timed(read, args.repeat)
    suggest_s, result = timed(lambda: suggest(parsed), args.repeat)
    check_s, report = timed(lambda: check(result), args.repeat)
    smap_s, smap = timed(lambda: ServiceMap(parsed), args.repeat)
    n = len(parsed)
    print(
        json.dumps(
            {
                "benchmark": "flows_ui",
                "python": platform.python_version(),
                "flows": n,
                "workloads": args.workloads,
                "repeat": args.repeat,
                "baseline_read_ms": round(read_s * 1000, 1),
                "suggest_ms": round(suggest_s * 1000, 1),
                "check_ms": round(check_s * 1000, 1),
                "servicemap_ms": round(smap_s * 1000, 1),
                "read_us_per_flow": round(read_s / n * 1e6, 2),
                "servicemap_us_per_flow": round(smap_s / n * 1e6, 2),
                "suggest_over_read": round(suggest_s / read_s, 3),
                "servicemap_over_read": round(smap_s / read_s, 3),
                "policies": len(result.policies),
                "connections": len(result.connections),
                "check": report.summary(),
                "check_ok": report.ok and not report.broader,
                "edges": len(smap.edges),
            }
        )
    )


if __name__ == "__main__":
    main()
