"""The agent's flow pipeline: datapath events → decode + enrich → metrics, export file, ring store.

Ownership: every method except reading :attr:`store` runs on the policy loop's thread, the one owner of
the (not thread-safe) eBPF datapath. Reading the ring buffer there keeps that rule without a second
owner: the loop drains events between waits for cluster changes (at most ~0.1 s apart) and decodes them
with the rule table the same thread keeps. The store is the only thing shared, and it has its own lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Protocol

from podnet.datapath.ebpf.events import DatapathEvent
from podnet.k8s.model import IPAddress, Pod
from podnet.policy.identity import IdentityTable

from .decoder import Enricher, boot_offset_ns, decode
from .export import JsonlExporter
from .metrics import FlowMetrics
from .store import FlowStore

log = logging.getLogger("podnet.flows")
MAX_EVENTS_PER_TICK = 20_000  # bounded, so a flood of events never starves policy syncs


class EventSource(Protocol):
    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]: ...

    def counters(self) -> dict[str, int]: ...


class FlowCollector:
    def __init__(
        self,
        node_name: str,
        store: FlowStore,
        exporter: JsonlExporter | None = None,
        metrics: FlowMetrics | None = None,
    ) -> None:
        self.node_name = node_name
        self.store = store
        self.exporter = exporter
        self.metrics = metrics
        self.enricher = Enricher()
        self.offset_ns = boot_offset_ns()
        self.events = 0
        self.backlog = False  # the last drain stopped at MAX_EVENTS_PER_TICK: events may be waiting
        self._last_counters = 0.0

    def synced(
        self,
        pods: Iterable[Pod],
        identities: IdentityTable,
        local: Iterable[tuple[str, str, Iterable[IPAddress]]],
        policy_entries: int,
        endpoints: int,
    ) -> None:
        """After a policy sync: what enrichment knows, and the gauges."""
        self.enricher = Enricher.build(pods, identities, local)
        if self.metrics is not None:
            self.metrics.policy_entries.set(policy_entries)
            self.metrics.endpoints.set(endpoints)

    def drain(self, source: EventSource) -> int:
        """Decode what the ring buffer holds now (no waiting); returns how many flows were recorded."""
        enricher, node, offset = self.enricher, self.node_name, self.offset_ns
        flows = [decode(e, enricher, node, offset) for e in islice(source.events(0.0), MAX_EVENTS_PER_TICK)]
        n = len(flows)
        self.backlog = n >= MAX_EVENTS_PER_TICK
        if n:
            # each consumer takes the batch at once: one lock per labelled counter, one store lock, one write;
            # the file last, so a failing disk (OSError, logged by the loop) costs the flows only the file
            if self.metrics is not None:
                self.metrics.observe_all(flows)
            self.store.add_all(flows)
            if self.exporter is not None:
                self.exporter.write_all(flows)
                self.exporter.flush()
        self.events += n
        now = time.monotonic()
        if self.metrics is not None and now - self._last_counters >= 1.0:
            self._last_counters = now
            self.metrics.set_counters(source.counters())
        return n

    def close(self) -> None:
        if self.exporter is not None:
            self.exporter.close()
        if self.metrics is not None:
            self.metrics.close()
