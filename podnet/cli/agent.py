"""``podnet agent``, ``podnet endpoints`` and ``podnet status``."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podnet.cni.protocol import DEFAULT_SOCKET
from podnet.errors import UsageError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("agent", help="run the node agent in the foreground")
    p.add_argument("--node-name", required=True, help="this node's name")
    p.add_argument("--pod-cidr", action="append", default=[], help="pod CIDR (repeat once for the IPv6 one)")
    p.add_argument(
        "--pod-cidr-from-node",
        action="store_true",
        help="read the pod CIDRs from this node's Node object (spec.podCIDRs), instead of --pod-cidr",
    )
    p.add_argument(
        "--in-cluster",
        action="store_true",
        help="inside a Kubernetes pod: reach the API with the pod's service account (writes STATE_DIR/kubeconfig)",
    )
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket of the API (created mode 0600)")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/podnet"), help="IPAM and endpoint state")
    p.add_argument("--mtu", type=int, default=1500, help="pod MTU when the network config sets none")
    p.add_argument("--node-ip", default=None, help="IPv4 source of node→pod traffic (default: first global)")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="stderr log format")
    p.add_argument(
        "--kubeconfig", type=Path, default=None, help="enforce the policies of this API server (a cluster's or a lab's)"
    )
    p.add_argument(
        "--datapath",
        choices=("ebpf", "nft", "none"),
        default="ebpf",
        help="policy datapath (with --kubeconfig): eBPF tc programs, or an nftables table for kernels without eBPF",
    )
    p.add_argument(
        "--nflog-group",
        type=int,
        default=None,
        help="--datapath nft: NFLOG group its flow events use (default: derived from the node name)",
    )
    p.add_argument(
        "--bpf-dir",
        type=Path,
        default=Path("/sys/fs/bpf/podnet"),
        help="bpffs directory for pinned programs and maps; one subdirectory per node",
    )
    p.add_argument(
        "--uplink",
        action="append",
        default=None,
        metavar="DEVICE",
        help="--datapath ebpf: a device other nodes' packets arrive on, where they are judged and handed to the "
        "pod directly (repeat; default: the device of --node-ip and any VXLAN/Geneve device; 'none': no device)",
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
    kubeconfig = args.kubeconfig
    if args.in_cluster:
        kubeconfig = write_in_cluster_kubeconfig(args.state_dir / "kubeconfig", os.environ, SERVICE_ACCOUNT)
    cidrs = list(args.pod_cidr)
    if args.pod_cidr_from_node:
        cidrs = node_pod_cidrs(kubeconfig, args.node_name)
    if not cidrs:
        raise UsageError("podnet agent needs --pod-cidr (or --pod-cidr-from-node)")
    if args.nflog_group is not None and not 0 <= args.nflog_group <= 0xFFFF:
        raise UsageError(f"--nflog-group: {args.nflog_group} is not in 0..65535")
    config = AgentConfig(
        args.node_name, cidrs, Path(args.socket), args.state_dir, args.mtu, args.node_ip,
        kubeconfig, args.datapath, args.bpf_dir, args.flows_buffer, args.flows_export,
        int(args.flows_export_max_mb * 1024 * 1024), args.flows_export_backups, args.metrics_addr,
        nflog_group=args.nflog_group, uplinks=uplink_devices(args.uplink),
    )  # fmt: skip
    return run_agent(config)


def uplink_devices(given: list[str] | None) -> tuple[str, ...] | None:
    """``--uplink`` values: None (found at start) when absent, () for ``none``."""
    if given is None:
        return None
    if "none" in given:
        if len(given) > 1:
            raise UsageError("--uplink none cannot be combined with devices")
        return ()
    return tuple(given)


def write_in_cluster_kubeconfig(dest: Path, env: Mapping[str, str], account: Path) -> Path:
    """A kubeconfig for the API server a pod sees (``KUBERNETES_SERVICE_HOST/PORT``), authenticating
    with the pod's service-account token file (read again by the client when it loads the file)."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise UsageError("--in-cluster: KUBERNETES_SERVICE_HOST is not set (not running in a Kubernetes pod?)")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "in-cluster", "cluster": {"server": server, "certificate-authority": str(account / "ca.crt")}}
        ],
        "users": [{"name": "podnet", "user": {"tokenFile": str(account / "token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "podnet"}}],
        "current-context": "in-cluster",
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(doc, indent=2) + "\n")  # JSON is YAML
    dest.chmod(0o600)
    return dest


def node_pod_cidrs(kubeconfig: Path | None, node_name: str) -> list[str]:
    """``spec.podCIDRs`` (or ``spec.podCIDR``) of the Node ``node_name``."""
    from kubernetes import client as k8s

    from podnet.kube.client import api_client

    api = api_client(kubeconfig)
    doc: dict[str, Any] = api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
        k8s.CoreV1Api(api).read_node(node_name)
    )
    spec = doc.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    if not cidrs:
        raise UsageError(f"node {node_name} has no spec.podCIDRs: give --pod-cidr")
    return [str(c) for c in cidrs]


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
