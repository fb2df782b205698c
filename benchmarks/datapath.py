"""How fast the eBPF datapath moves packets, applies policy changes and reports events.

Builds, in throwaway network namespaces, a bare veth pair (the baseline) and a routed node with two
pods behind the eBPF datapath (the topology of tests/net/ebpf), then measures in the same run:

- pod-to-pod TCP throughput (iperf3) and request/response latency (a 1-byte TCP ping-pong, p50/p95),
  on the bare pair and through the datapath with 10 and with 10,000 NetworkPolicies selecting the
  destination (every one allowing another port), so the per-packet cost's independence of the
  number of policies shows;
- the same across two nodes (two routed node namespaces joined by an underlay veth, a pod on each):
  routed by the nodes without programs, then with the datapath on both nodes (the source node sends
  by bpf_redirect_neigh; the count of redirected packets is printed);
- policy change to enforcement: compile + map image + diff written to the kernel, p50/p95 (the
  kernel uses a map entry from the moment the bpf(2) call returns);
- flow events: a flood of new flows from one pod to a port the other pod's ingress denies (each
  packet a new connection: a verdict event at the source's egress and a drop event at the
  destination's ingress), how many events per second the reader decoded while the kernel produced
  them, and how many the kernel could not queue (ring buffer full: the reader fell behind).

    sudo python benchmarks/datapath.py [--seconds 3] [--roundtrips 3000] [--flood 100000] [--repeat 3]

Servers run on CPU 0 and clients on CPU 1 (taskset), so runs compare like with like. The one-node
figures of a round are taken in ABBA order (reversed every other round), the two-node ones alternate.

Prints one JSON object. Targets (issue 5): throughput at least 0.95 of the bare pair, p50 latency
within 1.1 of it, 10 vs 10,000 policies at most 2% apart, at least 50,000 events per second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from podnet.datapath.ebpf import EbpfDatapath, Endpoint, ensure_bpffs  # noqa: E402
from podnet.datapath.ebpf.system import unmount  # noqa: E402
from podnet.k8s.manifests import Document  # noqa: E402
from podnet.k8s.model import Source  # noqa: E402
from podnet.k8s.parse import build_cluster  # noqa: E402
from podnet.policy.compiler import CompiledPolicy, compile_cluster  # noqa: E402
from podnet.policy.mapimage import map_image  # noqa: E402
from tests.net.ebpf.topology import Topology, sh  # noqa: E402

IPERF_PORT = 5201
PING_PORT = 5202
FLOOD_PORT = 4444

PING_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b: break
        c.sendall(b)
    c.close()
"""

PING_CLIENT = r"""
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
out = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter_ns(); s.sendall(b"x"); s.recv(1); out.append(time.perf_counter_ns() - t)
print(json.dumps(out))
"""

FLOOD = r"""
import socket, struct, sys
src, dst, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 29, 0, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
sent = 0
for i in range(n):  # every packet a new flow: a new source port, and a new source address byte pattern
    udp = struct.pack("!HHHH", 1024 + i % 64000, port, 9, 0) + b"x"
    try:
        s.sendto(head + udp, (dst, 0)); sent += 1
    except OSError:
        pass
print(sent)
"""


SERVER_CPU, CLIENT_CPU = "0", str(min(1, (os.cpu_count() or 1) - 1))


def netns_py(netns: str, script: str, *args: str, cpu: str | None = None) -> list[str]:
    pin = ["taskset", "-c", cpu] if cpu is not None else []
    return ["ip", "netns", "exec", netns, *pin, sys.executable, "-c", script, *args]


def start(cmd: list[str], wait_ready: bool = True) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if wait_ready:
        assert proc.stdout is not None
        proc.stdout.readline()
    return proc


