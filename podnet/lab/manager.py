"""Bringing a lab up and down: namespaces, fabric, one podnet agent per node, and the lab's record.

The record (``<root>/<name>/lab.json``, root ``/run/podnet/labs`` or ``$PODNET_LAB_ROOT``) lists
what the lab made; ``down`` removes exactly that, plus anything else carrying the lab's name
prefix, so it also cleans up after a crash half-way through ``up``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.agent.client import get_json
from podnet.cni.install import install
from podnet.datapath.ebpf.system import unmount
from podnet.errors import PodnetError, UsageError
from podnet.lab import fabric, procs
from podnet.lab.apiserver import process as apiserver_process
from podnet.lab.plan import LabPlan, NodePlan, Routing, make_plan, validate_name
from podnet.statefile import AtomicJsonFile

Say = Callable[[str], None]
DATAPATHS = {"ebpf": "eBPF", "nft": "nftables"}


class LabError(PodnetError):
    cni_code = 112


def lab_root() -> Path:
    return Path(os.environ.get("PODNET_LAB_ROOT", "/run/podnet/labs"))


@dataclass
class Lab:
    """A lab's plan, where its files live and the processes it runs."""

    plan: LabPlan
    dir: Path
    procs: dict[str, procs.Proc] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)  # guards procs, pods

    @property
    def name(self) -> str:
        return self.plan.name

    def node_dir(self, node: NodePlan) -> Path:
        return self.dir / "nodes" / node.name

    def agent_socket(self, node: NodePlan) -> Path:
        return self.node_dir(node) / "agent.sock"

    def probe_socket(self, node: NodePlan) -> Path:
        return self.node_dir(node) / "probe.sock"

    @property
    def datapath(self) -> str:
        """Every agent's policy datapath: ``ebpf`` or ``nft`` (``podnet lab up --datapath``)."""
        return str(self.extra.get("datapath", "ebpf"))

    @property
    def apiserver_dir(self) -> Path:
        return self.dir / "apiserver"

    @property
    def bpf_dir(self) -> Path:
        return self.dir / "bpf"

    @property
    def kubeconfig(self) -> Path:
        return self.apiserver_dir / "kubeconfig"

    @property
    def cni_bin(self) -> Path:
        return self.dir / "cni" / "bin"

    def cni_conf_dir(self, node: NodePlan) -> Path:
        return self.node_dir(node) / "net.d"

    def record(self) -> AtomicJsonFile:
        return AtomicJsonFile(self.dir / "lab.json", fsync=False)

    def save(self) -> None:
        """Write the record. Several processes write it (the controller: pods; ``lab restart-agent``:
        a process), so a process entry on disk that is alive wins over this copy's entry when that one
        is dead: a stale in-memory pid never replaces a restarted process's."""
        with self.lock:
            rec = self.record()
            with rec.locked():
                on_disk = rec.read() or {}
                merged = {k: procs.Proc.from_json(v) for k, v in (on_disk.get("procs") or {}).items()}
                for key, proc in self.procs.items():
                    other = merged.get(key)
                    if other is None or other == proc or procs.alive(proc) or not procs.alive(other):
                        merged[key] = proc
                self.procs = merged
                doc = {
                    "name": self.plan.name,
                    "nodes": len(self.plan.nodes),
                    "pod_cidr": str(self.plan.cluster_cidr),
                    "routing": self.plan.routing,
                    "procs": {k: p.to_json() for k, p in self.procs.items()},
                    "pods": json.loads(json.dumps(self.pods)),
                    "extra": dict(self.extra),
                }
                rec.write(doc)


def load(name: str) -> Lab:
    directory = lab_root() / validate_name(name)
    rec = AtomicJsonFile(directory / "lab.json", fsync=False)
    with rec.locked():
        doc = rec.read()
    if doc is None:
        raise LabError(f"no lab named {name!r} (podnet lab list)")
    plan = make_plan(doc["name"], int(doc["nodes"]), doc["pod_cidr"], doc["routing"])
    lab = Lab(plan, directory, {k: procs.Proc.from_json(v) for k, v in doc["procs"].items()})
    lab.pods = dict(doc.get("pods", {}))
    lab.extra = dict(doc.get("extra", {}))
    return lab


def names() -> list[str]:
    root = lab_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / "lab.json").exists())


def pick(name: str | None) -> Lab:
    """The lab called ``name``, or the only lab when no name is given."""
    if name is not None:
        return load(name)
    found = names()
    if len(found) == 1:
        return load(found[0])
    if not found:
        raise LabError("no lab is running: start one with `podnet lab up`")
    raise UsageError(f"several labs are running ({', '.join(found)}): say which with --name")


