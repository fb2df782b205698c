"""The :class:`Flow` record, with Hubble's JSON field names so tools that read Hubble flows read podnet's.

Pure: no I/O. ``to_json`` / ``from_json`` round-trip exactly; the JSON form is what the agent serves,
the export file holds and ``podnet observe --input-file`` reads.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Verdict = Literal["FORWARDED", "DROPPED", "AUDIT"]
TrafficDirection = Literal["INGRESS", "EGRESS"]
FlowType = Literal["policy-verdict", "drop", "trace"]
# Hubble's event_type.type numbers (monitor API message types).
EVENT_TYPE_CODE: dict[FlowType, int] = {"drop": 1, "trace": 4, "policy-verdict": 5}
EVENT_TYPE_NAME: dict[int, FlowType] = {v: k for k, v in EVENT_TYPE_CODE.items()}
L4_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6")
# "%Y-%m-%dT%H:%M:%S" of recent seconds: flows come in bursts, and strftime costs ~1.5 µs (bounded)
_seconds: dict[int, str] = {}
TCP_FLAG_BITS = (("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20))


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class FlowEndpoint:
    """One side of a flow. ``labels`` in Hubble's form: ``k8s:app=web``, ``reserved:world``."""

    identity: int = 0
    namespace: str = ""
    pod_name: str = ""
    labels: tuple[str, ...] = ()
    workloads: tuple[Workload, ...] = ()
    # to_json() serialized, made on first use by json_fragment() (not a value: not compared or hashed)
    _fragment: orjson.Fragment | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    def json_fragment(self) -> orjson.Fragment:
        """:meth:`to_json` as serialized JSON, kept: the flows of a pod pair share their endpoints, so the
        JSON lines of the agent's export serialize each endpoint once (~1 µs less per flow)."""
        fragment = self._fragment
        if fragment is None:
            fragment = orjson.Fragment(orjson.dumps(self.to_json()))
            object.__setattr__(self, "_fragment", fragment)
        return fragment

    def label_map(self) -> dict[str, str]:
        """Labels without their source prefix: ``k8s:app=web`` → ``{"app": "web"}``."""
        out: dict[str, str] = {}
        for label in self.labels:
            _, _, kv = label.partition(":")
            key, _, value = kv.partition("=")
            out[key] = value
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"identity": self.identity}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.pod_name:
            out["pod_name"] = self.pod_name
        if self.labels:
            out["labels"] = list(self.labels)
        if self.workloads:
            out["workloads"] = [
                {"name": w.name, "kind": w.kind} if w.kind else {"name": w.name} for w in self.workloads
            ]
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FlowEndpoint:
        return cls(
            identity=int(doc.get("identity", 0)),
            namespace=str(doc.get("namespace", "")),
            pod_name=str(doc.get("pod_name", "")),
            labels=tuple(str(x) for x in doc.get("labels", ())),
            workloads=tuple(Workload(str(w["name"]), str(w.get("kind", ""))) for w in doc.get("workloads", ())),
        )


@dataclass(frozen=True, slots=True)
class RuleName:
    """The policy rule that decided: ``{kind, namespace, name, direction, rule}`` in JSON.

    ``kind`` "isolation" is the default deny of isolating policies (``isolated_by`` names them; no rule index).
    """

    kind: str
    name: str
    direction: str
    rule: int | None = None
    namespace: str = ""
    isolated_by: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.kind == "isolation":
            return f"default deny ({self.direction} isolated by NetworkPolicy {', '.join(self.isolated_by)})"
        policy = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {policy} {self.direction}[{self.rule}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "direction": self.direction}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.rule is not None:
            out["rule"] = self.rule
        if self.isolated_by:
            out["isolated_by"] = list(self.isolated_by)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RuleName:
        rule = doc.get("rule")
        return cls(
            kind=str(doc["kind"]),
            name=str(doc["name"]),
            direction=str(doc["direction"]),
            rule=int(rule) if rule is not None else None,
            namespace=str(doc.get("namespace", "")),
            isolated_by=tuple(str(x) for x in doc.get("isolated_by", ())),
        )


def tcp_flag_names(bits: int) -> tuple[str, ...]:
    return tuple(name for name, bit in TCP_FLAG_BITS if bits & bit)


