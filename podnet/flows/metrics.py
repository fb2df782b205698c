"""Prometheus metrics of the flows and the datapath, on a registry of their own.

Observer hook (Hubble's metrics handlers): :meth:`FlowMetrics.observe_all` per drained batch; the agent
sets the gauges after each policy sync, and about once a second the datapath's own counters
(:meth:`FlowMetrics.set_counters`, which also feeds the lost-events counter).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server

from .model import Flow


class FlowMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.flows = Counter(
            "podnet_flows_processed", "Flows recorded", ["verdict", "type", "direction"], registry=self.registry
        )
        self.drops = Counter("podnet_drop", "Packets dropped, by reason", ["reason"], registry=self.registry)
        self.policy_entries = Gauge("podnet_policy_map_entries", "Rows in the policy map", registry=self.registry)
        self.endpoints = Gauge("podnet_endpoints", "Endpoints under policy", registry=self.registry)
        self.lost = Counter(
            "podnet_events_lost",
            "Datapath events the kernel could not queue (eBPF ring buffer or NFLOG socket full)",
            registry=self.registry,
        )
        self.datapath = Gauge(
            "podnet_datapath_packets",
            "The datapath's own counters since it was loaded (forwarded, redirected, redirected_uplink, ...)",
            ["counter"],
            registry=self.registry,
        )
        self._lost_seen = 0
        self._server: Any = None
        # labelled children, looked up once per label set (``labels()`` validates and locks each call)
        self._flow_children: dict[tuple[str, str, str], Any] = {}
        self._drop_children: dict[str, Any] = {}

    def observe(self, flow: Flow) -> None:
        self.observe_all((flow,))

    def observe_all(self, flows: Iterable[Flow]) -> None:
        """Count a batch of flows: tallied here first, so each labelled child is incremented (and locked)
        once per batch, not once per flow."""
        by_key: dict[tuple[str, str, str], int] = {}
        drops: dict[str, int] = {}
        for flow in flows:
            key = (flow.verdict, flow.type, flow.traffic_direction)
            by_key[key] = by_key.get(key, 0) + 1
            if flow.verdict == "DROPPED":
                reason = flow.drop_reason_desc or "UNKNOWN"
                drops[reason] = drops.get(reason, 0) + flow.count
        for labels, n in by_key.items():
            child = self._flow_children.get(labels)
            if child is None:
                child = self._flow_children[labels] = self.flows.labels(*labels)
            child.inc(n)
        for reason, n in drops.items():
            drop = self._drop_children.get(reason)
            if drop is None:
                drop = self._drop_children[reason] = self.drops.labels(reason)
            drop.inc(n)

    def set_lost(self, total: int) -> None:
        """The kernel's lost-events counter (a running total); the metric follows it."""
        if total > self._lost_seen:
            self.lost.inc(total - self._lost_seen)
        self._lost_seen = max(self._lost_seen, total)

    def set_counters(self, counters: dict[str, int]) -> None:
        """The datapath's counters (running totals kept by the kernel); ``events_lost`` also feeds the
        lost-events counter."""
        for name, value in counters.items():
            self.datapath.labels(name).set(value)
        self.set_lost(counters.get("events_lost", 0))

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, addr: str) -> tuple[str, int]:
        """Serve ``/metrics`` on ``HOST:PORT`` (loopback only; port 0 picks one); returns where it listens."""
        host, _, port = addr.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"--metrics-addr {addr}: metrics listen on a loopback address only")
        server, _thread = start_http_server(int(port), addr=host, registry=self.registry)
        self._server = server
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
