"""What the policy editor's live analysis costs: ``POST /api/analyze`` against the analyzer's own work.

For each size (pods x NetworkPolicies, clusters from benchmarks/policy_scale.py's generator), the same YAML
text is analyzed repeatedly in one process:

- baseline: the analyzer alone, as ``podnet policy matrix`` + ``podnet policy lint`` do it (parse, validate,
  compile, endpoints, every matrix cell, lint findings);
- ui: ``POST /api/analyze`` through FastAPI's test client (the same work plus the policy graphs, the
  workloads and the JSON both ways), i.e. one keystroke's round trip in the editor without the network.

    python benchmarks/ui_analyze.py [--sizes 50x20,150x60,300x120] [--repeat 7]

Prints one JSON object: medians in milliseconds, the ratio ui / baseline, the answer's size and matrix cells.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.policy_scale import generate  # noqa: E402


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def measure(pods: int, policies: int, repeat: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from podnet.analyzer import lint as lint_mod
    from podnet.analyzer import matrix as matrix_mod
    from podnet.analyzer.endpoints import Resolver
    from podnet.k8s.manifests import parse_text
    from podnet.k8s.parse import build_cluster
    from podnet.policy.compiler import compile_cluster
    from podnet.ui.app import create_app
    from podnet.ui.lab import LabLink

    text = yaml.safe_dump_all(generate(pods, policies), sort_keys=False)

    def baseline() -> object:
        resolver = Resolver(compile_cluster(build_cluster(parse_text(text, "bench.yaml"))))
        cells = matrix_mod.matrix(resolver)
        return cells, lint_mod.lint(resolver.compiled)

    client = TestClient(create_app(LabLink(kubeconfig="/nonexistent"), static_dir=ROOT / "nonexistent"))
    body = {"files": [{"name": "bench.yaml", "text": text}]}
    answer = client.post("/api/analyze", json=body)
    assert answer.status_code == 200 and answer.json()["valid"], answer.text[:500]

    def ui() -> object:
        return client.post("/api/analyze", json=body).content

    base_ms = _median_ms(baseline, repeat)
    ui_ms = _median_ms(ui, repeat)
    return {
        "pods": pods,
        "policies": policies,
        "yaml_kib": round(len(text) / 1024, 1),
        "matrix_cells": len(answer.json()["matrix"]["cells"]),
        "answer_kib": round(len(answer.content) / 1024, 1),
        "baseline_analyzer_ms": base_ms,
        "ui_analyze_ms": ui_ms,
        "ratio_ui_to_baseline": round(ui_ms / base_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="50x20,150x60,300x120", help="PODSxPOLICIES,...")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    results = []
    for size in args.sizes.split(","):
        pods, policies = (int(x) for x in size.split("x"))
        results.append(measure(pods, policies, args.repeat))
    print(json.dumps({"benchmark": "ui_analyze", "repeat": args.repeat, "results": results}, indent=2))


if __name__ == "__main__":
    main()
