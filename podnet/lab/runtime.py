"""The lab's container runtime: a pod is a network namespace wired by the real podnet CNI plugin,
running the probe server on the pod's declared container ports.

Starting a pod: namespace → CNI ADD (the node's conflist, run inside the node's namespace, the way a
kubelet's runtime calls it) → probe server. A failure at any step undoes the steps before it, so a
failed start leaves no namespace, allocation or process behind. Stopping tolerates what is gone.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from podnet.errors import PodnetError
from podnet.k8s.model import Pod
from podnet.lab import fabric, procs
from podnet.lab.cniexec import Attachment, ConflistRunner
from podnet.lab.manager import Lab, LabError
from podnet.lab.plan import NodePlan

REFERENCE_PLUGINS = "/usr/lib/cni"


def container_id(lab: Lab, pod: Pod) -> str:
    return hashlib.sha256(f"{lab.name}/{pod.namespace}/{pod.name}".encode()).hexdigest()[:32]


def _runner(lab: Lab, node: NodePlan) -> ConflistRunner:
    conf_dir = lab.cni_conf_dir(node)
    conflist = json.loads(next(conf_dir.glob("*.conflist")).read_text())
    return ConflistRunner(conflist, [lab.cni_bin, Path(REFERENCE_PLUGINS)], node_netns=node.netns)


def _attachment(lab: Lab, pod: Pod, netns: str) -> Attachment:
    args = (("K8S_POD_NAMESPACE", pod.namespace), ("K8S_POD_NAME", pod.name))
    return Attachment(container_id(lab, pod), f"/run/netns/{netns}", "eth0", args)


def _probe_argv(pod: Pod) -> list[str]:
    by_proto: dict[str, list[str]] = {"TCP": [], "UDP": [], "SCTP": []}
    for p in pod.ports:
        by_proto[p.protocol].append(str(p.port))
    argv = [sys.executable, "-m", "podnet.lab.probe", "serve", "--name", pod.ref]
    for proto, ports in by_proto.items():
        if ports:
            argv += [f"--{proto.lower()}", ",".join(ports)]
    return argv


def start_pod(lab: Lab, pod: Pod, node: NodePlan) -> dict[str, Any]:
    """Create and wire the pod on ``node``; returns its record (also saved in the lab's record)."""
    netns = lab.plan.pod_netns(pod.namespace, pod.name)
    runner = _runner(lab, node)
    att = _attachment(lab, pod, netns)
    with ExitStack() as undo:
        fabric.ensure_netns(netns)
        undo.callback(fabric.remove_netns, netns)
        result = runner.add(att)
        undo.callback(runner.delete, att)
        marker = f"{pod.ref}"
        probe = procs.start(_probe_argv(pod), lab.dir / "pods" / f"{netns}.log", marker, netns=netns)
        undo.callback(procs.stop, probe)
        _wait_probe(probe, lab, netns)
        ips = [ip["address"].split("/")[0] for ip in result.get("ips", [])]
        record = {
            "namespace": pod.namespace,
            "name": pod.name,
            "node": node.name,
            "netns": netns,
            "container_id": att.container_id,
            "ips": ips,
            "ports": [{"port": p.port, "protocol": p.protocol, "name": p.name} for p in pod.ports],
            "labels": pod.labels,
            "result": result,
        }
        with lab.lock:
            lab.pods[pod.ref] = record
            lab.procs[f"probe/{pod.ref}"] = probe
            lab.save()
        undo.pop_all()
    return record


def _wait_probe(probe: procs.Proc, lab: Lab, netns: str, timeout: float = 10.0) -> None:
    log = lab.dir / "pods" / f"{netns}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and b"serving" in log.read_bytes():
            return
        if not procs.alive(probe):
            raise LabError(f"probe server of {netns} exited: {log.read_text(errors='replace')[-500:]}")
        time.sleep(0.02)
    raise LabError(f"probe server of {netns} did not start within {timeout:.0f}s")


def stop_pod(lab: Lab, ref: str) -> None:
    """Stop the probe, CNI DEL, remove the namespace; each step tolerates what is already gone."""
    with lab.lock:
        record = lab.pods.get(ref)
        probe = lab.procs.pop(f"probe/{ref}", None)
    if record is None:
        return
    if probe is not None:
        procs.stop(probe)
    node = lab.plan.node(record["node"])
    att = Attachment(record["container_id"], f"/run/netns/{record['netns']}", "eth0", result=record.get("result", {}))
    first: PodnetError | None = None
    try:
        _runner(lab, node).delete(att)
    except PodnetError as exc:
        first = exc
    fabric.remove_netns(record["netns"])
    with lab.lock:
        lab.pods.pop(ref, None)
        lab.save()
    if first is not None:
        raise first
