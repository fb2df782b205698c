"""What the node agent's incremental policy update costs for one changed pod, against a full compile.

For each size (the generated clusters of ``policy_scale.py``), starting from a compiled cluster: one
more pod with a label set that exists (the Deployment scale-up case: no compile), then one more pod
with a new label set (a compile whose selector results carry over). Baseline in the same run: a full
``compile_cluster`` of the same cluster. Each figure is the median of ``--repeat`` tries.

    python benchmarks/policy_incremental.py [--sizes 1000x400,2500x1000,5000x2000] [--repeat 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from policy_scale import generate  # noqa: E402

from podnet.k8s.manifests import Document  # noqa: E402
from podnet.k8s.model import Cluster, Source  # noqa: E402
from podnet.k8s.parse import build_cluster  # noqa: E402
from podnet.policy.compiler import compile_cluster  # noqa: E402
from podnet.policy.incremental import IncrementalCompiler  # noqa: E402


def _cluster(docs: list[dict[str, Any]]) -> Cluster:
    return build_cluster([Document(Source("gen.yaml", i), d) for i, d in enumerate(docs)])


def one_size(n_pods: int, n_policies: int, repeat: int) -> dict[str, Any]:
    docs = generate(n_pods, n_policies)
    pods = [d for d in docs if d["kind"] == "Pod"]
    base = _cluster(docs)
    times: dict[str, list[float]] = {"known_label_set_ms": [], "new_label_set_ms": [], "full_compile_ms": []}
    for k in range(repeat):
        inc = IncrementalCompiler()
        inc.update(base)
        same = copy.deepcopy(pods[k])
        same["metadata"]["name"] = f"extra-{k}"
        with_same = _cluster([*docs, same])
        t = time.perf_counter()
        update = inc.update(with_same)
        times["known_label_set_ms"].append(time.perf_counter() - t)
        assert not update.recompiled
        fresh = copy.deepcopy(pods[k])
        fresh["metadata"]["name"] = f"fresh-{k}"
        fresh["metadata"].setdefault("labels", {})["fresh"] = f"v{k}"
        with_new = _cluster([*docs, same, fresh])
        t = time.perf_counter()
        update = inc.update(with_new)
        times["new_label_set_ms"].append(time.perf_counter() - t)
        assert update.recompiled and inc.carried == 1
        t = time.perf_counter()
        compile_cluster(with_new, inc.allocator.copy())
        times["full_compile_ms"].append(time.perf_counter() - t)
    median = {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()}
    median["new_label_set_over_full"] = round(median["new_label_set_ms"] / median["full_compile_ms"], 2)
    median["known_label_set_over_full"] = round(median["known_label_set_ms"] / median["full_compile_ms"], 3)
    runs = {k: [round(x * 1000, 1) for x in v] for k, v in times.items()}
    return {"size": f"{n_pods}x{n_policies}", "median": median, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000x400,2500x1000,5000x2000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = []
    for size in args.sizes.split(","):
        p, n = (int(x) for x in size.split("x"))
        results.append(one_size(p, n, args.repeat))
    print(json.dumps({"benchmark": "policy_incremental", "repeat": args.repeat, "results": results}))


if __name__ == "__main__":
    main()