def _wait_agent(lab: Lab, node: NodePlan, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    proc = lab.procs[f"agent/{node.name}"]
    last = ""
    while time.monotonic() < deadline:
        if not procs.alive(proc):
            log = (lab.node_dir(node) / "agent.log").read_text(errors="replace")[-2000:]
            raise LabError(f"the agent of {node.name} exited during start-up:\n{log}")
        try:
            get_json(str(lab.agent_socket(node)), "/v1/status", timeout=1.0)
            return
        except PodnetError as exc:
            last = exc.message
        time.sleep(0.05)
    raise LabError(f"the agent of {node.name} did not answer within {timeout:.0f}s: {last}")


def restart_agent(lab: Lab, node: NodePlan) -> None:
    """Stop the node's agent if it runs, start it again and wait until it answers. Enforcement never
    lapses: the pinned programs and maps stay in the kernel, and the new agent re-syncs them from the
    API server and its endpoint state on disk."""
    old = lab.procs.get(f"agent/{node.name}")
    if old is not None:
        procs.stop(old)
    start_agent(lab, node)


METRICS_PORT = 9962  # each agent's Prometheus metrics, on 127.0.0.1 inside its node's namespace (Cilium's port)


def metrics_addr(node: NodePlan) -> str:
    """Where the node's agent serves metrics: loopback of the node's namespace (each node has its own)."""
    return f"127.0.0.1:{METRICS_PORT}"


def flows_export(lab: Lab, node: NodePlan) -> Path:
    """The node agent's JSON-lines flow export (rotated by the agent at 10 MB, 3 backups)."""
    return lab.node_dir(node) / "flows.jsonl"


def scrape_metrics(lab: Lab, node: NodePlan, timeout: float = 5.0) -> str:
    """The node agent's metrics, in Prometheus' text format, fetched from inside the node's namespace."""
    url = f"http://{metrics_addr(node)}/metrics"
    code = (
        "import sys, urllib.request; "
        f"sys.stdout.buffer.write(urllib.request.urlopen({url!r}, timeout={timeout}).read())"
    )
    argv = ["ip", "netns", "exec", node.netns, sys.executable, "-I", "-S", "-c", code]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise LabError(f"metrics of {node.name} ({url} in {node.netns}): {tail[0]}")
    return proc.stdout


def start_agent(lab: Lab, node: NodePlan) -> None:
    """Start (or restart) the podnet agent of ``node`` inside the node's namespace, with metrics on
    :func:`metrics_addr` and flows exported to :func:`flows_export`."""
    key = f"agent/{node.name}"
    old = lab.procs.get(key)
    if old is not None and procs.alive(old):
        return
    state = lab.node_dir(node)
    argv = [
        sys.executable, "-m", "podnet.cli.main", "agent",
        "--node-name", node.name,
        "--pod-cidr", str(node.pod_cidr),
        "--socket", str(lab.agent_socket(node)),
        "--state-dir", str(state / "state"),
        "--node-ip", str(node.underlay_ip),
        "--kubeconfig", str(lab.kubeconfig),
        "--bpf-dir", str(lab.bpf_dir),
        "--datapath", lab.datapath,
        "--metrics-addr", metrics_addr(node),
        "--flows-export", str(flows_export(lab, node)),
    ]  # fmt: skip
    lab.procs[key] = procs.start(argv, state / "agent.log", str(lab.agent_socket(node)), netns=node.netns)
    lab.save()
    _wait_agent(lab, node)


HOST_PROBE_PORTS: dict[str, list[int]] = {"tcp": [4240], "udp": [], "sctp": []}  # on each node's underlay IP
OUTSIDE_PROBE_PORTS: dict[str, list[int]] = {"tcp": [443], "udp": [53], "sctp": []}  # on the fabric's outside IP


def start_probe_host(lab: Lab, node: NodePlan, timeout: float = 10.0) -> None:
    """Start (or restart) the node's probe host: one process serving the probe ports of the node's pods,
    of the node itself (``host:<node>`` on its underlay address) and, on the first node, of the outside."""
    from podnet.lab.probe import host_request

    _start_probe_host(lab, f"probe/{node.name}", lab.probe_socket(node), lab.node_dir(node) / "probe.log", timeout)
    served = [(f"host:{node.name}", node.netns, HOST_PROBE_PORTS)]
    if node.index == 0:
        served.append(("outside", lab.plan.fabric_netns, OUTSIDE_PROBE_PORTS))
    for name, netns, ports in served:
        answer = host_request(
            str(lab.probe_socket(node)), {"op": "add", "name": name, "netns": f"{fabric.NETNS_DIR}/{netns}", **ports}
        )
        if not answer.get("ok"):
            raise LabError(f"probe host of {node.name}: serving {name}: {answer.get('error')}")


def _start_probe_host(lab: Lab, key: str, control: Path, log: Path, timeout: float) -> None:
    old = lab.procs.get(key)
    if old is not None and procs.alive(old):
        return
    control.parent.mkdir(parents=True, exist_ok=True)
    control.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "podnet.lab.probe", "host", "--control", str(control)]
    lab.procs[key] = proc = procs.start(argv, log, str(control))
    lab.save()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # the socket file appears at bind(), before listen(): only a connection that succeeds counts
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(control))
            return
        if not procs.alive(proc):
            raise LabError(f"{key} exited: {log.read_text(errors='replace')[-500:]}")
        time.sleep(0.02)
    raise LabError(f"{key} did not start within {timeout:.0f}s")


