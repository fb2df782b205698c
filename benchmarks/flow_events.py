"""Flow events per second from each policy datapath: the eBPF ring buffer against nftables' NFLOG.

Builds, in throwaway network namespaces, the routed node of tests/net/ebpf with two pods and, in turn,
each datapath on it (eBPF first: the baseline, in the same run), with 10 NetworkPolicies isolating the
server. Then floods the server from the client with new UDP flows to a denied port (every packet a
new flow: a new source port), and counts the drop events the reader decoded until it caught up (the
rate is events over the time from the first packet sent to the last event decoded), and those lost
(eBPF: the ring buffer was full; nft: gaps in NFLOG's sequence numbers, the socket's buffer was full).
The flood is as fast as the sender goes (a burst), or with ``--rate PPS`` paced at PPS packets per
second (twice that in events per second, sustained: what the reader keeps up with, not what its buffer holds).

    sudo python benchmarks/flow_events.py [--flood N] [--repeat N] [--rate PPS] [--pipeline] [--export] [--root DIR]

Prints one JSON object: per datapath the medians over rounds, and nft's rate as a ratio of eBPF's.
The rate moves with the machine's load (the sender, the kernel and the reader share its cores).
CPU times move much less, so compare versions by them: ``reader_cpu_seconds`` (the reader thread's,
``time.thread_time``, until the last flood event) and ``sender_cpu_seconds`` (the flooding process's,
which includes the kernel's work on its packets: the datapath and the log messages). ``--root DIR``
runs this script against the podnet tree in DIR (its datapaths and test topology), for A/B runs of
two versions alternately. ``events_total`` counts every event read in the window: a flood packet is
also the client's egress verdict (a new connection allowed), so a reader decodes two events per packet;
``all_events_per_second`` is the rate of both kinds (the drops' rate counts one of the two).
``--pipeline``: the reader is the agent's: its loop drains the datapath with the agent's
:class:`FlowCollector` (decode into flows enriched from the pods, Prometheus metrics, the ring store;
``--export``: and the JSON-lines export file with rotation, as the lab runs the agent), waiting 0.1 s
for cluster changes between drains as the agent's policy loop does, so the rate and the losses are the
agent's. The datapath's own reader (decode only) on eBPF is then the baseline of the same run
(``ebpf_reader``); ``ebpf`` and ``nft`` are the agent on each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# --root DIR: import podnet (and the topology helpers) from DIR; read before the imports below
_root = sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv[:-1] else str(ROOT)
sys.path.insert(0, str(Path(_root).resolve()))

from benchmarks.datapath import FLOOD, FLOOD_PORT, apply, cluster, netns_py  # noqa: E402
from podnet.datapath.ebpf import EbpfDatapath, ensure_bpffs  # noqa: E402
from podnet.datapath.ebpf.system import unmount  # noqa: E402
from podnet.datapath.nft import NftDatapath  # noqa: E402
from podnet.flows.collector import FlowCollector  # noqa: E402
from podnet.flows.export import JsonlExporter  # noqa: E402
from podnet.flows.metrics import FlowMetrics  # noqa: E402
from podnet.flows.store import FlowStore  # noqa: E402
from podnet.policy.compiler import CompiledPolicy  # noqa: E402
from tests.net.ebpf.topology import Topology, sh  # noqa: E402

NFLOG_GROUP = 9  # the node is a namespace of its own
# benchmarks.datapath.FLOOD at a set rate (--rate): 100 packets at a time, on a schedule from the start
PACED = FLOOD.replace(
    "for i in range(n):",
    "import time\nrate = float(sys.argv[5])\nt0 = time.perf_counter()\nfor i in range(n):\n"
    "    if i % 100 == 0 and (ahead := t0 + i / rate - time.perf_counter()) > 0:\n        time.sleep(ahead)",
)
assert PACED != FLOOD


class Counting:
    """The datapath as the collector's event source, counting the flood's drop events as they pass."""

    def __init__(self, dp: Any) -> None:
        self.dp = dp
        self.count = self.total = self.upto = 0  # upto: every event read until the last flood drop
        self.last = 0.0
        self.cpu = 0.0
        self.cpu0 = 0.0

    def events(self, timeout: float = 0.0) -> Any:
        for e in self.dp.events(timeout):
            self.total += 1
            if e.dport == FLOOD_PORT and e.type == "drop":
                self.count += 1
                self.last = time.perf_counter()
                self.cpu = time.thread_time() - self.cpu0
                self.upto = self.total
            yield e

    def counters(self) -> dict[str, int]:
        counters: dict[str, int] = self.dp.counters()
        return counters


def agent_collector(compiled: CompiledPolicy, export: Path | None) -> FlowCollector:
    """The agent's collector (``podnet agent`` defaults: 4,096 flows in the store, three 10 MiB export files)."""
    exporter = JsonlExporter(export, 10 * 1024 * 1024, 3) if export is not None else None
    collector = FlowCollector("bench", FlowStore(4096), exporter, FlowMetrics())
    collector.synced(compiled.cluster.pods, compiled.identities, [], 0, 2)
    return collector


