"""Flow events per second from each policy datapath: the eBPF ring buffer against nftables' NFLOG.

Builds, in throwaway network namespaces, the routed node of tests/net/ebpf with two pods and, in turn,
each datapath on it (eBPF first: the baseline, in the same run), with 10 NetworkPolicies isolating the
server. Then floods the server from the client with new UDP flows to a denied port (every packet a
new flow: a new source port), and counts the drop events the reader decoded until it caught up (the
rate is events over the time from the first packet sent to the last event decoded), and those lost
(eBPF: the ring buffer was full; nft: gaps in NFLOG's sequence numbers, the socket's buffer was full).

    sudo python benchmarks/flow_events.py [--flood 50000] [--repeat 3] [--pipeline] [--root DIR]

Prints one JSON object: per datapath the medians over rounds, and nft's rate as a ratio of eBPF's.
The rate moves with the machine's load (the sender, the kernel and the reader share its cores).
CPU times move much less, so compare versions by them: ``reader_cpu_seconds`` (the reader thread's,
``time.thread_time``, until the last flood event) and ``sender_cpu_seconds`` (the flooding process's,
which includes the kernel's work on its packets: the datapath and the log messages). ``--root DIR``
runs this script against the podnet tree in DIR (its datapaths and test topology), for A/B runs of
two versions alternately. ``events_total`` counts every event read in the window: a flood packet is
also the client's egress verdict (a new connection allowed), so a reader decodes two events per packet;
``all_events_per_second`` is the rate of both kinds (the drops' rate counts one of the two).
``--pipeline``: the reader also does the agent's work on each event (decode into a flow enriched from
the pods, metrics, the ring store), so the rate is the agent's, not only the datapath reader's.
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
from podnet.flows.decoder import Enricher, boot_offset_ns, decode  # noqa: E402
from podnet.flows.metrics import FlowMetrics  # noqa: E402
from podnet.flows.store import FlowStore  # noqa: E402
from podnet.policy.compiler import CompiledPolicy  # noqa: E402
from tests.net.ebpf.topology import Topology, sh  # noqa: E402

NFLOG_GROUP = 9  # the node is a namespace of its own


class Pipeline:
    """The agent's work per event after the datapath's (``--pipeline``): decode into a Flow enriched
    from the cluster's pods, metrics, the ring store (the collector's drain, without the export file)."""

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.enricher = Enricher.build(compiled.cluster.pods, compiled.identities)
        self.metrics = FlowMetrics()
        self.store = FlowStore(65536)
        self.offset = boot_offset_ns()

    def __call__(self, event: Any) -> None:
        flow = decode(event, self.enricher, "bench", self.offset)
        self.metrics.observe(flow)
        self.store.add(flow)


def flood(dp: Any, topo: Topology, n: int, pipeline: Pipeline | None = None) -> dict[str, float]:
    client, server = topo.pods["client"], topo.pods["server"]
    list(dp.events(timeout=0.1))
    lost0 = dp.counters()["events_lost"]
    count = [0]
    total = [0]
    upto = [0]  # every event read until the last flood event
    last = [0.0]
    cpu = [0.0]
    done = threading.Event()

    def read() -> None:
        cpu0 = time.thread_time()
        while not done.is_set():
            for e in dp.events(timeout=0.2):
                total[0] += 1
                if pipeline is not None:
                    pipeline(e)
                if e.dport == FLOOD_PORT and e.type == "drop":
                    count[0] += 1
                    last[0] = time.perf_counter()
                    cpu[0] = time.thread_time() - cpu0
                    upto[0] = total[0]

    reader = threading.Thread(target=read)
    reader.start()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = sh(*netns_py(client.netns, FLOOD, str(client.ip), str(server.ip), str(FLOOD_PORT), str(n)))
    sent_at = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    while time.perf_counter() - max(last[0], sent_at) < 1.0:  # the reader catches up: 1 s without events
        time.sleep(0.1)
    done.set()
    reader.join()
    return {
        "packets_sent": int(out.stdout),
        "send_seconds": sent_at - t0,
        # the sender's CPU time, with the kernel's work on its packets (the datapath, the log messages)
        "sender_cpu_seconds": children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime,
        "sender_system_seconds": children.ru_stime - children0.ru_stime,
        "events_decoded": count[0],
        "events_per_second": count[0] / (last[0] - t0) if count[0] else 0.0,
        "events_lost": dp.counters()["events_lost"] - lost0,
        "events_total": total[0],
        "all_events_per_second": upto[0] / (last[0] - t0) if count[0] else 0.0,
        "reader_cpu_seconds": cpu[0],  # until the last flood event
        "reader_cpu_us_per_event": cpu[0] / count[0] * 1e6 if count[0] else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flood", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipeline", action="store_true", help="and the agent's work per event (decode, metrics, store)")
    ap.add_argument("--root", default=str(ROOT), help="the podnet source tree to measure (default: this one)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benchmarks/flow_events.py needs root")
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="podnet-bench-events-"))
    topo = Topology(workdir)
    bpffs = workdir / "bpffs"
    mounted = False
    rounds: dict[str, list[dict[str, float]]] = {"ebpf": [], "nft": []}
    try:
        topo.create(["client", "server"])
        mounted = ensure_bpffs(bpffs)
        compiled = cluster(topo, 10)
        for _ in range(args.repeat):
            for name in ("ebpf", "nft"):
                dp: Any
                if name == "ebpf":
                    dp = EbpfDatapath(bpffs / "node", netns=topo.node)
                else:
                    dp = NftDatapath(netns=topo.node, table="podnet_bench", log_group=NFLOG_GROUP)
                dp.ensure_loaded()
                try:
                    apply(dp, topo, compiled)
                    rounds[name].append(flood(dp, topo, args.flood, Pipeline(compiled) if args.pipeline else None))
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
    result["load_average_before"] = load
    result["rounds"] = rounds
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
