"""``podnet lab ...`` and ``podnet connectivity ...``: a cluster of network namespaces on this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from podnet.errors import UsageError
from podnet.lab import connectivity, manager, procs


def _say(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=None, help="the lab (default: the only one running)")


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="a multi-node cluster made of network namespaces on this machine")
    lsub = lab.add_subparsers(dest="lab_command", metavar="COMMAND")
    lsub.required = True

    p = lsub.add_parser("up", help="start a lab")
    p.add_argument("--name", default="demo")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--pod-cidr", default="10.244.0.0/16")
    p.add_argument("--routing", choices=("direct", "vxlan"), default="direct")
    p.add_argument(
        "--datapath", choices=("ebpf", "nft"), default="ebpf", help="every agent's policy datapath (podnet agent)"
    )
    p.set_defaults(func=cmd_up)

    p = lsub.add_parser("down", help="stop a lab and remove everything it made")
    _name(p)
    p.set_defaults(func=cmd_down)

    p = lsub.add_parser("controller", help="(started by lab up) run the lab's scheduler, controllers and kubelet")
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_controller)

    p = lsub.add_parser("restart-agent", help="stop (if running) and start again one node's podnet agent")
    _name(p)
    p.add_argument("--node", required=True, metavar="NODE", help="the node, e.g. node0")
    p.set_defaults(func=cmd_restart_agent)

    p = lsub.add_parser("metrics", help="the Prometheus metrics of the lab's agents (flows, drops, policy entries)")
    _name(p)
    p.add_argument("--node", default=None, metavar="NODE", help="one node, e.g. node0 (default: every node)")
    p.set_defaults(func=cmd_metrics)

    p = lsub.add_parser("list", help="running labs")
    p.set_defaults(func=cmd_list)

    p = lsub.add_parser("exec", help="run a command in a pod's network namespace")
    _name(p)
    p.add_argument("pod", metavar="NS/POD")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p.set_defaults(func=cmd_exec)

    p = lsub.add_parser("probe", help="one real connection from a pod")
    _name(p)
    p.add_argument("--from", dest="src", required=True, metavar="NS/POD|host:NODE")
    p.add_argument("--to", dest="dst", required=True, metavar="NS/POD|IP")
    p.add_argument("--protocol", default="TCP", type=str.upper, choices=("TCP", "UDP", "SCTP"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_probe)

    p = lsub.add_parser(
        "apiserver",
        help="run the lab's Kubernetes API server (loopback only, objects in SQLite)",
        description="Serve Namespaces, Pods, Deployments, StatefulSets, NetworkPolicies and "
        "(Baseline)AdminNetworkPolicies over the Kubernetes REST API on a loopback port. "
        "Writes STATE_DIR/kubeconfig once listening. See docs/lab-api.md.",
    )
    p.add_argument("--state-dir", required=True, metavar="DIR", help="where the SQLite store, token and kubeconfig go")
    p.add_argument(
        "--port", type=int, default=0, help="TCP port (default 0: the previous run's port if free, else any free port)"
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--name", default="podnet-lab", help="cluster/context name in the kubeconfig")
    p.add_argument("--no-auth", action="store_true", help="plain HTTP without the kubeconfig's token")
    p.add_argument(
        "--also-in-netns",
        action="append",
        default=[],
        metavar="PATH",
        help="also listen on the same address and port inside this network namespace (repeatable)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--background", action="store_true", help="start it detached (pid in STATE_DIR/apiserver.pid) and return"
    )
    mode.add_argument("--stop", action="store_true", help="stop the one started with --background")
    p.add_argument(
        "--event-log-size",
        type=int,
        default=10000,
        metavar="N",
        help="events kept for watches; older resourceVersions get 410 Gone (default 10000)",
    )
    p.set_defaults(func=cmd_apiserver)

    conn = sub.add_parser("connectivity", help="probe real traffic between the lab's pods")
    csub = conn.add_subparsers(dest="conn_command", metavar="COMMAND")
    csub.required = True
    p = csub.add_parser("matrix", help="every pod pair probed in parallel")
    _name(p)
    p.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"), default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_matrix)

    p = csub.add_parser("test", help="probe every pod pair and declared port; compare with the analyzer")
    _name(p)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_test)


def cmd_apiserver(args: argparse.Namespace) -> int:
    from podnet.lab.apiserver import process
    from podnet.lab.apiserver.app import serve

    state_dir = Path(args.state_dir)
    if args.stop:
        print("stopped" if process.stop(state_dir) else "not running")
        return 0
    if args.background:
        extra = (
            "--host",
            args.host,
            "--name",
            args.name,
            *(("--no-auth",) if args.no_auth else ()),
            *(x for path in args.also_in_netns for x in ("--also-in-netns", path)),
        )
        server = process.start(state_dir, args.port, args.event_log_size, extra_args=extra)
        print(f"podnet lab apiserver running (pid {server.pid}) on {server.url}; kubeconfig {server.kubeconfig}")
        return 0
    serve(
        state_dir,
        host=args.host,
        port=args.port,
        auth=not args.no_auth,
        event_log_size=args.event_log_size,
        name=args.name,
        also_in_netns=args.also_in_netns,
    )
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from podnet.k8s.source import WatchSource
    from podnet.kube.client import KubeTransport
    from podnet.kube.objects import ObjectClient
    from podnet.lab.controller import KINDS, Controller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    lab = manager.load(args.name)
    transport = KubeTransport.from_kubeconfig(lab.kubeconfig)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    source = WatchSource(transport, KINDS)
    try:
        Controller(lab, ObjectClient(transport.api), source).run(stop)
    finally:
        source.close()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    what = f"{args.nodes} nodes, {args.routing} routing, {args.datapath} datapath"
    print(f"starting lab {args.name} ({what})", file=sys.stderr)
    lab = manager.up(args.name, args.nodes, args.pod_cidr, args.routing, say=_say, datapath=args.datapath)
    print(f"lab {lab.name} is up: state in {lab.dir}")
    print(f"API: {lab.extra.get('apiserver')}  (export KUBECONFIG={lab.kubeconfig}; kubectl get pods -A)")
    print(
        "next: podnet apply -f examples/shop; podnet get pods -A; podnet connectivity matrix; "
        f"podnet lab down --name {lab.name}"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    name = args.name or manager.pick(None).name
    manager.down(name, say=_say)
    return 0


def cmd_restart_agent(args: argparse.Namespace) -> int:
    lab = manager.pick(args.name)
    node = lab.plan.node(args.node)
    manager.restart_agent(lab, node)
    print(f"agent {node.name} of lab {lab.name}: restarted (pid {lab.procs[f'agent/{node.name}'].pid})")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    lab = manager.pick(args.name)
    nodes = [lab.plan.node(args.node)] if args.node else list(lab.plan.nodes)
    for node in nodes:
        text = manager.scrape_metrics(lab, node)
        if len(nodes) > 1:
            print(f"# node {node.name} ({node.netns}, http://{manager.metrics_addr(node)}/metrics)")
        sys.stdout.write(text)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for name in manager.names():
        lab = manager.load(name)
        up = sum(procs.alive(p) for k, p in lab.procs.items() if k.startswith("agent/"))
        rows.append(
            (
                name,
                str(len(lab.plan.nodes)),
                f"{up}/{len(lab.plan.nodes)}",
                str(len(lab.pods)),
                lab.plan.routing,
                lab.datapath,
                str(lab.plan.cluster_cidr),
            )
        )
    if not rows:
        print("no lab is running (podnet lab up)")
        return 0
    header = ("NAME", "NODES", "AGENTS UP", "PODS", "ROUTING", "DATAPATH", "POD CIDR")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    lab = manager.pick(args.name)
    record = connectivity.pod_record(lab, args.pod)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise UsageError("lab exec needs a command: podnet lab exec NS/POD -- CMD...")
    os.execvp("ip", ["ip", "netns", "exec", record["netns"], *cmd])


def cmd_probe(args: argparse.Namespace) -> int:
    lab = manager.pick(args.name)
    result = connectivity.probe(lab, args.src, args.dst, args.protocol, args.port, args.timeout)
    if args.output == "json":
        print(json.dumps(result.to_json()))
    else:
        state = (
            f"reachable in {result.rtt_ms} ms" if result.reachable else f"NOT reachable ({result.error or 'no answer'})"
        )
        print(f"{result.src} -> {result.dst} {result.protocol}/{result.port}: {state}")
    return 0 if result.reachable else 1


def cmd_matrix(args: argparse.Namespace) -> int:
    lab = manager.pick(args.name)
    pairs: list[tuple[str, str, str, int]] = []
    refs = sorted(lab.pods)
    for src in refs:
        for dst in refs:
            if src == dst:
                continue
            if args.port is not None:
                pairs.append((src, dst, args.protocol or "TCP", args.port))
                continue
            for port in lab.pods[dst]["ports"]:
                if args.protocol is None or port["protocol"] == args.protocol:
                    pairs.append((src, dst, port["protocol"], port["port"]))
    results = connectivity.matrix(lab, pairs, args.timeout)
    if args.output == "json":
        print(json.dumps([r.to_json() for r in results], indent=2))
        return 0
    w1 = max([4, *(len(r.src) for r in results)])
    w2 = max([2, *(len(r.dst) for r in results)])
    print(f"{'FROM':<{w1}}  {'TO':<{w2}}  {'PORT':<10}  RESULT")
    for r in results:
        verdict = f"reachable {r.rtt_ms} ms" if r.reachable else "no answer"
        print(f"{r.src:<{w1}}  {r.dst:<{w2}}  {r.protocol + '/' + str(r.port):<10}  {verdict}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from podnet.kube.client import api_client
    from podnet.kube.objects import RESOURCES, ObjectClient

    lab = manager.pick(args.name)
    client = ObjectClient(api_client(lab.kubeconfig))
    objects = [obj for kind in RESOURCES for obj in client.list(kind)]
    probes, diffs = connectivity.compare_with_analyzer(lab, objects, args.timeout)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "probes": len(probes),
                    "differences": [
                        {**d.probe.to_json(), "expected": d.expected, "decided_by": d.decided_by} for d in diffs
                    ],
                },
                indent=2,
            )
        )
    else:
        reachable = sum(p.reachable for p in probes)
        print(
            f"{len(probes)} probes from {len(lab.pods)} pods (to pods, their node, the outside) and from each node "
            "to its pods: "
            f"{reachable} reachable, {len(probes) - reachable} not; {len(diffs)} differ from the analyzer"
        )
        for d in diffs:
            print(f"  DIFF {d}")
    return 1 if diffs else 0