@dataclass(slots=True, unsafe_hash=True)
class Flow:
    """One decision of the kernel on one node: a new connection judged, or packets dropped.

    A value: nothing changes a flow once made (hashable and compared by its fields). Not ``frozen``:
    the agent makes one per kernel event, and a frozen dataclass of 19 fields takes ~2 µs longer to build.

    ``time_ns`` is wall-clock nanoseconds since the epoch. ``protocol`` is one of :data:`L4_PROTOCOLS`
    (or the number as text); ``tcp_flags`` names the flags of the packet that was judged. ``count`` is
    podnet's: how many packets an aggregated drop record stands for (1 for a new connection).
    """

    time_ns: int
    verdict: Verdict
    type: FlowType
    node_name: str
    traffic_direction: TrafficDirection
    ip_source: str
    ip_destination: str
    ip_version: int
    protocol: str
    source_port: int = 0
    destination_port: int = 0
    tcp_flags: tuple[str, ...] = ()
    source: FlowEndpoint = field(default_factory=FlowEndpoint)
    destination: FlowEndpoint = field(default_factory=FlowEndpoint)
    drop_reason_desc: str = ""
    is_reply: bool = False
    allowed_by: tuple[RuleName, ...] = ()
    denied_by: tuple[RuleName, ...] = ()
    count: int = 1

    @property
    def summary(self) -> str:
        if self.protocol == "TCP":
            return f"TCP Flags: {', '.join(self.tcp_flags)}" if self.tcp_flags else "TCP"
        return self.protocol

    @property
    def time_text(self) -> str:
        """RFC 3339 with nanoseconds, UTC, as Hubble writes ``time``."""
        secs, nanos = divmod(self.time_ns, 1_000_000_000)
        stamp = _seconds.get(secs)
        if stamp is None:
            if len(_seconds) >= 64:
                _seconds.clear()
            stamp = _seconds[secs] = dt.datetime.fromtimestamp(secs, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{nanos:09d}Z"

    def to_json(self) -> dict[str, Any]:
        return self._doc(self.source.to_json(), self.destination.to_json())

    def _doc(self, source: Any, destination: Any) -> dict[str, Any]:
        """The JSON object with these endpoints' (dicts, or serialized fragments for orjson)."""
        ports: dict[str, Any] = {"source_port": self.source_port, "destination_port": self.destination_port}
        if self.protocol == "TCP":
            ports["flags"] = {name: True for name in self.tcp_flags}
        out: dict[str, Any] = {
            "time": self.time_text,
            "verdict": self.verdict,
            "IP": {
                "source": self.ip_source,
                "destination": self.ip_destination,
                "ipVersion": f"IPv{self.ip_version}",
            },
            "l4": {self.protocol: ports if self.protocol in ("TCP", "UDP", "SCTP") else {}},
            "source": source,
            "destination": destination,
            "Type": "L3_L4",
            "node_name": self.node_name,
            "event_type": {"type": EVENT_TYPE_CODE[self.type]},
            "traffic_direction": self.traffic_direction,
            "is_reply": self.is_reply,
            "Summary": self.summary,
        }
        if self.drop_reason_desc:
            out["drop_reason_desc"] = self.drop_reason_desc
        if self.allowed_by:
            out["allowed_by"] = [r.to_json() for r in self.allowed_by]
        if self.denied_by:
            out["denied_by"] = [r.to_json() for r in self.denied_by]
        if self.count != 1:
            out["count"] = self.count
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Flow:
        """The inverse of :meth:`to_json` (also reads Hubble's own flows, minus fields podnet lacks)."""
        ip = doc.get("IP", {})
        l4: dict[str, Any] = doc.get("l4", {})
        protocol, raw_ports = next(iter(l4.items()), ("", {}))
        ports: dict[str, Any] = raw_ports if isinstance(raw_ports, dict) else {}
        flags: dict[str, Any] = ports.get("flags", {})
        return cls(
            time_ns=parse_time(str(doc["time"])),
            verdict=doc["verdict"],
            type=EVENT_TYPE_NAME.get(int(doc.get("event_type", {}).get("type", 5)), "policy-verdict"),
            node_name=str(doc.get("node_name", "")),
            traffic_direction=doc.get("traffic_direction", "INGRESS"),
            ip_source=str(ip.get("source", "")),
            ip_destination=str(ip.get("destination", "")),
            ip_version=6 if ip.get("ipVersion") == "IPv6" else 4,
            protocol=protocol,
            source_port=int(ports.get("source_port", 0)),
            destination_port=int(ports.get("destination_port", 0)),
            tcp_flags=tuple(name for name, _ in TCP_FLAG_BITS if flags.get(name)),
            source=FlowEndpoint.from_json(doc.get("source", {})),
            destination=FlowEndpoint.from_json(doc.get("destination", {})),
            drop_reason_desc=str(doc.get("drop_reason_desc", "")),
            is_reply=bool(doc.get("is_reply", False)),
            allowed_by=tuple(RuleName.from_json(r) for r in doc.get("allowed_by", ())),
            denied_by=tuple(RuleName.from_json(r) for r in doc.get("denied_by", ())),
            count=int(doc.get("count", 1)),
        )


def parse_time(text: str) -> int:
    """RFC 3339 (``Z`` or an offset, up to nanoseconds) → nanoseconds since the epoch."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, frac, rest = text, "", ""
    if "." in text:
        main, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        frac, rest = tail[:digits], tail[digits:]
    stamp = dt.datetime.fromisoformat(main + rest)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def to_line(flow: Flow) -> str:
    """One JSON line in the form of Hubble's GetFlowsResponse (``hubble observe -o json``, Hubble's exporter)."""
    return to_line_bytes(flow).decode()


def to_line_bytes(flow: Flow) -> bytes:
    """:func:`to_line` as UTF-8, without the newline: compact JSON (orjson: a fraction of ``json.dumps``)."""
    doc = flow._doc(flow.source.json_fragment(), flow.destination.json_fragment())
    return orjson.dumps({"flow": doc, "node_name": flow.node_name, "time": doc["time"]})


def from_line(line: str) -> Flow:
    """A flow from a JSON line: a GetFlowsResponse (``{"flow": …}``) or a bare flow object."""
    doc = json.loads(line)
    if not isinstance(doc, dict):
        raise ValueError("a flow line is a JSON object")
    flow = doc.get("flow", doc)
    if not isinstance(flow, dict):
        raise ValueError("a flow line's flow is a JSON object")
    return Flow.from_json(flow)
