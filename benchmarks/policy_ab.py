"""Batch verdicts (`podnet policy verdict --queries` path): this tree against an earlier tree, runs alternating.

One generated cluster of policy_scale.py (default 5,000 pods x 2,000 NetworkPolicies) and its 100,000
queries; each run is a fresh process that compiles the cluster with one tree's code, then times, in CPU
time (``time.process_time``: less disturbed by other load on a shared VM than wall time), a cold pass
(nearly every query a pair not asked before), a warm pass (the same queries again) and the engine
alone (``CompiledPolicy.decide`` on resolved endpoints). The two trees take turns, ``--rounds`` times,
so the VM's speed, which moves from minute to minute, hits both alike. Both trees' answers are hashed:
they must agree. Prints one JSON object: every run, medians per tree and this/base ratios (above 1.0:
faster now).

    git archive <commit> | tar -x -C /tmp/podnet-base     # the tree to compare with
    .venv/bin/python benchmarks/policy_ab.py --base /tmp/podnet-base [--rounds 3] [--size 5000x2000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def one(root: Path, n_pods: int, n_policies: int, n_queries: int) -> dict[str, Any]:
    """One run with the code under ``root`` (this process imports podnet from there)."""
    sys.path.insert(0, str(root))
    import podnet
    from podnet.analyzer.endpoints import Resolver
    from podnet.analyzer.verdict import batch
    from podnet.k8s.manifests import Document
    from podnet.k8s.model import Source
    from podnet.k8s.parse import build_cluster
    from podnet.policy.compiler import compile_cluster

    assert Path(podnet.__file__).resolve().is_relative_to(root), podnet.__file__
    from policy_scale import generate, queries  # the generator of this tree, for both sides

    docs = generate(n_pods, n_policies)
    qs = queries(docs, n_queries)
    lines = [json.dumps(q) for q in qs]
    cluster = build_cluster([Document(Source("gen", i), d) for i, d in enumerate(docs)])
    compiled = compile_cluster(cluster)
    resolver = Resolver(compiled)
    t0 = time.process_time()
    answers = list(batch(resolver, lines))
    t1 = time.process_time()
    for _ in batch(resolver, lines):
        pass
    t2 = time.process_time()
    resolved = [(resolver.resolve(q["from"]).identity, resolver.resolve(q["to"]).identity, q) for q in qs]
    decide = compiled.decide
    t3 = time.process_time()
    for src, dst, q in resolved:
        decide(src, dst, q["protocol"], q["port"])
    t4 = time.process_time()
    return {
        "cold_verdicts_per_s": round(n_queries / (t1 - t0)),
        "warm_verdicts_per_s": round(n_queries / (t2 - t1)),
        "engine_verdicts_per_s": round(n_queries / (t4 - t3)),
        "answers_sha256": hashlib.sha256("\n".join(answers).encode()).hexdigest()[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the tree to compare with (a checkout or git archive)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="5000x2000", help="PODSxPOLICIES")
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_pods, n_policies = (int(x) for x in args.size.split("x"))
    if args.one:
        print(json.dumps(one(Path(args.one).resolve(), n_pods, n_policies, args.queries)))
        return
    trees = {"base": Path(args.base).resolve(), "this": HERE}
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "this": []}
    for _ in range(args.rounds):
        for side, root in trees.items():
            cmd = [sys.executable, __file__, "--base", args.base, "--size", args.size, "--queries", str(args.queries)]
            proc = subprocess.run([*cmd, "--one", str(root)], check=True, capture_output=True, text=True)
            runs[side].append(json.loads(proc.stdout))
    keys = ("cold_verdicts_per_s", "warm_verdicts_per_s", "engine_verdicts_per_s")
    median = {side: {k: statistics.median(r[k] for r in rs) for k in keys} for side, rs in runs.items()}
    answers = {r["answers_sha256"] for rs in runs.values() for r in rs}
    print(
        json.dumps(
            {
                "benchmark": "policy_ab",
                "size": args.size,
                "queries": args.queries,
                "rounds": args.rounds,
                "base": str(trees["base"]),
                "same_answers": len(answers) == 1,
                "median": median,
                "ratio_this_to_base": {k: round(median["this"][k] / median["base"][k], 2) for k in keys},
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