def controller_marker(name: str) -> str:
    return f"lab\0controller\0--name\0{name}\0"


def start_controller(lab: Lab) -> None:
    argv = [sys.executable, "-m", "podnet.cli.main", "lab", "controller", "--name", lab.name]
    lab.procs["controller"] = procs.start(argv, lab.dir / "controller.log", controller_marker(lab.name))
    lab.save()


def up(name: str, nodes: int, pod_cidr: str, routing: Routing, say: Say, datapath: str = "ebpf") -> Lab:
    if datapath not in DATAPATHS:
        raise UsageError(f"datapath: {datapath!r} is not one of {', '.join(DATAPATHS)}")
    plan = make_plan(name, nodes, pod_cidr, routing)
    directory = lab_root() / name
    if (directory / "lab.json").exists() or fabric.list_netns(plan.prefix):
        old = None
        with contextlib.suppress(PodnetError, KeyError, ValueError):
            old = load(name)
        if old is not None and old.procs and all(procs.alive(p) for p in old.procs.values()):
            raise LabError(f"lab {name!r} is already up (podnet lab down --name {name} first)")
        say(f"cleaning up what an earlier lab {name!r} left behind")
        down(name, say=lambda _m: None)
    lab = Lab(plan, directory)
    lab.extra["datapath"] = datapath
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lab.save()
        say(f"fabric: namespace {plan.fabric_netns}, underlay bridge {plan.bridge}")
        fabric.ensure_fabric(plan)
        for node in plan.nodes:
            say(f"node {node.name}: namespace {node.netns}, underlay {node.underlay_ip}, pods {node.pod_cidr}")
            fabric.ensure_node(plan, node)
        for node in plan.nodes:
            fabric.ensure_routes(plan, node)
        fabric.ensure_outside_routes(plan)
        say(f"routes between nodes: {routing}")
        install(lab.cni_bin, lab.dir / "cni" / "net.d")
        netns_args = [x for node in plan.nodes for x in ("--also-in-netns", f"{fabric.NETNS_DIR}/{node.netns}")]
        server = apiserver_process.start(lab.apiserver_dir, extra_args=("--name", f"podnet-lab-{name}", *netns_args))
        lab.extra["apiserver"] = server.url
        say(f"API server: {server.url} (kubeconfig {server.kubeconfig}), reachable from every node")
        for node in plan.nodes:
            install(lab.cni_bin, lab.cni_conf_dir(node), socket_path=str(lab.agent_socket(node)))
            start_agent(lab, node)
            say(f"agent {node.name}: up ({lab.agent_socket(node)}), enforcing policy with {DATAPATHS[datapath]}")
            start_probe_host(lab, node)
        start_controller(lab)
        say("controller: scheduling pods, running their sandboxes")
    except BaseException:
        down(name, say=lambda _m: None)
        raise
    lab.save()
    return lab


def down(name: str, say: Say) -> list[str]:
    """Stop every process of the lab and remove its namespaces and files; what is gone already is fine."""
    validate_name(name)
    directory = lab_root() / name
    prefix = make_plan(name, 1, "10.0.0.0/16", "direct").prefix
    stopped = []
    try:
        lab: Lab | None = load(name)
    except (PodnetError, KeyError, ValueError):
        lab = None
    if lab is not None:
        order = {"controller": 0, "probe": 1}
        for key, proc in sorted(lab.procs.items(), key=lambda kv: order.get(kv[0].split("/")[0], 2)):
            procs.stop(proc)
            stopped.append(key)
    if apiserver_process.stop(directory / "apiserver"):
        stopped.append("apiserver")
    removed = fabric.remove_lab_namespaces(prefix)
    bpf = directory / "bpf"
    while os.path.ismount(bpf):  # the agents' bpffs: pinned programs and maps go with it
        unmount(bpf)
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
    say(f"lab {name}: stopped {len(stopped)} process(es), removed {len(removed)} namespace(s)")
    return removed
