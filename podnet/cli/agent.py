"""``podnet agent``, ``podnet endpoints`` and ``podnet status``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from podnet.cni.protocol import DEFAULT_SOCKET


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("agent", help="run the node agent in the foreground")
    p.add_argument("--node-name", required=True, help="this node's name")
    p.add_argument("--pod-cidr", action="append", required=True, help="pod CIDR (repeat once for the IPv6 one)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket of the API (created mode 0600)")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/podnet"), help="IPAM and endpoint state")
    p.add_argument("--mtu", type=int, default=1500, help="pod MTU when the network config sets none")
    p.add_argument("--node-ip", default=None, help="IPv4 source of node→pod traffic (default: first global)")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="stderr log format")
    p.add_argument(
        "--kubeconfig", type=Path, default=None, help="enforce the policies of this API server (a cluster's or a lab's)"
    )
    p.add_argument("--datapath", choices=("ebpf", "none"), default="ebpf", help="policy datapath (with --kubeconfig)")
    p.add_argument(
        "--bpf-dir",
        type=Path,
        default=Path("/sys/fs/bpf/podnet"),
        help="bpffs directory for pinned programs and maps; one subdirectory per node",
    )
    p.add_argument("--flows-buffer", type=int, default=4096, help="flows kept in memory (0: no flow collection)")
    p.add_argument("--flows-export", type=Path, default=None, help="also write flows to this JSON-lines file")
    p.add_argument("--flows-export-max-mb", type=float, default=10.0, help="rotate the export file at this size")
    p.add_argument("--flows-export-backups", type=int, default=3, help="rotated export files kept")
    p.add_argument("--metrics-addr", default=None, help="serve Prometheus metrics on this loopback HOST:PORT")
    p.set_defaults(func=_agent)

    e: argparse.ArgumentParser = sub.add_parser("endpoints", help="list the agent's pod endpoints")
    e.add_argument("--socket", default=DEFAULT_SOCKET, help="the agent's unix socket")
    e.add_argument("-o", "--output", choices=("table", "json"), default="table")
    e.set_defaults(func=_endpoints)

    s: argparse.ArgumentParser = sub.add_parser("status", help="agent health, IPAM usage and version")
    s.add_argument("--socket", default=DEFAULT_SOCKET, help="the agent's unix socket")
    s.add_argument("-o", "--output", choices=("text", "json"), default="text")
    s.set_defaults(func=_status)


def _agent(args: argparse.Namespace) -> int:
    from podnet.agent import logs
    from podnet.agent.server import AgentConfig, run_agent

    logs.setup(args.log_format)
    config = AgentConfig(
        args.node_name, args.pod_cidr, Path(args.socket), args.state_dir, args.mtu, args.node_ip,
        args.kubeconfig, args.datapath, args.bpf_dir, args.flows_buffer, args.flows_export,
        int(args.flows_export_max_mb * 1024 * 1024), args.flows_export_backups, args.metrics_addr,
    )  # fmt: skip
    return run_agent(config)


def _endpoints(args: argparse.Namespace) -> int:
    from podnet.agent.client import get_json

    rows: list[dict[str, Any]] = get_json(args.socket, "/v1/endpoints")
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    header = ("POD", "CONTAINER", "IFNAME", "ADDRESSES", "HOST VETH", "NETWORK")
    table = [header]
    for r in rows:
        pod = f"{r['pod_namespace']}/{r['pod_name']}" if r["pod_name"] else "-"
        table.append((pod, r["container_id"][:12], r["ifname"], ",".join(r["addresses"]), r["host_veth"], r["network"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _status(args: argparse.Namespace) -> int:
    from podnet.agent.client import get_json

    doc: dict[str, Any] = get_json(args.socket, "/v1/status")
    if args.output == "json":
        print(json.dumps(doc, indent=2))
        return 0
    print(f"node:      {doc['node']}")
    print(f"health:    {'ok' if doc['healthy'] else 'DEGRADED'}")
    print(f"version:   {doc['version']}")
    print(f"uptime:    {doc['uptime_s']}s")
    print(f"endpoints: {doc['endpoints']}")
    for pool in doc["ipam"]:
        print(f"ipam:      {pool['cidr']}  {pool['used']}/{pool['size']} used")
    return 0
