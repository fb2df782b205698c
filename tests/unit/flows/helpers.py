"""Flows for tests, built by hand."""

from __future__ import annotations

from typing import Any

from podnet.flows.model import Flow, FlowEndpoint, RuleName, Workload

T0 = 1_795_000_000_000_000_000  # 2026-11-18, in epoch nanoseconds


def pod(ns: str, name: str, identity: int, **labels: str) -> FlowEndpoint:
    lab = (*tuple(f"k8s:{k}={v}" for k, v in sorted(labels.items())), f"k8s:io.kubernetes.pod.namespace={ns}")
    return FlowEndpoint(identity, ns, name, lab, (Workload(name.rsplit("-", 1)[0], "Deployment"),))


FRONTEND = pod("web", "frontend-0", 262, app="frontend")
BACKEND = pod("api", "backend-0", 259, app="backend")
POSTGRES = pod("data", "postgres-0", 300, app="postgres")
ALLOW = RuleName("NetworkPolicy", "backend", "ingress", 0, "api")
DENY = RuleName("isolation", "postgres", "ingress", None, "data", ("data/postgres",))


def flow(i: int, **kw: Any) -> Flow:
    base: dict[str, Any] = {
        "time_ns": T0 + i * 1_000_000,
        "verdict": "FORWARDED",
        "type": "policy-verdict",
        "node_name": "n1",
        "traffic_direction": "INGRESS",
        "ip_source": "10.246.0.2",
        "ip_destination": "10.246.1.3",
        "ip_version": 4,
        "protocol": "TCP",
        "source_port": 40000 + i,
        "destination_port": 9000,
        "tcp_flags": ("SYN",),
        "source": FRONTEND,
        "destination": BACKEND,
        "allowed_by": (ALLOW,),
    }
    base.update(kw)
    return Flow(**base)


def dropped(i: int, **kw: Any) -> Flow:
    args: dict[str, Any] = {
        "verdict": "DROPPED",
        "type": "drop",
        "drop_reason_desc": "POLICY_DENIED",
        "ip_destination": "10.246.0.4",
        "destination_port": 5432,
        "destination": POSTGRES,
        "allowed_by": (),
        "denied_by": (DENY,),
    }
    args.update(kw)
    return flow(i, **args)


def sample() -> list[Flow]:
    """Six flows: three allowed frontend→backend:9000, two dropped to postgres:5432, one UDP DNS-ish."""
    return [
        flow(0),
        dropped(1),
        flow(2),
        dropped(3, count=4),
        flow(4, protocol="UDP", tcp_flags=(), destination_port=53, allowed_by=()),
        flow(5, traffic_direction="EGRESS"),
    ]
