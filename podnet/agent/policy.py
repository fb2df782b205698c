"""The agent's policy loop: the kernel datapath kept equal to the compiled policy for this node's pods.

One thread owns the datapath (it is not thread-safe). It waits for changes from the cluster source
(any object) or a nudge from the CNI service (an endpoint added or removed), then: compiles the
cluster, syncs the identity cache, attaches every local endpoint whose pod the API server knows, and
writes the difference between each endpoint's kernel rows and its map image; endpoints that are gone
are detached. Compiling the whole cluster on every change keeps it simple; at lab scale it is
milliseconds (benchmarks/policy_scale.py has the numbers for large clusters).

An endpoint whose pod the API server does not know yet is attached only once it is known, so CNI ADD
never waits for the API server; :meth:`PolicyLoop.nudge_and_wait` lets ADD wait (bounded) until its pod
is enforced when the pod is known.

Flows: when the loop has a :class:`~podnet.flows.collector.FlowCollector`, the same thread drains the
datapath's ring buffer on every turn (the turns are at most ~0.1 s apart: the wait for cluster changes
is bounded), so the one-owner rule of the datapath holds and events are decoded with the rule table
this thread keeps current. After each sync the collector learns the cluster's pods for enrichment.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from podnet.agent.endpoints import EndpointRegistry
from podnet.errors import PodnetError
from podnet.k8s.source import ClusterSource, cluster
from podnet.policy.compiler import compile_cluster
from podnet.policy.identity import IdentityTable
from podnet.policy.mapimage import MapImage, map_image

if TYPE_CHECKING:
    from podnet.datapath.ebpf.events import DatapathEvent
    from podnet.flows.collector import FlowCollector

log = logging.getLogger("podnet.agent.policy")


class PolicyDatapath(Protocol):
    """What the loop needs of a datapath (the eBPF one: :class:`podnet.datapath.ebpf.datapath.EbpfDatapath`)."""

    def ensure_loaded(self) -> None: ...

    def sync_identities(self, identities: IdentityTable) -> object: ...

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int: ...

    def apply_pod_image(self, ifindex: int, image: MapImage) -> object: ...

    def attached(self) -> set[int]: ...

    def detach_pod(self, ifindex: int) -> object: ...

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]: ...

    def counters(self) -> dict[str, int]: ...


class EbpfPolicyDatapath:
    """Adapts :class:`EbpfDatapath` to :class:`PolicyDatapath`."""

    def __init__(self, pin_dir: str) -> None:
        from pathlib import Path

        from podnet.datapath.ebpf.datapath import EbpfDatapath
        from podnet.datapath.ebpf.system import ensure_bpffs

        pins = Path(pin_dir)
        ensure_bpffs(pins.parent)
        self.dp = EbpfDatapath(pins)

    def ensure_loaded(self) -> None:
        self.dp.ensure_loaded()

    def sync_identities(self, identities: IdentityTable) -> object:
        return self.dp.sync_identities(identities)

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int:
        from podnet.datapath.ebpf.datapath import Endpoint

        v4 = next((ipaddress.IPv4Address(a) for a in addresses if ":" not in a), None)
        v6 = next((ipaddress.IPv6Address(a) for a in addresses if ":" in a), None)
        return self.dp.attach(Endpoint(host_veth, mac, identity, v4, v6))

    def apply_pod_image(self, ifindex: int, image: MapImage) -> object:
        return self.dp.apply_image(ifindex, image)

    def attached(self) -> set[int]:
        return set(self.dp.endpoints())

    def detach_pod(self, ifindex: int) -> object:
        return self.dp.detach(ifindex)

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        return self.dp.events(timeout)

    def counters(self) -> dict[str, int]:
        return self.dp.counters()


class PolicyLoop:
    def __init__(
        self,
        source: ClusterSource,
        registry: EndpointRegistry,
        datapath: PolicyDatapath,
        flows: FlowCollector | None = None,
    ) -> None:
        self.source = source
        self.flows = flows
        self.registry = registry
        self.datapath = datapath
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._generation = 0  # nudges asked for
        self._synced_generation = 0  # nudges served by a finished sync
        self._enforced: set[tuple[str, str]] = set()  # (namespace, pod) with rows in the kernel
        self._thread: threading.Thread | None = None
        self.syncs = 0
        self.last_error = ""

    def start(self) -> None:
        self.datapath.ensure_loaded()
        self.source.start()
        self._thread = threading.Thread(target=self._run, name="podnet-policy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.source.close()

    def nudge(self) -> int:
        with self._done:
            self._generation += 1
            gen = self._generation
        self._wake.set()
        return gen

    def nudge_and_wait(self, pod: tuple[str, str], timeout: float = 3.0) -> bool:
        """Ask for a sync and wait until one that started after this call ends; True if ``pod`` is enforced."""
        gen = self.nudge()
        deadline = time.monotonic() + timeout
        with self._done:
            while self._synced_generation < gen and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return pod in self._enforced

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain_flows()
            change = None if self._wake.is_set() else self.source.next_change(timeout=0.1)
            while change is not None:  # a burst of changes: one sync
                self._drain_flows()
                change = self.source.next_change(timeout=0.02)
            self._wake.clear()
            with self._done:
                gen = self._generation
            if not getattr(self.source, "synced", threading.Event()).is_set():
                continue
            try:
                self.sync()
                self.last_error = ""
            except (PodnetError, OSError) as exc:
                self.last_error = str(exc)
                log.warning("policy sync failed: %s", exc)
            with self._done:
                self._synced_generation = max(self._synced_generation, gen)
                self._done.notify_all()

    def _drain_flows(self) -> None:
        if self.flows is None:
            return
        try:
            self.flows.drain(self.datapath)
        except (PodnetError, OSError) as exc:
            log.warning("reading datapath events failed: %s", exc)

    def sync(self) -> None:
        compiled = compile_cluster(cluster(self.source))
        ids = compiled.identities
        self.datapath.sync_identities(ids)
        keep: set[int] = set()
        enforced: set[tuple[str, str]] = set()
        entries = 0
        for ep in self.registry.all():
            identity = ids.pod_identity.get((ep.pod_namespace, ep.pod_name, "Pod"))
            if identity is None:
                continue
            ifindex = self.datapath.attach_pod(ep.host_veth, ep.mac, identity, [str(a) for a in ep.addresses])
            image = map_image(compiled, identity)
            self.datapath.apply_pod_image(ifindex, image)
            entries += len(image)
            keep.add(ifindex)
            enforced.add((ep.pod_namespace, ep.pod_name))
        for ifindex in self.datapath.attached() - keep:
            self.datapath.detach_pod(ifindex)
        self._enforced = enforced
        self.syncs += 1
        if self.flows is not None:
            local = [(e.pod_namespace, e.pod_name, e.addresses) for e in self.registry.all()]
            self.flows.synced(compiled.cluster.pods, ids, local, entries, len(keep))
