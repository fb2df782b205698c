"""How fast a lab comes up, runs 100 pods and goes away.

Times, in one run: `podnet lab up` with 3 nodes; applying one Deployment of N replicas (default 100)
until every pod is Running with an address (scheduled, wired by the podnet CNI plugin, under eBPF
policy, probe server answering); `podnet lab down`. Baseline in the same run: the bare kernel work of
N pods done by one `ip -batch` (N namespaces, each with a veth pair to a node namespace),
the floor any runtime pays (namespaces and veth pairs only). Prints one JSON object with the medians of --repeat runs.

    sudo .venv/bin/python benchmarks/lab_scale.py [--pods 100] [--repeat 3] [--busy 1] [--poll api|cli] [--root DIR]

Readiness is polled every 50 ms by listing the pods through the lab's API server from this process
(``--poll api``); ``--poll cli`` runs ``podnet get pods`` every 100 ms instead, as earlier versions of
this script did (each run of the CLI is a Python start-up, about half a core while pods start).
``--busy N`` keeps N processes spinning on the CPU for the whole run (the "other core loaded" case on
a 2-core machine). ``--root DIR`` measures the podnet source tree in DIR (every podnet process of the
lab gets ``PYTHONPATH=DIR``), to compare two versions with the same script.

Target (issue 4): 100 pods ready in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def podnet(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", *args],
        cwd=env["PYTHONPATH"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"podnet {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def deployment(replicas: int) -> str:
    return f"""apiVersion: v1
kind: Namespace
metadata: {{name: bench}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: bench}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: c, image: x, ports: [{{containerPort: 8080}}]}}]
"""


def running_cli(name: str, env: dict[str, str]) -> int:
    items = json.loads(podnet("get", "pods", "-n", "bench", "-o", "json", "--name", name, env=env))["items"]
    return sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running")


def api_lister(name: str, env: dict[str, str]) -> Callable[[], int]:
    """Counts the Running pods of namespace bench by listing pods through the lab's API server."""
    from podnet.kube.client import KubeTransport

    transport = KubeTransport.from_kubeconfig(Path(env["PODNET_LAB_ROOT"]) / name / "apiserver" / "kubeconfig")

    def running() -> int:
        items, _ = transport.list("Pod")
        return sum(
            1
            for p in items
            if (p.get("metadata") or {}).get("namespace") == "bench"
            and (p.get("status") or {}).get("phase") == "Running"
        )

    return running


def one_lab(pods: int, env: dict[str, str], workdir: Path, poll: str) -> dict[str, float]:
    name = f"b{secrets.token_hex(3)}"
    manifest = workdir / "bench.yaml"
    manifest.write_text(deployment(pods))
    t0 = time.perf_counter()
    podnet("lab", "up", "--name", name, "--nodes", "3", "--pod-cidr", "10.240.0.0/16", env=env)
    t1 = time.perf_counter()
    try:
        if poll == "api":
            running, interval = api_lister(name, env), 0.05
        else:
            running, interval = (lambda: running_cli(name, env)), 0.1
        t_apply = time.perf_counter()
        podnet("apply", "-f", str(manifest), "--name", name, env=env)
        deadline = time.monotonic() + 300
        ready = 0
        while time.monotonic() < deadline:
            ready = running()
            if ready == pods:
                break
            time.sleep(interval)
        else:
            raise SystemExit(f"only {ready} of {pods} pods ran within 300 s")
        t2 = time.perf_counter()
    finally:
        t3 = time.perf_counter()
        podnet("lab", "down", "--name", name, env=env)
        t4 = time.perf_counter()
    return {"lab_up_s": t1 - t0, "pods_ready_s": t2 - t_apply, "lab_down_s": t4 - t3}


def baseline(pods: int) -> float:
    """N namespaces with a veth pair each to a node namespace, made by one `ip -batch` (no addresses)."""
    tag = secrets.token_hex(3)
    node = f"pnb-{tag}-node"
    lines = [f"netns add {node}"]
    for i in range(pods):
        ns = f"pnb-{tag}-{i}"
        lines += [f"netns add {ns}", f"link add v{i} netns {node} type veth peer name eth0 netns {ns}"]
    t0 = time.perf_counter()
    try:
        subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)
        return time.perf_counter() - t0
    finally:
        names = [f"pnb-{tag}-{i}" for i in range(pods)] + [node]
        subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU during the run")
    parser.add_argument("--poll", choices=["api", "cli"], default="api")
    parser.add_argument("--root", type=Path, default=ROOT, help="the podnet source tree to measure")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("lab_scale needs root")
    runs: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        with tempfile.TemporaryDirectory(prefix="podnet-bench-") as tmp:
            env = {**os.environ, "PODNET_LAB_ROOT": str(Path(tmp) / "labs"), "PYTHONPATH": str(args.root.resolve())}
            for _ in range(args.repeat):
                run: dict[str, Any] = one_lab(args.pods, env, Path(tmp), args.poll)
                run["baseline_bare_pods_s"] = baseline(args.pods)
                runs.append(run)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    median = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    median["pods_ready_over_baseline"] = round(median["pods_ready_s"] / median["baseline_bare_pods_s"], 1)
    print(
        json.dumps(
            {
                "benchmark": "lab_scale",
                "nodes": 3,
                "pods": args.pods,
                "repeat": args.repeat,
                "busy": args.busy,
                "poll": args.poll,
                "root": str(args.root),
                "load_average_before": round(load_before, 2),
                "median": median,
                "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
                "target_pods_ready_s": 10.0,
            }
        )
    )


if __name__ == "__main__":
    main()
