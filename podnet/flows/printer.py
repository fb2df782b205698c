"""Flows as text: ``compact`` (one line, like ``hubble observe``), ``json`` (Hubble JSON lines), ``table``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .model import Flow, FlowEndpoint

TABLE_HEADER = ("TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY", "POLICY")


def stamp(flow: Flow, tz: dt.tzinfo = dt.UTC) -> str:
    secs, nanos = divmod(flow.time_ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(secs, tz=tz).strftime("%b %d %H:%M:%S") + f".{nanos // 1_000_000:03d}"


def side(ep: FlowEndpoint, address: str, port: int) -> str:
    where = f"{ep.namespace}/{ep.pod_name}" if ep.pod_name else address
    return f"{where}:{port}" if port else where


def policy_text(flow: Flow) -> str:
    rules = flow.allowed_by or flow.denied_by
    return "; ".join(str(r) for r in rules)


def event_text(flow: Flow) -> str:
    if flow.type == "drop":
        reason = flow.drop_reason_desc or "drop"
        return f"{reason} {flow.traffic_direction} {flow.verdict}"
    word = {"FORWARDED": "ALLOWED", "DROPPED": "DENIED", "AUDIT": "AUDIT"}[flow.verdict]
    return f"policy-verdict:L3-L4 {flow.traffic_direction} {word}"


def compact(flow: Flow) -> str:
    src = f"{side(flow.source, flow.ip_source, flow.source_port)} (ID:{flow.source.identity})"
    dst = f"{side(flow.destination, flow.ip_destination, flow.destination_port)} (ID:{flow.destination.identity})"
    line = f"{stamp(flow)}: {src} -> {dst} {event_text(flow)} ({flow.summary})"
    if flow.count > 1:
        line += f" x{flow.count}"
    policy = policy_text(flow)
    return f"{line} by {policy}" if policy else line


def table(flows: Iterable[Flow]) -> list[str]:
    rows = [TABLE_HEADER]
    for f in flows:
        rows.append(
            (
                stamp(f),
                side(f.source, f.ip_source, f.source_port),
                side(f.destination, f.ip_destination, f.destination_port),
                f.type,
                f.verdict,
                f.summary,
                policy_text(f) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_HEADER))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
