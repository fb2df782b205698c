"""The agent's policy loop: the kernel datapath kept equal to the compiled policy for this node's pods.

One thread owns the datapath (it is not thread-safe). It waits for changes from the cluster source
(any object) or a nudge from the CNI service (an endpoint added or removed), takes every change that
follows within a few milliseconds as one batch (:data:`BATCH_QUIET`, at most :data:`BATCH_MAX`), then
syncs. A sync does only what the batch changed:

- each changed object is validated once (:class:`~podnet.k8s.objectcache.ParsedObjects`), not the
  whole cluster;
- the policy is updated by :class:`~podnet.policy.incremental.IncrementalCompiler`: a pod with a label
  set that already exists, an address, a pod gone needs no compile; otherwise the one compiler runs
  and only identities whose map image may differ get a new image (identity numbers stay stable);
- the kernel gets only differences: the ipcache when an address or CIDR changed identity, an
  endpoint (tc programs, endpoint map entry) when it is new or its identity, MAC or addresses
  changed, a policy map diff when its image is a different object than the one last written.
  Endpoints that are gone are detached.

What the loop remembers of the kernel is only what it wrote itself; when a sync fails, it forgets it
all and the next sync rewrites every endpoint, the ipcache and every image (each write idempotent, and
the datapath writes only differences). ``tests/unit/agent/test_policy_loop.py`` checks that after any
sequence of changes the kernel state equals what a fresh agent writes.

An endpoint whose pod the API server does not know yet is attached only once it is known, so CNI ADD
never waits for the API server; :meth:`PolicyLoop.nudge_and_wait` lets ADD wait (bounded) until its pod
is enforced when the pod is known.

Flows: when the loop has a :class:`~podnet.flows.collector.FlowCollector`, the same thread drains the
datapath's ring buffer on every turn (the turns are at most ~0.1 s apart: the wait for cluster changes
is bounded, and skipped while a drain stops at its bound with events left), so the one-owner rule of
the datapath holds and events are decoded with the rule table this thread keeps current. After each
sync the collector learns the cluster's pods for enrichment.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from podnet.agent.endpoints import EndpointRegistry
from podnet.datapath.ebpf.audit import Audit, audit_policies
from podnet.errors import PodnetError
from podnet.k8s.model import IPAddress
from podnet.k8s.objectcache import ParsedObjects
from podnet.k8s.source import Change, ClusterSource
from podnet.policy.identity import IdentityTable
from podnet.policy.incremental import IncrementalCompiler
from podnet.policy.mapimage import MapImage

if TYPE_CHECKING:
    from podnet.datapath.ebpf.events import DatapathEvent
    from podnet.flows.collector import FlowCollector

log = logging.getLogger("podnet.agent.policy")


class PolicyDatapath(Protocol):
    """What the loop needs of a datapath (the eBPF one: :class:`podnet.datapath.ebpf.datapath.EbpfDatapath`)."""

    def ensure_loaded(self) -> None: ...

    def sync_identities(self, identities: IdentityTable) -> object: ...

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int: ...

    def apply_pod_image(self, ifindex: int, image: MapImage, audit: Audit | None = None) -> object: ...

    def attached(self) -> set[int]: ...

    def detach_pod(self, ifindex: int) -> object: ...

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]: ...

    def counters(self) -> dict[str, int]: ...


class EbpfPolicyDatapath:
    """Adapts :class:`EbpfDatapath` to :class:`PolicyDatapath`."""

    def __init__(self, pin_dir: str, uplinks: Sequence[str] = ()) -> None:
        """``uplinks``: the node's devices other nodes' packets arrive on, which get ``pn_from_uplink``."""
        from pathlib import Path

        from podnet.datapath.ebpf.datapath import EbpfDatapath
        from podnet.datapath.ebpf.system import ensure_bpffs

        pins = Path(pin_dir)
        ensure_bpffs(pins.parent)
        self.dp = EbpfDatapath(pins)
        self.uplinks = tuple(uplinks)

    def ensure_loaded(self) -> None:
        self.dp.ensure_loaded()
        for device in self.uplinks:
            # an uplink without the program is slower, not less safe: pn_to_pod judges what the node forwards
            try:
                self.dp.attach_uplink(device)
            except PodnetError as exc:
                log.error("uplink not attached", extra={"device": device, "error": str(exc)})
            else:
                log.info("uplink attached", extra={"device": device})

    def sync_identities(self, identities: IdentityTable) -> object:
        return self.dp.sync_identities(identities)

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int:
        from podnet.datapath.ebpf.datapath import Endpoint

        v4 = next((ipaddress.IPv4Address(a) for a in addresses if ":" not in a), None)
        v6 = next((ipaddress.IPv6Address(a) for a in addresses if ":" in a), None)
        return self.dp.attach(Endpoint(host_veth, mac, identity, v4, v6))

    def apply_pod_image(self, ifindex: int, image: MapImage, audit: Audit | None = None) -> object:
        return self.dp.apply_image(ifindex, image, audit)

    def attached(self) -> set[int]:
        return set(self.dp.endpoints())

    def detach_pod(self, ifindex: int) -> object:
        return self.dp.detach(ifindex)

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        return self.dp.events(timeout)

    def counters(self) -> dict[str, int]:
        return self.dp.counters()


BATCH_QUIET = 0.005  # a batch ends when no change came for this long ...
BATCH_MAX = 0.05  # ... or this long after its first change


@dataclass(frozen=True, slots=True)
class _Attached:
    """What the loop last attached for an endpoint (re-attached when anything here changes)."""

    wanted: tuple[object, ...]
    ifindex: int


class PolicyLoop:
    def __init__(
        self,
        source: ClusterSource,
        registry: EndpointRegistry,
        datapath: PolicyDatapath,
        flows: FlowCollector | None = None,
        host_addresses: tuple[IPAddress, ...] = (),
    ) -> None:
        """``host_addresses``: this node's own addresses (the source of its packets to pods), which get the
        ``host`` identity: a pod always accepts traffic from its own node (NetworkPolicy's rule)."""
        self.source = source
        self.flows = flows
        self.registry = registry
        self.datapath = datapath
        self.objects = ParsedObjects()
        self.compiler = IncrementalCompiler(host_addresses)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._generation = 0  # nudges asked for
        self._synced_generation = 0  # nudges served by a finished sync
        self._source_synced = False  # a SYNCED change was seen
        self._enforced: set[tuple[str, str]] = set()  # (namespace, pod) with rows in the kernel
        self._thread: threading.Thread | None = None
        # What this loop wrote to the kernel (forgotten when a sync fails: see the module docstring)
        self._attached: dict[str, _Attached] = {}  # host veth → endpoint as attached
        self._applied: dict[int, tuple[MapImage, frozenset[str]]] = {}  # ifindex → image object, audit set written
        self._ipcache_synced = False
        self._known_attached: set[int] | None = None  # ifindexes with an endpoint entry; None: ask the kernel
        self.syncs = 0
        self.last_error = ""
        self.stats = {"batches": 0, "changes": 0, "attached": 0, "images_written": 0, "ipcache_syncs": 0}

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
            backlog = self._drain_flows()  # a full tick of events: more wait, so look for changes without waiting
            change = None if self._wake.is_set() else self.source.next_change(timeout=0.0 if backlog else 0.1)
            if change is not None:
                self.take(change)
                self._coalesce()
            self._wake.clear()
            with self._done:
                gen = self._generation
            if not self.ready:
                continue
            self.sync_once()
            with self._done:
                self._synced_generation = max(self._synced_generation, gen)
                self._done.notify_all()

    def _coalesce(self) -> None:
        """Take the changes that follow the first one closely: one sync serves a burst."""
        self.stats["batches"] += 1
        deadline = time.monotonic() + BATCH_MAX
        while (left := deadline - time.monotonic()) > 0 and not self._wake.is_set():  # a CNI ADD waits: sync now
            change = self.source.next_change(timeout=min(BATCH_QUIET, left))
            if change is None:
                return
            self.take(change)

    def take(self, change: Change) -> None:
        """Apply one change from the cluster source to the loop's view of the cluster (no sync)."""
        self.stats["changes"] += 1
        if change.type == "SYNCED":
            self._source_synced = True
        else:
            self.objects.apply(change)

    @property
    def ready(self) -> bool:
        """Every kind has been listed once: syncing before would detach endpoints whose pods are not seen yet."""
        synced = getattr(self.source, "synced", None)
        return self._source_synced or (isinstance(synced, threading.Event) and synced.is_set())

    def sync_once(self) -> bool:
        """One sync; a failure is logged and kept in ``last_error``. True when it succeeded."""
        try:
            self.sync()
        except (PodnetError, OSError) as exc:
            self.last_error = str(exc)
            log.warning("policy sync failed: %s", exc)
            self.forget_kernel()
            return False
        except Exception as exc:  # a bug: start over from nothing rather than stop enforcing changes
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("policy sync crashed; the next sync compiles and writes everything afresh")
            self.compiler = IncrementalCompiler(self.compiler.host_addresses)
            self.forget_kernel()
            return False
        self.last_error = ""
        return True

    def forget_kernel(self) -> None:
        """Forget what was written: the next sync rewrites everything (after a failure, the kernel's state is
        not known)."""
        self._attached.clear()
        self._applied.clear()
        self._ipcache_synced = False
        self._known_attached = None

    def _drain_flows(self) -> bool:
        """Record the datapath's pending events; True when the drain stopped at its bound (more are waiting)."""
        if self.flows is None:
            return False
        try:
            self.flows.drain(self.datapath)
            return self.flows.backlog
        except (PodnetError, OSError) as exc:
            log.warning("reading datapath events failed: %s", exc)
            return False

    def sync(self) -> None:
        """Make the kernel match the current objects and endpoints, writing only what changed."""
        update = self.compiler.update(self.objects.cluster())
        ids = update.compiled.identities
        if update.addresses_changed or not self._ipcache_synced:
            self._ipcache_synced = False
            self.datapath.sync_identities(ids)
            self._ipcache_synced = True
            self.stats["ipcache_syncs"] += 1
        if self._known_attached is None:
            self._known_attached = set(self.datapath.attached())
        # audit mode (podnet.io/audit on a NetworkPolicy or its Namespace): the kernel lets would-be drops
        # of those policies alone pass, as AUDIT; an image is written again when the set changes
        audit_refs = audit_policies(update.compiled.cluster)
        keep: set[int] = set()
        attached: dict[str, _Attached] = {}
        enforced: set[tuple[str, str]] = set()
        entries = 0
        for ep in self.registry.all():
            identity = ids.pod_identity.get((ep.pod_namespace, ep.pod_name, "Pod"))
            if identity is None:
                continue
            addresses = [str(a) for a in ep.addresses]
            wanted = (ep.container_id, ep.ifname, ep.created, ep.mac, tuple(addresses), identity)
            done = self._attached.get(ep.host_veth)
            if done is None or done.wanted != wanted:
                ifindex = self.datapath.attach_pod(ep.host_veth, ep.mac, identity, addresses)
                self._known_attached.add(ifindex)
                self._applied.pop(ifindex, None)
                done = _Attached(wanted, ifindex)
                self.stats["attached"] += 1
            attached[ep.host_veth] = done
            image = self.compiler.image(identity)
            applied = self._applied.get(done.ifindex)
            if applied is None or applied[0] is not image or applied[1] != audit_refs:
                self._applied.pop(done.ifindex, None)
                audit = Audit(update.compiled, identity, audit_refs) if audit_refs else None
                self.datapath.apply_pod_image(done.ifindex, image, audit)
                self._applied[done.ifindex] = (image, audit_refs)
                self.stats["images_written"] += 1
            entries += len(image)
            keep.add(done.ifindex)
            enforced.add((ep.pod_namespace, ep.pod_name))
        self._attached = attached
        for ifindex in sorted(self._known_attached - keep):
            self.datapath.detach_pod(ifindex)
            self._known_attached.discard(ifindex)
            self._applied.pop(ifindex, None)
        self._enforced = enforced
        self.syncs += 1
        if self.flows is not None:
            local = [(e.pod_namespace, e.pod_name, e.addresses) for e in self.registry.all()]
            self.flows.synced(update.compiled.cluster.pods, ids, local, entries, len(keep))
