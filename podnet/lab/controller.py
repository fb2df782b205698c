"""The lab's control loops: a workload controller, a scheduler and a kubelet, in one process.

Level-triggered: after any change from the API server (and every few seconds), ``reconcile`` makes the
world match the objects:

- Deployments and StatefulSets get their ``replicas`` Pods (owned by them, named ``<name>-<i>``);
  extra Pods are deleted.
- Pods without ``spec.nodeName`` are bound to the node running the fewest pods (or keep the node
  their manifest names).
- A Pod bound to a lab node gets a sandbox from the runtime (namespace, podnet CNI ADD, probe
  server) and its addresses are written to ``status``; a Pod that is gone loses its sandbox (CNI DEL).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from podnet.errors import PodnetError
from podnet.k8s.manifests import Document
from podnet.k8s.model import Source
from podnet.k8s.parse import build_cluster
from podnet.k8s.source import WatchSource
from podnet.kube.objects import ObjectClient
from podnet.lab import runtime
from podnet.lab.manager import Lab

log = logging.getLogger("podnet.lab.controller")
Obj = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet")
KINDS = ("Namespace", "Pod", *WORKLOADS)
PARALLEL_STARTS = 24


def _ref(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace') or 'default'}/{meta['name']}"


def _owner_uid(pod: Obj) -> str | None:
    for owner in pod["metadata"].get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("uid"))
    return None


def desired_pod(workload: Obj, index: int) -> Obj:
    """The Pod a workload wants at ``index``: its template, named ``<name>-<index>``, owned by it."""
    meta = workload["metadata"]
    template = copy.deepcopy(workload["spec"].get("template") or {})
    tmeta = template.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{index}",
            "namespace": meta.get("namespace") or "default",
            "labels": dict(tmeta.get("labels") or {}),
            "ownerReferences": [
                {
                    "apiVersion": workload.get("apiVersion", "apps/v1"),
                    "kind": workload["kind"],
                    "name": meta["name"],
                    "uid": meta.get("uid", ""),
                    "controller": True,
                }
            ],
        },
        "spec": template.get("spec") or {"containers": []},
    }


class Controller:
    """The control loops. Sandbox starts run on a pool of :data:`PARALLEL_STARTS` threads and do not hold up
    the loop: a pod created or bound while others start is scheduled and started on the next turn, not
    after the whole wave (the last pod of a 100-replica Deployment used to wait for the 99 before it).
    ``_starting`` (guarded by ``_lock``) names the pods whose start is under way, so none starts twice."""

    def __init__(self, lab: Lab, client: ObjectClient, source: WatchSource) -> None:
        self.lab = lab
        self.client = client
        self.source = source
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_STARTS, thread_name_prefix="podnet-start")
        self._lock = threading.Lock()
        self._starting: set[str] = set()

    def run(self, stop: threading.Event, resync: float = 3.0, batch: float = 0.2) -> None:
        self.source.start()
        try:
            while not stop.is_set():
                change = self.source.next_change(timeout=resync)
                # drain what is queued (up to ``batch`` seconds): one reconcile serves a burst of changes
                deadline = time.monotonic() + batch
                while change is not None and not stop.is_set() and time.monotonic() < deadline:
                    change = self.source.next_change(timeout=0.05)
                if self.source.synced.is_set():
                    try:
                        self.reconcile()
                    except PodnetError as exc:
                        log.warning("reconcile: %s", exc.message)
        finally:
            self._pool.shutdown(wait=True)

    def reconcile(self) -> None:
        pods = self.source.objects("Pod")
        self._workloads(pods)
        pods = self.source.objects("Pod")
        self._schedule(pods)
        self._kubelet(self.source.objects("Pod"))

    def _workloads(self, pods: list[Obj]) -> None:
        for kind in WORKLOADS:
            for workload in self.source.objects(kind):
                uid = workload["metadata"].get("uid")
                replicas = workload.get("spec", {}).get("replicas", 1)
                replicas = replicas if isinstance(replicas, int) and replicas >= 0 else 1
                owned = {p["metadata"]["name"]: p for p in pods if _owner_uid(p) == uid}
                for i in range(replicas):
                    want = desired_pod(workload, i)
                    if want["metadata"]["name"] not in owned:
                        try:
                            self.client.create(want)
                            log.info("created pod %s for %s %s", _ref(want), kind, _ref(workload))
                        except PodnetError as exc:
                            log.warning("create %s: %s", _ref(want), exc.message)
                wanted = {f"{workload['metadata']['name']}-{i}" for i in range(replicas)}
                for name, pod in owned.items():
                    if name not in wanted:
                        self.client.delete("Pod", name, pod["metadata"].get("namespace"))

    def _schedule(self, pods: list[Obj]) -> None:
        nodes = [n.name for n in self.lab.plan.nodes]
        load = dict.fromkeys(nodes, 0)
        for pod in pods:
            node = pod.get("spec", {}).get("nodeName")
            if node in load:
                load[node] += 1
        for pod in pods:
            if pod.get("spec", {}).get("nodeName"):
                continue
            node = min(nodes, key=lambda n: (load[n], n))
            meta = pod["metadata"]
            try:
                self.client.bind(meta.get("namespace") or "default", meta["name"], node)
                load[node] += 1
                log.info("scheduled %s to %s", _ref(pod), node)
            except PodnetError as exc:
                log.warning("bind %s: %s", _ref(pod), exc.message)

    def _kubelet(self, pods: list[Obj]) -> None:
        nodes = {n.name: n for n in self.lab.plan.nodes}
        live = {_ref(p): p for p in pods if p.get("spec", {}).get("nodeName") in nodes}
        with self._lock:
            starting = set(self._starting)
        with self.lab.lock:
            records = list(self.lab.pods.items())
        for ref, record in records:
            if ref in starting:
                continue
            pod = live.get(ref)
            if pod is None or pod["metadata"].get("uid") != record.get("uid"):
                log.info("stopping sandbox of %s", ref)
                try:
                    runtime.stop_pod(self.lab, ref)
                except PodnetError as exc:
                    log.warning("stop %s: %s", ref, exc.message)
        for ref, pod in live.items():
            if ref in starting:
                continue
            with self.lab.lock:
                found = self.lab.pods.get(ref)
            if found is not None:
                self._report(pod, found)
                continue
            # Sandboxes start in parallel: most of a start is waiting (CNI exec, the agent's ADD).
            with self._lock:
                self._starting.add(ref)
            self._pool.submit(self._start_tracked, ref, pod, nodes)

    def _start_tracked(self, ref: str, pod: Obj, nodes: dict[str, Any]) -> None:
        try:
            self._start(pod, nodes)
        except Exception:  # a bug must not leave the pod marked as starting forever
            log.exception("start of %s crashed", ref)
        finally:
            with self._lock:
                self._starting.discard(ref)

    def _start(self, pod: Obj, nodes: dict[str, Any]) -> None:
        ref = _ref(pod)
        try:
            model = build_cluster([Document(Source("api", 0), pod)]).pods[0]
        except PodnetError as exc:
            log.warning("pod %s not started: %s", ref, exc.message)
            return
        try:
            uid = pod["metadata"].get("uid")
            record = runtime.start_pod(self.lab, model, nodes[pod["spec"]["nodeName"]], uid=uid)
        except PodnetError as exc:
            log.warning("pod %s failed to start: %s", ref, exc.message)
            return
        log.info("started %s on %s at %s", ref, record["node"], ",".join(record["ips"]))
        self._report(pod, record)

    def _report(self, pod: Obj, record: Obj) -> None:
        status = pod.get("status") or {}
        ips = record["ips"]
        if status.get("phase") == "Running" and [x.get("ip") for x in status.get("podIPs") or []] == ips:
            return
        node = self.lab.plan.node(record["node"])
        updated = copy.deepcopy(pod)
        updated["status"] = {
            "phase": "Running",
            "hostIP": str(node.underlay_ip),
            "podIP": ips[0] if ips else None,
            "podIPs": [{"ip": ip} for ip in ips],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "image": c.get("image", ""),
                    "imageID": "",
                    "state": {"running": {}},
                }
                for c in (pod.get("spec") or {}).get("containers") or []
            ],
        }
        try:
            self.client.put_status(updated)
        except PodnetError as exc:
            if getattr(exc, "status", None) == 409:  # written meanwhile from a newer copy: the next turn sees it
                log.debug("status of %s: conflict, retried on the next turn", _ref(pod))
                return
            log.warning("status of %s: %s", _ref(pod), exc.message)


__all__ = ["KINDS", "Controller", "desired_pod"]
