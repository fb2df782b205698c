"""CNI ADD/DEL latency: podnet against the reference bridge + host-local plugins, in the same run.

For each plugin set: 100 sequential ADDs (one pod netns each), then 100 sequential DELs, each timed
from exec to exit, exactly as a runtime calls a plugin. Both sets assign one IPv4 and one IPv6 address
per pod. The two sets take turns call by call (podnet's ADD of pod i, the reference's ADD of its pod
i, ...), each in its own pod namespaces, so a burst of load on this shared machine hits both alike.
Everything runs in a private "node" namespace (the script re-executes itself inside it), so the host
is untouched. Prints one JSON object: p50/p95 per verb for both sets and podnet/reference ratios
(below 1.0: podnet is faster).

    sudo .venv/bin/python benchmarks/cni_latency.py [--pods 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REFERENCE = Path("/usr/lib/cni")
HERE = Path(__file__).resolve().parent.parent


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2),
        "n": len(values),
    }


def run_plugin(exe: Path, command: str, conf: bytes, cid: str, netns: str, cni_path: str) -> float:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": cni_path,
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    started = time.perf_counter()
    r = subprocess.run([str(exe)], input=conf, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if r.returncode != 0:
        raise RuntimeError(f"{exe.name} {command} {cid}: {r.stdout.decode()} {r.stderr.decode()}")
    return elapsed


Plugin = tuple[Path, bytes, list[str], str]  # executable, config, pod namespaces, container id prefix


def measure(sets: list[Plugin], cni_path: str) -> list[dict[str, Any]]:
    """ADD every pod, then DEL every pod, the plugin sets taking turns call by call."""
    times: list[dict[str, list[float]]] = [{"ADD": [], "DEL": []} for _ in sets]
    for command in ("ADD", "DEL"):
        for i in range(len(sets[0][2])):
            for (exe, data, pods, tag), out in zip(sets, times, strict=True):
                out[command].append(run_plugin(exe, command, data, f"{tag}-{i}", f"/run/netns/{pods[i]}", cni_path))
    return [{verb: summary(values) for verb, values in out.items()} for out in times]


def interpreter_floor(exe: Path, runs: int) -> dict[str, float]:
    """What the plugin's interpreter costs doing nothing: its shebang line with ``-c pass``."""
    shebang = exe.read_bytes().split(b"\n", 1)[0][2:].decode().split()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*shebang, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return summary(times)


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("agent did not start")


def inside(args: argparse.Namespace) -> dict[str, Any]:
    """Runs inside the node namespace: start the agent, install the plugin, measure both sets."""
    from podnet.cni.install import install

    work = Path(args.work)
    suffix = args.suffix
    pods = {kind: [f"pnb-{suffix}-{kind}{i}" for i in range(args.pods)] for kind in ("p", "b")}
    agent_sock = work / "agent.sock"
    cmd = [sys.executable, "-m", "podnet.cli.main", "agent", "--node-name", "bench", "--socket", str(agent_sock)]
    cmd += ["--state-dir", str(work / "state"), "--pod-cidr", "10.252.0.0/22", "--pod-cidr", "fd52::/112"]
    cmd += ["--log-format", "json"]
    log = open(work / "agent.log", "wb")  # noqa: SIM115 - held by the child
    agent = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=HERE)
    try:
        wait_for_socket(agent_sock, agent)
        exe, _ = install(work / "bin", work / "net.d", socket_path=str(agent_sock))
        podnet_conf = {"cniVersion": "1.0.0", "name": "bench-podnet", "type": "podnet", "agentSocket": str(agent_sock)}
        bridge_conf = {
            "cniVersion": "1.0.0",
            "name": "bench-bridge",
            "type": "bridge",
            "bridge": f"pnbr{suffix}",
            "isGateway": True,
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.253.0.0/22"}], [{"subnet": "fd53::/112"}]],
                "dataDir": str(work / "host-local"),
            },
        }
        cni_path = f"{exe.parent}:{REFERENCE}"
        podnet_set = (exe, json.dumps(podnet_conf).encode(), pods["p"], "podnet")
        bridge_set = (REFERENCE / "bridge", json.dumps(bridge_conf).encode(), pods["b"], "bridge")
        # one warm-up pod each, not counted (first bridge ADD creates the bridge)
        measure([(e, d, p[:1], f"warm-{t}") for e, d, p, t in (podnet_set, bridge_set)], cni_path)
        podnet, bridge = measure([podnet_set, bridge_set], cni_path)
        floor = interpreter_floor(exe, args.pods)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)
        log.close()
    inner: dict[str, list[float]] = {"ADD": [], "DEL": []}
    for line in (work / "agent.log").read_text().splitlines():
        event = json.loads(line)
        if event.get("verb") in inner and "ms" in event and str(event.get("containerID", "")).startswith("podnet-"):
            inner[event["verb"]].append(event["ms"] / 1000)
    podnet["agent_only"] = {verb: summary(values) for verb, values in inner.items() if values}
    podnet["interpreter_only"] = floor
    ratio = {
        f"{verb}_{q}": round(podnet[verb][f"{q}_ms"] / bridge[verb][f"{q}_ms"], 2)
        for verb in ("ADD", "DEL")
        for q in ("p50", "p95")
    }
    return {
        "benchmark": "cni_latency",
        "pods": args.pods,
        "order": "interleaved",
        "podnet": podnet,
        "bridge+host-local": bridge,
        "ratio_podnet_over_reference": ratio,
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--suffix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args), indent=2))
        return 0
    if os.geteuid() != 0:
        print("cni_latency: needs root (network namespaces)", file=sys.stderr)
        return 1
    return run_inside_node("pnb", ("p", "b"), args.pods, Path(__file__), [])


def run_inside_node(prefix: str, sides: tuple[str, str], n_pods: int, script: Path, extra: list[str]) -> int:
    """Make a node namespace (192.0.2.1 on its loopback) and ``n_pods`` pod namespaces per side, run
    ``script --inside`` in the node namespace, then remove them all, whatever happened."""
    suffix = secrets.token_hex(3)
    node = f"{prefix}-{suffix}-node"
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    pods = [f"{prefix}-{suffix}-{side}{i}" for side in sides for i in range(n_pods)]
    try:
        sh("ip", "netns", "add", node)
        sh("ip", "-n", node, "link", "set", "lo", "up")
        sh("ip", "-n", node, "addr", "add", "192.0.2.1/32", "dev", "lo")
        for p in pods:
            sh("ip", "netns", "add", p)
        cmd = ["ip", "netns", "exec", node, sys.executable, str(script.resolve()), "--inside"]
        cmd += ["--pods", str(n_pods), "--work", str(work), "--suffix", suffix, *extra]
        return subprocess.run(cmd, cwd=HERE).returncode
    finally:
        for p in pods:
            subprocess.run(["ip", "netns", "del", p], capture_output=True)
        subprocess.run(["ip", "netns", "del", node], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