def throughput(server_ns: str, client_ns: str, ip: str, seconds: float) -> float:
    """Gbit/s received, iperf3, one TCP stream."""
    server_cmd = ["ip", "netns", "exec", server_ns, "taskset", "-c", SERVER_CPU, "iperf3", "-s", "-1"]
    server = start([*server_cmd, "-p", str(IPERF_PORT)], wait_ready=False)
    time.sleep(0.3)
    try:
        client = ["ip", "netns", "exec", client_ns, "taskset", "-c", CLIENT_CPU, "iperf3", "-c", ip]
        out = sh(*client, "-p", str(IPERF_PORT), "-t", str(seconds), "-J")
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def latency(server_ns: str, client_ns: str, ip: str, n: int) -> dict[str, float]:
    """Round-trip microseconds of a 1-byte TCP ping-pong: p50 and p95."""
    server = start(netns_py(server_ns, PING_SERVER, str(PING_PORT), cpu=SERVER_CPU))
    try:
        out = sh(*netns_py(client_ns, PING_CLIENT, ip, str(PING_PORT), str(n), cpu=CLIENT_CPU))
        rtts = sorted(json.loads(out.stdout))
        return {"p50_us": rtts[len(rtts) // 2] / 1e3, "p95_us": rtts[int(len(rtts) * 0.95)] / 1e3}
    finally:
        server.kill()
        server.wait()


def bare_pair(suffix: str) -> tuple[str, str, str]:
    a, b = f"pnb-a-{suffix}", f"pnb-b-{suffix}"
    for ns in (a, b):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
    sh("ip", "-n", a, "addr", "add", "10.201.0.1/24", "dev", "eth0")
    sh("ip", "-n", b, "addr", "add", "10.201.0.2/24", "dev", "eth0")
    for ns in (a, b):
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
    return a, b, "10.201.0.2"


def two_nodes(workdir: Path) -> tuple[Topology, Topology]:
    """Two routed nodes joined by an underlay veth (10.202.0.1/30 - .2), pod "client" on the first and
    pod "server" on the second, each node routing the other's pod through the underlay."""
    a, b = Topology(workdir / "node-a"), Topology(workdir / "node-b")
    for t in (a, b):
        t.workdir.mkdir(parents=True, exist_ok=True)
    a.create(["client"])
    b.create(["server"], subnet=2)
    ua, ub = f"pnu{a.suffix}", f"pnu{b.suffix}"
    sh("ip", "-n", a.node, "link", "add", ua, "type", "veth", "peer", "name", ub, "netns", b.node)
    for t, dev, mine, theirs, pod in ((a, ua, "10.202.0.1", "10.202.0.2", b.pods["server"]),
                                      (b, ub, "10.202.0.2", "10.202.0.1", a.pods["client"])):  # fmt: skip
        sh("ip", "-n", t.node, "addr", "add", f"{mine}/30", "dev", dev)
        sh("ip", "-n", t.node, "link", "set", dev, "up")
        sh("ip", "-n", t.node, "route", "add", f"{pod.ip}/32", "via", theirs, "dev", dev)
    return a, b


def cluster(topo: Topology | list[Topology], n_policies: int) -> CompiledPolicy:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}]
    for pod in (p for t in (topo if isinstance(topo, list) else [topo]) for p in t.pods.values()):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod.name, "namespace": "bench", "labels": {"app": pod.name}},
                "spec": {"containers": [{"name": "main", "image": "bench"}]},
                "status": {"podIP": str(pod.ip)},
            }
        )
    ports = [{"protocol": "TCP", "port": IPERF_PORT, "endPort": PING_PORT}]
    for i in range(n_policies):
        if i:
            ports = [{"protocol": "TCP", "port": 20000 + i}]
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"p{i}", "namespace": "bench"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "server"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": ports}],
                },
            }
        )
    return compile_cluster(build_cluster([Document(Source("bench.yaml", i), d) for i, d in enumerate(docs)]))


def apply(dp: EbpfDatapath, topo: Topology, compiled: CompiledPolicy) -> None:
    dp.sync_identities(compiled.identities)
    for pod in topo.pods.values():
        ident = compiled.identities.address_identity[pod.ip]
        dp.attach(Endpoint(pod.host_veth, pod.mac, ident, ipv4=pod.ip))
        dp.apply_image(pod.host_veth, map_image(compiled, ident))


