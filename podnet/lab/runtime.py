"""The lab's container runtime: a pod is a network namespace wired by the real podnet CNI plugin,
served by its node's probe host on the pod's declared container ports.

Starting a pod: namespace → CNI ADD (the node's conflist, run inside the node's namespace, the way a
kubelet's runtime calls it) → probe sockets, opened inside the pod's namespace by the node's probe
host. A failure at any step undoes the steps before it, so a failed start leaves no namespace,
allocation or socket behind. Stopping tolerates what is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from podnet.errors import PodnetError
from podnet.k8s.model import Pod
from podnet.lab import fabric
from podnet.lab.cniexec import Attachment, ConflistRunner
from podnet.lab.manager import Lab, LabError
from podnet.lab.plan import NodePlan
from podnet.lab.probe import host_request

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


def _probe_request(pod: Pod, netns: str) -> dict[str, object]:
    by_proto: dict[str, list[int]] = {"TCP": [], "UDP": [], "SCTP": []}
    for p in pod.ports:
        by_proto[p.protocol].append(p.port)
    return {
        "op": "add",
        "name": pod.ref,
        "netns": f"{fabric.NETNS_DIR}/{netns}",
        "tcp": by_proto["TCP"],
        "udp": by_proto["UDP"],
        "sctp": by_proto["SCTP"],
    }


def _probe_call(lab: Lab, node: NodePlan, request: dict[str, object]) -> None:
    try:
        answer = host_request(str(lab.probe_socket(node)), request)
    except OSError as exc:
        raise LabError(f"probe host of {node.name}: {exc}") from exc
    if not answer.get("ok"):
        raise LabError(f"probe host of {node.name}: {answer.get('error')}")


def start_pod(lab: Lab, pod: Pod, node: NodePlan, uid: str | None = None) -> dict[str, Any]:
    """Create and wire the pod on ``node``; returns its record (also saved in the lab's record, with the
    API object's ``uid`` when given)."""
    netns = lab.plan.pod_netns(pod.namespace, pod.name)
    runner = _runner(lab, node)
    att = _attachment(lab, pod, netns)
    with ExitStack() as undo:
        fabric.ensure_netns(netns)
        undo.callback(fabric.remove_netns, netns)
        result = runner.add(att)
        undo.callback(runner.delete, att)
        _probe_call(lab, node, _probe_request(pod, netns))
        undo.callback(_stop_probe, lab, node, pod.ref)
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
        if uid is not None:
            record["uid"] = uid
        with lab.lock:
            lab.pods[pod.ref] = record
            lab.save()
        undo.pop_all()
    return record


def _stop_probe(lab: Lab, node: NodePlan, ref: str) -> None:
    """Close the pod's probe sockets; a probe host that is gone (its sockets with it) is fine."""
    with contextlib.suppress(OSError):
        host_request(str(lab.probe_socket(node)), {"op": "remove", "name": ref})


def stop_pod(lab: Lab, ref: str) -> None:
    """Stop the probe, CNI DEL, remove the namespace; each step tolerates what is already gone."""
    with lab.lock:
        record = lab.pods.get(ref)
    if record is None:
        return
    node = lab.plan.node(record["node"])
    _stop_probe(lab, node, ref)
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