def flood(dp: Any, topo: Topology, n: int, rate: int, collector: FlowCollector | None = None) -> dict[str, float]:
    client, server = topo.pods["client"], topo.pods["server"]
    list(dp.events(timeout=0.1))
    lost0 = dp.counters()["events_lost"]
    source = Counting(dp)
    done = threading.Event()

    def read() -> None:
        source.cpu0 = time.thread_time()
        while not done.is_set():
            for _ in source.events(timeout=0.2):
                pass

    def agent_loop() -> None:  # PolicyLoop._run with no cluster changes: drain, wait ≤ 0.1 s, sync (none here)
        assert collector is not None
        source.cpu0 = time.thread_time()
        while not done.is_set():
            collector.drain(source)
            if not getattr(collector, "backlog", False):  # a tree without it waits after every drain
                done.wait(0.1)

    reader = threading.Thread(target=read if collector is None else agent_loop)
    reader.start()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    flood_args = (str(client.ip), str(server.ip), str(FLOOD_PORT), str(n))
    cmd = netns_py(client.netns, PACED, *flood_args, str(rate)) if rate else netns_py(client.netns, FLOOD, *flood_args)
    out = sh(*cmd)
    sent_at = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    while time.perf_counter() - max(source.last, sent_at) < 1.0:  # the reader catches up: 1 s without events
        time.sleep(0.1)
    done.set()
    reader.join()
    if collector is not None:
        collector.close()
    count, last = source.count, source.last
    return {
        "packets_sent": int(out.stdout),
        "send_seconds": sent_at - t0,
        # the sender's CPU time, with the kernel's work on its packets (the datapath, the log messages)
        "sender_cpu_seconds": children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime,
        "sender_system_seconds": children.ru_stime - children0.ru_stime,
        "events_decoded": count,
        "events_per_second": count / (last - t0) if count else 0.0,
        "events_lost": dp.counters()["events_lost"] - lost0,
        "events_total": source.total,
        "all_events_per_second": source.upto / (last - t0) if count else 0.0,
        "flows_recorded": collector.events if collector is not None else 0,
        "reader_cpu_seconds": source.cpu,  # until the last flood event
        "reader_cpu_us_per_event": source.cpu / count * 1e6 if count else 0.0,
        "reader_cpu_us_per_any_event": source.cpu / source.upto * 1e6 if count else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flood", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rate", type=int, default=0, help="flood packets per second (2 events each); 0: at once")
    ap.add_argument("--pipeline", action="store_true", help="the agent's collector (decode, metrics, store) reads")
    ap.add_argument("--export", action="store_true", help="and writes the JSON-lines export (implies --pipeline)")
    ap.add_argument("--root", default=str(ROOT), help="the podnet source tree to measure (default: this one)")
    args = ap.parse_args()
    args.pipeline = args.pipeline or args.export
    if os.geteuid() != 0:
        sys.exit("benchmarks/flow_events.py needs root")
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="podnet-bench-events-"))
    topo = Topology(workdir)
    bpffs = workdir / "bpffs"
    mounted = False
    # (result name, datapath, the agent's collector reads): the first run of each round is the baseline
    runs = [("ebpf", "ebpf", False), ("nft", "nft", False)]
    if args.pipeline:
        runs = [("ebpf_reader", "ebpf", False), ("ebpf", "ebpf", True), ("nft", "nft", True)]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in runs}
    try:
        topo.create(["client", "server"])
        mounted = ensure_bpffs(bpffs)
        compiled = cluster(topo, 10)
        for _ in range(args.repeat):
            for name, kind, agent in runs:
                dp: Any
                if kind == "ebpf":
                    dp = EbpfDatapath(bpffs / "node", netns=topo.node)
                else:
                    dp = NftDatapath(netns=topo.node, table="podnet_bench", log_group=NFLOG_GROUP)
                dp.ensure_loaded()
                try:
                    apply(dp, topo, compiled)
                    export = workdir / f"flows-{name}.jsonl" if args.export else None
                    collector = agent_collector(compiled, export) if agent else None
                    rounds[name].append(flood(dp, topo, args.flood, args.rate, collector))
                finally:
                    dp.destroy()
    finally:
        topo.destroy()
        if mounted:
            unmount(bpffs)
        shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, Any] = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in rounds.items()
    }
    result["nft_vs_ebpf_events_per_second"] = result["nft"]["events_per_second"] / result["ebpf"]["events_per_second"]
    result["root"] = str(Path(args.root).resolve())
    result["pipeline"] = args.pipeline
    result["export"] = args.export
    result["rate"] = args.rate
    if args.pipeline:
        result["agent_vs_reader_events_per_second"] = (
            result["ebpf"]["events_per_second"] / result["ebpf_reader"]["events_per_second"]
        )
    result["load_average_before"] = load
    result["rounds"] = rounds
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
