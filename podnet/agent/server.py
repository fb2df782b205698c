"""Running the agent: state-dir and socket locks (:mod:`podnet.agent.guard`), start-up reconcile, uvicorn
on a 0600 unix socket."""

from __future__ import annotations

import ipaddress
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from podnet.agent.api import create_app
from podnet.agent.bootstate import claim_state_dir
from podnet.agent.endpoints import EndpointRegistry
from podnet.agent.guard import agent_locks, bind_unix
from podnet.agent.policy import PolicyDatapath, PolicyLoop
from podnet.agent.service import CniService
from podnet.datapath.netlink import NetlinkDatapath
from podnet.errors import UsageError
from podnet.flows.collector import FlowCollector
from podnet.ipam.allocator import parse_cidr
from podnet.ipam.service import Ipam
from podnet.ipam.store import DiskIpamStore
from podnet.k8s.model import IPAddress

log = logging.getLogger("podnet.agent")


@dataclass(frozen=True)
class AgentConfig:
    node_name: str
    pod_cidrs: Sequence[str]
    socket_path: Path
    state_dir: Path
    mtu: int = 1500
    node_ipv4: str | None = None
    kubeconfig: Path | None = None  # with it: policy from this API server, enforced by ``datapath``
    datapath: str = "ebpf"  # the policy datapath: "ebpf", "nft" or "none"
    bpf_dir: Path = Path("/sys/fs/bpf/podnet")  # ebpf: pins under <bpf_dir>/<node>
    flows_buffer: int = 4096  # flows kept in the ring store (0: no flow collection)
    flows_export: Path | None = None  # JSON-lines export file, rotated by size
    flows_export_max_bytes: int = 10 * 1024 * 1024
    flows_export_backups: int = 3
    metrics_addr: str | None = None  # loopback HOST:PORT for Prometheus metrics
    nflog_group: int | None = None  # nft: NFLOG group of its events (default: derived from the node name)
    uplinks: tuple[str, ...] | None = None  # ebpf: devices for pn_from_uplink (None: found; (): none)


def build_service(config: AgentConfig) -> tuple[CniService, NetlinkDatapath]:
    cidrs = [parse_cidr(c) for c in config.pod_cidrs]
    if len(cidrs) > 2 or len({c.version for c in cidrs}) != len(cidrs):
        raise UsageError("--pod-cidr takes one IPv4 and/or one IPv6 CIDR")
    claim_state_dir(config.state_dir)  # state of an earlier boot is set aside: the hot path needs no fsync
    ipam = Ipam(DiskIpamStore(config.state_dir, fsync=False), cidrs)
    registry = EndpointRegistry(config.state_dir / "endpoints.json", fsync=False)
    datapath = NetlinkDatapath(node_ipv4=config.node_ipv4)
    return CniService(config.node_name, ipam, registry, datapath, config.mtu), datapath


def build_flows(config: AgentConfig) -> FlowCollector | None:
    """The flow pipeline (store, export, metrics) when the agent enforces policy and keeps flows."""
    if config.kubeconfig is None or config.datapath == "none" or config.flows_buffer <= 0:
        return None
    from podnet.flows.export import JsonlExporter
    from podnet.flows.metrics import FlowMetrics
    from podnet.flows.store import FlowStore

    exporter = None
    if config.flows_export is not None:
        exporter = JsonlExporter(config.flows_export, config.flows_export_max_bytes, config.flows_export_backups)
    metrics = None
    if config.metrics_addr is not None:
        metrics = FlowMetrics()
        try:
            host, port = metrics.serve(config.metrics_addr)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        log.info("metrics listening", extra={"addr": f"{host}:{port}"})
    return FlowCollector(config.node_name, FlowStore(config.flows_buffer), exporter, metrics)


def make_policy_datapath(config: AgentConfig, uplinks: Sequence[str] = ()) -> PolicyDatapath:
    """The datapath ``config.datapath`` names: eBPF pins per node (with ``pn_from_uplink`` on ``uplinks``),
    or the node's nftables table."""
    if config.datapath == "ebpf":
        from podnet.agent.policy import EbpfPolicyDatapath

        return EbpfPolicyDatapath(str(config.bpf_dir / config.node_name), uplinks)
    if config.datapath == "nft":
        from podnet.agent.nftpath import NftPolicyDatapath

        return NftPolicyDatapath(config.node_name, log_group=config.nflog_group, events=config.flows_buffer > 0)
    raise UsageError(f"--datapath: unknown datapath {config.datapath!r} (ebpf, nft or none)")


def start_policy(
    config: AgentConfig,
    service: CniService,
    flows: FlowCollector | None = None,
    host_addresses: tuple[IPAddress, ...] = (),
    uplinks: Sequence[str] = (),
) -> PolicyLoop | None:
    """The policy loop when the agent has a kubeconfig and a datapath; None otherwise. ``host_addresses``:
    the node's addresses its packets to pods come from (the host identity)."""
    if config.kubeconfig is None or config.datapath == "none":
        return None
    from podnet.k8s.source import WatchSource
    from podnet.kube.client import KubeTransport

    source = WatchSource(KubeTransport.from_kubeconfig(config.kubeconfig))
    loop = PolicyLoop(source, service.registry, make_policy_datapath(config, uplinks), flows, host_addresses)
    loop.start()
    service.policy = loop
    log.info("policy enforced", extra={"datapath": config.datapath, "kubeconfig": str(config.kubeconfig)})
    return loop


def _stop_requested(signum: int, frame: object) -> None:
    """What uvicorn's re-raised stop signal runs: nothing, so ``run_agent`` goes on to clean up."""


def run_agent(config: AgentConfig) -> int:
    with agent_locks(config.state_dir, config.socket_path):
        service, datapath = build_service(config)
        datapath.prepare()
        service.reconcile()
        flows = build_flows(config)
        node_address = (ipaddress.ip_address(datapath.node_ipv4),) if datapath.node_ipv4 else ()
        uplinks = config.uplinks if config.uplinks is not None else datapath.uplink_devices()
        policy = start_policy(config, service, flows, node_address, uplinks)
        bound = bind_unix(config.socket_path)
        app = create_app(service, flows.store if flows is not None else None)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
        app.state.stopping = lambda: server.should_exit  # ends --follow streams, so shutdown does not wait on them
        log.info(
            "agent listening",
            extra={"node": config.node_name, "socket": str(config.socket_path), "cidrs": list(config.pod_cidrs)},
        )
        # uvicorn re-raises SIGTERM/SIGINT once it has shut down, with the handler in place when it
        # started: with Python's default one the process died there, skipping the cleanup below.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop_requested)
        try:
            server.run(sockets=[bound.sock])
        finally:
            app.state.worker.shutdown(wait=True)
            if policy is not None:
                policy.close()
            if flows is not None:
                flows.close()
            datapath.close()
            bound.unlink()
            log.info("agent stopped")
    return 0
