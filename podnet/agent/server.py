"""Running the agent: state-dir lock, start-up reconcile, uvicorn on a 0600 unix socket."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from podnet.agent.api import create_app
from podnet.agent.endpoints import EndpointRegistry
from podnet.agent.policy import PolicyLoop
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
    datapath: str = "ebpf"  # the policy datapath: "ebpf" or "none"
    bpf_dir: Path = Path("/sys/fs/bpf/podnet")
    flows_buffer: int = 4096  # flows kept in the ring store (0: no flow collection)
    flows_export: Path | None = None  # JSON-lines export file, rotated by size
    flows_export_max_bytes: int = 10 * 1024 * 1024
    flows_export_backups: int = 3
    metrics_addr: str | None = None  # loopback HOST:PORT for Prometheus metrics


@contextlib.contextmanager
def state_dir_lock(state_dir: Path) -> Iterator[None]:
    """Exclusive for the agent's lifetime: a second agent on the same state dir fails at once."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UsageError(f"another podnet agent holds {state_dir}") from exc
        yield
    finally:
        os.close(fd)


def bind_unix(path: Path) -> socket.socket:
    """A listening socket at ``path`` with mode 0600; a stale socket file is replaced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if path.exists():
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise UsageError(f"an agent already answers on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


def build_service(config: AgentConfig) -> tuple[CniService, NetlinkDatapath]:
    cidrs = [parse_cidr(c) for c in config.pod_cidrs]
    if len(cidrs) > 2 or len({c.version for c in cidrs}) != len(cidrs):
        raise UsageError("--pod-cidr takes one IPv4 and/or one IPv6 CIDR")
    ipam = Ipam(DiskIpamStore(config.state_dir), cidrs)
    registry = EndpointRegistry(config.state_dir / "endpoints.json")
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


def start_policy(
    config: AgentConfig,
    service: CniService,
    flows: FlowCollector | None = None,
    host_addresses: tuple[IPAddress, ...] = (),
) -> PolicyLoop | None:
    """The policy loop when the agent has a kubeconfig and a datapath; None otherwise. ``host_addresses``:
    the node's addresses its packets to pods come from (the host identity)."""
    if config.kubeconfig is None or config.datapath == "none":
        return None
    from podnet.agent.policy import EbpfPolicyDatapath
    from podnet.k8s.client import KubeTransport
    from podnet.k8s.source import WatchSource

    source = WatchSource(KubeTransport.from_kubeconfig(config.kubeconfig))
    dp = EbpfPolicyDatapath(str(config.bpf_dir / config.node_name))
    loop = PolicyLoop(source, service.registry, dp, flows, host_addresses)
    loop.start()
    service.policy = loop
    log.info("policy enforced", extra={"datapath": config.datapath, "kubeconfig": str(config.kubeconfig)})
    return loop


def run_agent(config: AgentConfig) -> int:
    with state_dir_lock(config.state_dir):
        service, datapath = build_service(config)
        datapath.prepare()
        service.reconcile()
        flows = build_flows(config)
        node_address = (ipaddress.ip_address(datapath.node_ipv4),) if datapath.node_ipv4 else ()
        policy = start_policy(config, service, flows, node_address)
        sock = bind_unix(config.socket_path)
        app = create_app(service, flows.store if flows is not None else None)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
        app.state.stopping = lambda: server.should_exit  # ends --follow streams, so shutdown does not wait on them
        log.info(
            "agent listening",
            extra={"node": config.node_name, "socket": str(config.socket_path), "cidrs": list(config.pod_cidrs)},
        )
        try:
            server.run(sockets=[sock])
        finally:
            app.state.worker.shutdown(wait=True)
            if policy is not None:
                policy.close()
            if flows is not None:
                flows.close()
            datapath.close()
            with contextlib.suppress(FileNotFoundError):
                config.socket_path.unlink()
            log.info("agent stopped")
    return 0
