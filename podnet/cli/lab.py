"""``podnet lab ...`` and ``podnet connectivity ...``: a cluster of network namespaces on this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    p.set_defaults(func=cmd_up)

    p = lsub.add_parser("down", help="stop a lab and remove everything it made")
    _name(p)
    p.set_defaults(func=cmd_down)

    p = lsub.add_parser("list", help="running labs")
    p.set_defaults(func=cmd_list)

    p = lsub.add_parser("exec", help="run a command in a pod's network namespace")
    _name(p)
    p.add_argument("pod", metavar="NS/POD")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...")
    p.set_defaults(func=cmd_exec)

    p = lsub.add_parser("probe", help="one real connection from a pod")
    _name(p)
    p.add_argument("--from", dest="src", required=True, metavar="NS/POD")
    p.add_argument("--to", dest="dst", required=True, metavar="NS/POD|IP")
    p.add_argument("--protocol", default="TCP", type=str.upper, choices=("TCP", "UDP", "SCTP"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_probe)

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


def cmd_up(args: argparse.Namespace) -> int:
    print(f"starting lab {args.name} ({args.nodes} nodes, {args.routing} routing)", file=sys.stderr)
    lab = manager.up(args.name, args.nodes, args.pod_cidr, args.routing, say=_say)
    print(f"lab {lab.name} is up: state in {lab.dir}")
    print("next: podnet lab list; podnet lab down --name " + lab.name)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    name = args.name or manager.pick(None).name
    manager.down(name, say=_say)
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
                str(lab.plan.cluster_cidr),
            )
        )
    if not rows:
        print("no lab is running (podnet lab up)")
        return 0
    header = ("NAME", "NODES", "AGENTS UP", "PODS", "ROUTING", "POD CIDR")
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
