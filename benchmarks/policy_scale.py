"""How the policy compiler and the verdict path scale with pods and policies.

Generates realistic clusters (namespaces of teams and environments, workloads with overlapping label
sets and named ports, NetworkPolicies mixing pod/namespace selectors, expressions, ports, ranges,
named ports and ipBlocks with except, plus AdminNetworkPolicies and a baseline), then measures, for
each size, in a fresh process: validation time, compile time, batch verdicts per second through the
JSON-lines path (`podnet policy verdict --queries`; cold: nearly every query a new pod pair, warm: the
same queries again) and through the engine alone, peak memory, and,
as the baseline measured in the same run, the verdict rate of a direct evaluator of the spec.

    python benchmarks/policy_scale.py [--sizes 1000x400,2500x1000,5000x2000] [--repeat 3] [--queries 100000]

Prints one JSON object. Targets (issue 2): 5,000 pods with 2,000 policies compiled in under 5 s,
at least 100,000 verdicts per second, under 1 GiB.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIERS = ["web", "api", "db", "cache", "worker", "batch"]
TEAMS = [f"team{i}" for i in range(12)]
ENVS = ["prod", "staging", "dev"]


def generate(n_pods: int, n_policies: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    docs: list[dict[str, Any]] = []
    n_ns = max(2, n_pods // 50)
    namespaces = []
    for i in range(n_ns):
        name = f"ns{i}"
        labels = {"team": rnd.choice(TEAMS), "env": rnd.choice(ENVS)}
        namespaces.append((name, labels))
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}})
    workloads: list[tuple[str, str, dict[str, str]]] = []
    ip = 0
    pods_left = n_pods
    w = 0
    while pods_left > 0:
        ns, ns_labels = namespaces[w % n_ns]
        tier = rnd.choice(TIERS)
        labels = {"app": f"app{w}", "tier": tier, "version": rnd.choice(["v1", "v2"]), "team": ns_labels["team"]}
        ports = [
            {"name": "http", "containerPort": rnd.choice([80, 8080, 8000])},
            {"name": "metrics", "containerPort": 9090},
        ]
        if tier == "db":
            ports.append({"name": "sql", "containerPort": 5432})
        if rnd.random() < 0.2:
            ports.append({"name": "grpc", "containerPort": 9000})
        replicas = min(pods_left, rnd.randint(2, 8))
        for r in range(replicas):
            ip += 1
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"app{w}-{r}",
                        "namespace": ns,
                        "labels": labels,
                        "ownerReferences": [{"kind": "ReplicaSet", "name": f"app{w}", "controller": True}],
                    },
                    "spec": {"containers": [{"name": "c", "image": "x", "ports": ports}]},
                    "status": {"podIP": f"10.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"},
                }
            )
        workloads.append((ns, tier, labels))
        pods_left -= replicas
        w += 1
    for i in range(n_policies):
        ns, ns_labels = namespaces[i % n_ns]
        kind = i // n_ns % 8
        ns_workloads = [x for x in workloads if x[0] == ns] or workloads
        target = rnd.choice(ns_workloads)[2]
        spec: dict[str, Any]
        if kind == 0:
            spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        elif kind == 1:
            spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}
        elif kind == 2:
            spec = {
                "podSelector": {"matchLabels": {"tier": target["tier"]}},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"team": rnd.choice(TEAMS)}},
                                "podSelector": {"matchLabels": {"tier": rnd.choice(TIERS)}},
                            }
                        ],
                        "ports": [{"port": "http"}],
                    }
                ],
            }
        elif kind == 3:
            spec = {
                "podSelector": {"matchLabels": {"app": target["app"]}},
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": {"tier": "db"}}}],
                        "ports": [{"protocol": "TCP", "port": 5432}],
                    },
                    {
                        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": "cache"}}}],
                        "ports": [{"port": 6379}, {"port": 7000, "endPort": 7100}],
                    },
                ],
            }
        elif kind == 4:
            a, b = rnd.randint(1, 200), rnd.randint(0, 255)
            spec = {
                "podSelector": {
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": rnd.sample(TIERS, 2)}]
                },
                "egress": [
                    {
                        "to": [
                            {
                                "ipBlock": {
                                    "cidr": f"172.{a % 16 + 16}.0.0/16",
                                    "except": [f"172.{a % 16 + 16}.{b}.0/24"],
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    }
                ],
            }
        elif kind == 5:
            spec = {
                "podSelector": {"matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["v1"]}]},
                "ingress": [
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                        "ports": [{"port": "metrics"}],
                    }
                ],
            }
        elif kind == 6:
            spec = {
                "podSelector": {"matchLabels": {"app": target["app"]}},
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {"app": rnd.choice(ns_workloads)[2]["app"]}}},
                            {"namespaceSelector": {"matchLabels": {"env": ns_labels["env"]}}},
                        ],
                        "ports": [{"port": "grpc"}, {"protocol": "UDP", "port": 53}],
                    }
                ],
            }
        else:
            spec = {
                "podSelector": {"matchLabels": {"team": target["team"]}},
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {"key": "env", "operator": "In", "values": ["prod", "staging"]}
                                    ]
                                }
                            }
                        ],
                        "ports": [{"port": "http"}],
                    },
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                        "ports": [{"protocol": "UDP", "port": 53}],
                    },
                ],
            }
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"np{i}", "namespace": ns},
                "spec": spec,
            }
        )
    for i in range(max(2, n_policies // 100)):
        action = rnd.choice(["Allow", "Deny", "Pass"])
        docs.append(
            {
                "apiVersion": "policy.networking.k8s.io/v1alpha1",
                "kind": "AdminNetworkPolicy",
                "metadata": {"name": f"anp{i}"},
                "spec": {
                    "priority": i,
                    "subject": {"namespaces": {"matchLabels": {"team": rnd.choice(TEAMS)}}},
                    "ingress": [
                        {
                            "name": "r",
                            "action": action,
                            "from": [{"namespaces": {"matchLabels": {"env": rnd.choice(ENVS)}}}],
                            "ports": [{"portRange": {"protocol": "TCP", "start": 1000, "end": 2000}}],
                        }
                    ],
                    "egress": [{"name": "e", "action": "Deny", "to": [{"networks": [f"192.168.{i % 256}.0/24"]}]}],
                },
            }
        )
    docs.append(
        {
            "apiVersion": "policy.networking.k8s.io/v1alpha1",
            "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"},
            "spec": {
                "subject": {"namespaces": {"matchLabels": {"env": "prod"}}},
                "ingress": [
                    {"name": "deny-dev", "action": "Deny", "from": [{"namespaces": {"matchLabels": {"env": "dev"}}}]}
                ],
            },
        }
    )
    return docs


def queries(docs: list[dict[str, Any]], n: int, seed: int = 11) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    pods = [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in docs if d["kind"] == "Pod"]
    externals = ["ip:172.20.3.4", "ip:8.8.8.8", "ip:192.168.3.3"]
    out = []
    for _ in range(n):
        src = rnd.choice(pods) if rnd.random() < 0.95 else rnd.choice(externals)
        dst = rnd.choice(pods) if rnd.random() < 0.9 else rnd.choice(externals)
        proto, port = rnd.choice(
            [
                ("TCP", 80),
                ("TCP", 8080),
                ("TCP", 5432),
                ("TCP", 443),
                ("UDP", 53),
                ("TCP", 1500),
                ("TCP", 9090),
                ("TCP", 6379),
                ("TCP", 7050),
            ]
        )
        out.append({"from": src, "to": dst, "protocol": proto, "port": port})
    return out


def one(n_pods: int, n_policies: int, n_queries: int) -> dict[str, Any]:
    """One measurement, in this process (run through a subprocess so peak memory is its own)."""
    from podnet.analyzer.endpoints import Resolver
    from podnet.analyzer.verdict import batch
    from podnet.k8s.manifests import Document
    from podnet.k8s.model import Source
    from podnet.k8s.parse import build_cluster
    from podnet.policy.compiler import compile_cluster
    from tests.unit.policy import naive

    docs = generate(n_pods, n_policies)
    qs = queries(docs, n_queries)
    lines = [json.dumps(q) for q in qs]
    t0 = time.perf_counter()
    cluster = build_cluster([Document(Source("gen", i), d) for i, d in enumerate(docs)])
    t1 = time.perf_counter()
    compiled = compile_cluster(cluster)
    t2 = time.perf_counter()
    resolver = Resolver(compiled)
    gc.freeze()  # as `podnet policy verdict --queries` does after compiling
    out = io.StringIO()
    for line in batch(resolver, lines):
        out.write(line)
    t3 = time.perf_counter()
    for line in batch(resolver, lines):  # the same queries again: every pair's table now built
        out.write(line)
    t3w = time.perf_counter()
    # The engine alone, on endpoints resolved once (what the datapath and the UI's matrix use).
    resolved = [(resolver.resolve(q["from"]), resolver.resolve(q["to"]), q["protocol"], q["port"]) for q in qs]
    t4 = time.perf_counter()
    allowed = 0
    for src, dst, proto, port in resolved:
        allowed += compiled.decide(src.identity, dst.identity, proto, port).allowed
    t5 = time.perf_counter()
    # Baseline in the same run: the direct evaluator of the spec, on a sample.
    sample = resolved[: min(2000, len(resolved))]
    t6 = time.perf_counter()
    for src, dst, proto, port in sample:
        naive.allowed(cluster, src.pod or src.address, dst.pod or dst.address, proto, port)  # type: ignore[arg-type]
    t7 = time.perf_counter()
    naive_rate = len(sample) / (t7 - t6)
    return {
        "pods": n_pods,
        "policies": n_policies,
        "identities": len(compiled.identities.by_id),
        "validate_s": round(t1 - t0, 3),
        "compile_s": round(t2 - t1, 3),
        "batch_jsonl_verdicts_per_s": round(n_queries / (t3 - t2)),
        "batch_jsonl_warm_verdicts_per_s": round(n_queries / (t3w - t3)),
        "engine_verdicts_per_s": round(n_queries / (t5 - t4)),
        "naive_verdicts_per_s": round(naive_rate),
        "allowed_fraction": round(allowed / n_queries, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000x400,2500x1000,5000x2000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        p, n = (int(x) for x in args.one.split("x"))
        print(json.dumps(one(p, n, args.queries)))
        return
    results = []
    for size in args.sizes.split(","):
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", size, "--queries", str(args.queries)],
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(proc.stdout))
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        median["speedup_vs_naive"] = round(median["engine_verdicts_per_s"] / median["naive_verdicts_per_s"], 1)
        results.append({"size": size, "median": median, "runs": runs})
    print(json.dumps({"benchmark": "policy_scale", "repeat": args.repeat, "queries": args.queries, "results": results}))


if __name__ == "__main__":
    main()