def measure(server: Any, client: Any, args: argparse.Namespace) -> dict[str, float]:
    return {
        "gbit_s": throughput(server.netns, client.netns, str(server.ip), args.seconds),
        **latency(server.netns, client.netns, str(server.ip), args.roundtrips),
    }


BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def program_stats(pin_dir: Path) -> dict[str, tuple[int, int]]:
    """(run time ns, runs) of each pinned program, as the kernel counts them with bpf_stats_enabled."""
    out = {}
    for name in ("pn_from_pod", "pn_to_pod", "pn_from_uplink"):
        info = json.loads(sh("bpftool", "-j", "prog", "show", "pinned", str(pin_dir / name)).stdout)
        out[name] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return out


def ns_per_run(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Mean nanoseconds per run of each program between two :func:`program_stats` readings (the kernel's
    own timing adds about 80 ns per run here: a program returning at once measures that much)."""
    out = {}
    for name, (ns, runs) in after.items():
        if runs > before[name][1]:
            out[name] = (ns - before[name][0]) / (runs - before[name][1])
    return out


def percentiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"p50_ms": xs[len(xs) // 2] * 1e3, "p95_ms": xs[int(len(xs) * 0.95)] * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--roundtrips", type=int, default=3000)
    ap.add_argument("--flood", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks/datapath.py needs root")
    # SIGTERM (a timeout, a kill) ends the run through the cleanup below, not around it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="podnet-bench-"))
    topo = Topology(workdir)
    bpffs = workdir / "bpffs"
    mounted = False
    bare: tuple[str, str, str] | None = None
    nodes: tuple[Topology, Topology] | None = None
    result: dict[str, Any] = {}
    stats_were: str | None = None
    try:
        bare = bare_pair(topo.suffix)
        topo.create(["client", "server"])
        nodes = two_nodes(workdir)
        mounted = ensure_bpffs(bpffs)
        dp = EbpfDatapath(bpffs / "node", netns=topo.node)
        dp.ensure_loaded()
        dp_a = EbpfDatapath(bpffs / "node-a", netns=nodes[0].node)
        dp_b = EbpfDatapath(bpffs / "node-b", netns=nodes[1].node)
        dp_a.ensure_loaded()
        dp_b.ensure_loaded()
        far_client, far_server = nodes[0].pods["client"], nodes[1].pods["server"]
        cross = cluster(list(nodes), 10)
        client, server = topo.pods["client"], topo.pods["server"]
        compiled_by_n = {n: cluster(topo, n) for n in (10, 10000)}
        runs: dict[str, list[dict[str, float]]] = {}

        def cross_node(variant: str) -> None:
            """The two nodes routed without programs, or with the datapath on both (pods and uplinks)."""
            for d, t in ((dp_a, nodes[0]), (dp_b, nodes[1])):
                for pod in t.pods.values():
                    if variant == "ebpf":
                        apply(d, t, cross)
                    elif d.endpoints():
                        d.detach(pod.host_veth)
                if variant == "ebpf":
                    d.attach_uplink(f"pnu{t.suffix}")
                else:
                    d.detach_uplink(f"pnu{t.suffix}")

        for round_no in range(args.repeat):  # interleaved rounds; each figure is the median over rounds
            # one node: the bare pair and the datapath with 10 and 10,000 policies, the order reversed every
            # other round (ABBA), so a drift of the shared machine within a round favours no one
            one_node: list[int | None] = [None, *compiled_by_n]
            for n in one_node if round_no % 2 == 0 else one_node[::-1]:
                if n is None:
                    runs.setdefault("bare_veth", []).append(
                        {
                            "gbit_s": throughput(bare[1], bare[0], bare[2], args.seconds),
                            **latency(bare[1], bare[0], bare[2], args.roundtrips),
                        }
                    )
                else:
                    apply(dp, topo, compiled_by_n[n])
                    runs.setdefault(f"ebpf_{n}_policies", []).append(measure(server, client, args))
            # across nodes: the same two nodes routed without programs, and with the datapath on both,
            # in alternating order from round to round (the shared machine drifts within a round)
            for variant in ("routed", "ebpf") if round_no % 2 == 0 else ("ebpf", "routed"):
                cross_node(variant)
                neigh0, uplink0 = dp_a.counters()["redirected_neigh"], dp_b.counters()["redirected_uplink"]
                runs.setdefault(f"cross_node_{variant}", []).append(measure(far_server, far_client, args))
                if variant == "ebpf":
                    runs["cross_node_ebpf"][-1]["redirected_neigh"] = dp_a.counters()["redirected_neigh"] - neigh0
                    runs["cross_node_ebpf"][-1]["redirected_uplink"] = dp_b.counters()["redirected_uplink"] - uplink0
        # What each program costs per run, timed by the kernel in rounds of their own (the timing itself
        # costs ~80 ns a run, so the throughput rounds above run without it): the one-node pair (the
        # data's and the ACKs' pn_from_pod), and the receiving node of the two (its pn_from_uplink too).
        stats_were = BPF_STATS.read_text().strip()
        BPF_STATS.write_text("1")
        cost: dict[str, dict[str, list[float]]] = {}
        for _ in range(2):  # 10 and 10,000 policies alternating: the per-packet cost does not depend on them
            for n, compiled in compiled_by_n.items():
                apply(dp, topo, compiled)
                before = program_stats(dp.pin_dir)
                throughput(server.netns, client.netns, str(server.ip), args.seconds)
                for prog, per_run in ns_per_run(before, program_stats(dp.pin_dir)).items():
                    cost.setdefault(f"one_node_{n}_policies", {}).setdefault(prog, []).append(per_run)
        cross_node("ebpf")
        before = program_stats(dp_b.pin_dir)
        throughput(far_server.netns, far_client.netns, str(far_server.ip), args.seconds)
        for prog, per_run in ns_per_run(before, program_stats(dp_b.pin_dir)).items():
            cost.setdefault("receiving_node", {}).setdefault(prog, []).append(per_run)
        result["program_ns_per_run"] = {
            where: {prog: round(statistics.median(v), 1) for prog, v in progs.items()} for where, progs in cost.items()
        }
        BPF_STATS.write_text(stats_were)
        stats_were = None
        for name, rounds in runs.items():
            result[name] = {k: statistics.median(r[k] for r in rounds if k in r) for k in rounds[0]}
        result["rounds"] = {name: [round(r["gbit_s"], 2) for r in rounds] for name, rounds in runs.items()}

        # the same ratios per round, then their median: a round's figures were measured minutes apart at most,
        # so the VM's drift over the whole run cancels out of them
        def per_round(a: str, b: str, key: str) -> list[float]:
            return [x[key] / y[key] for x, y in zip(runs[a], runs[b], strict=True)]

        def paired(a: str, b: str, key: str) -> float:
            return statistics.median(per_round(a, b, key))

        result["ratios_paired_by_round"] = {
            "throughput_vs_bare": paired("ebpf_10_policies", "bare_veth", "gbit_s"),
            "p50_latency_vs_bare": paired("ebpf_10_policies", "bare_veth", "p50_us"),
            "throughput_10k_vs_10": paired("ebpf_10000_policies", "ebpf_10_policies", "gbit_s"),
            "cross_node_throughput_vs_routed": paired("cross_node_ebpf", "cross_node_routed", "gbit_s"),
            "cross_node_throughput_vs_bare": paired("cross_node_ebpf", "bare_veth", "gbit_s"),
            "cross_node_p50_latency_vs_bare": paired("cross_node_ebpf", "bare_veth", "p50_us"),
        }
        # how far single rounds stray: the quartiles of the per-round throughput ratios
        result["paired_quartiles"] = (
            {
                name: [round(q, 3) for q in statistics.quantiles(per_round(a, b, "gbit_s"), n=4)]
                for name, a, b in (
                    ("throughput_vs_bare", "ebpf_10_policies", "bare_veth"),
                    ("throughput_10k_vs_10", "ebpf_10000_policies", "ebpf_10_policies"),
                    ("cross_node_throughput_vs_routed", "cross_node_ebpf", "cross_node_routed"),
                )
            }
            if args.repeat >= 2
            else {}
        )
        base, p10, p10k = result["bare_veth"], result["ebpf_10_policies"], result["ebpf_10000_policies"]
        routed, far = result["cross_node_routed"], result["cross_node_ebpf"]
        result["ratios"] = {
            "cross_node_throughput_vs_routed": far["gbit_s"] / routed["gbit_s"],
            "cross_node_p50_latency_vs_routed": far["p50_us"] / routed["p50_us"],
            "cross_node_throughput_vs_bare": far["gbit_s"] / base["gbit_s"],
            "cross_node_p50_latency_vs_bare": far["p50_us"] / base["p50_us"],
            "throughput_vs_bare": p10["gbit_s"] / base["gbit_s"],
            "p50_latency_vs_bare": p10["p50_us"] / base["p50_us"],
            "throughput_10k_vs_10": p10k["gbit_s"] / p10["gbit_s"],
            "p50_latency_10k_vs_10": p10k["p50_us"] / p10["p50_us"],
        }
        # policy change to enforcement: one policy more or less, compiled, imaged, diff written
        small = cluster(topo, 10)
        apply(dp, topo, small)
        ident = small.identities.address_identity[server.ip]
        change, full = [], []
        for i in range(20):
            t0 = time.perf_counter()
            compiled = cluster(topo, 11 if i % 2 == 0 else 10)
            t1 = time.perf_counter()
            dp.apply_image(server.host_veth, map_image(compiled, ident))
            t2 = time.perf_counter()
            change.append(t2 - t1)
            full.append(t2 - t0)
        result["policy_change"] = {"image_and_write": percentiles(change), "compile_image_write": percentiles(full)}
        # events: a flood of denied flows, each one drop event
        list(dp.events(timeout=0.05))
        lost0 = dp.counters()["events_lost"]
        count = [0]
        done = threading.Event()

        def read() -> None:
            while not done.is_set():
                for e in dp.events(timeout=0.2):
                    if e.dport == FLOOD_PORT:
                        count[0] += 1

        reader = threading.Thread(target=read)
        reader.start()
        t0 = time.perf_counter()
        out = sh(*netns_py(client.netns, FLOOD, str(client.ip), str(server.ip), str(FLOOD_PORT), str(args.flood)))
        sent = int(out.stdout)
        time.sleep(0.5)
        done.set()
        reader.join()
        elapsed = time.perf_counter() - t0
        result["events"] = {
            "packets_sent": sent,
            "events_decoded": count[0],
            "events_per_second": count[0] / elapsed,
            "events_lost": dp.counters()["events_lost"] - lost0,
        }
        dp.destroy()
        dp_a.destroy()
        dp_b.destroy()
    finally:
        if stats_were is not None:
            BPF_STATS.write_text(stats_were)
        topo.destroy()
        for t in nodes or ():
            t.destroy()
        if bare is not None:
            for ns in bare[:2]:
                sh("ip", "netns", "del", ns, check=False)
        if mounted:
            unmount(bpffs)
        shutil.rmtree(workdir, ignore_errors=True)
    result["targets_met"] = {
        "throughput": result["ratios"]["throughput_vs_bare"] >= 0.95,
        "latency": result["ratios"]["p50_latency_vs_bare"] <= 1.1,
        "policies_10k_vs_10": abs(1 - result["ratios"]["throughput_10k_vs_10"]) <= 0.02,
        "events_per_second": result["events"]["events_per_second"] >= 50000,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
