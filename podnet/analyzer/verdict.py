"""One verdict, or many (``--queries``), read from the compiled policy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from podnet.analyzer.endpoints import Endpoint, Resolver
from podnet.errors import PodnetError
from podnet.k8s.model import PROTOCOLS, Protocol
from podnet.policy.compiler import DEFAULT_ALLOW, ConnectionVerdict, Decision


@dataclass(frozen=True, slots=True)
class Answer:
    src: Endpoint
    dst: Endpoint
    protocol: Protocol
    port: int
    verdict: ConnectionVerdict

    @property
    def same_pod(self) -> bool:
        return same_pod(self.src, self.dst)

    @property
    def word(self) -> str:
        return "allowed" if self.verdict.allowed else "denied"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src.ref,
            "to": self.dst.ref,
            "protocol": self.protocol,
            "port": self.port,
            "verdict": self.word,
            "egress": _side(self.verdict.egress),
            "ingress": _side(self.verdict.ingress),
            "decided_by": [d.rule.to_json() for d in self.verdict.deciding if d.rule is not None],
        }

    def text(self) -> str:
        lines = [f"{self.word}: {self.src.ref} -> {self.dst.ref} {self.protocol}/{self.port}"]
        if self.same_pod:
            lines.append("  same pod on both ends: a pod may always talk to itself")
            return "\n".join(lines)
        for side, decision, who in (
            ("egress", self.verdict.egress, self.src),
            ("ingress", self.verdict.ingress, self.dst),
        ):
            if decision is None:
                lines.append(f"  {side:7} {who.ref}: not a pod, nothing enforced")
            else:
                lines.append(f"  {side:7} {who.ref}: {decision}")
        return "\n".join(lines)


def _side(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    out: dict[str, Any] = {"verdict": decision.verdict, "tier": decision.tier}
    if decision.rule is not None:
        out["rule"] = decision.rule.to_json()
    return out


def same_pod(src: Endpoint, dst: Endpoint) -> bool:
    """Both ends are one Pod (by name, owner name or address): its traffic to itself is always allowed.

    A workload's pod template stands for all its replicas, so a workload to itself means one replica
    to another, which policy governs like any other pair.
    """
    return src.pod is not None and src.pod is dst.pod and src.pod.kind == "Pod"


PROTOCOL_NAMES: dict[object, Protocol] = {p: p for p in PROTOCOLS}


def protocol_of(text: object) -> Protocol:
    value = str(text).upper()
    for p in PROTOCOLS:
        if p == value:
            return p
    raise PodnetError(f"protocol {text!r}: must be TCP, UDP or SCTP")


def answer(resolver: Resolver, src_ref: str, dst_ref: str, protocol: Protocol, port: int | str) -> Answer:
    src = resolver.resolve(src_ref)
    dst = resolver.resolve(dst_ref)
    number = resolver.port_number(dst, protocol, port)
    if same_pod(src, dst):
        return Answer(src, dst, protocol, number, ConnectionVerdict(True, DEFAULT_ALLOW, DEFAULT_ALLOW))
    return Answer(src, dst, protocol, number, resolver.compiled.decide(src.identity, dst.identity, protocol, number))


def _query(resolver: Resolver, text: str) -> tuple[Endpoint, Endpoint, Protocol, int]:
    """One query line read by the standard library's JSON parser, checked field by field."""
    q = json.loads(text)
    if not isinstance(q, dict):
        raise PodnetError("each query must be a JSON object")
    proto = protocol_of(q.get("protocol", "TCP"))
    src = resolver.resolve(str(q["from"]))
    dst = resolver.resolve(str(q["to"]))
    raw_port = q["port"]
    if type(raw_port) is int and 0 < raw_port < 65536:
        return src, dst, proto, raw_port
    if type(raw_port) is int or isinstance(raw_port, str):
        return src, dst, proto, resolver.port_number(dst, proto, raw_port)
    raise PodnetError(f"port {json.dumps(raw_port)}: must be a number or a port name")


def batch(resolver: Resolver, lines: Iterable[str]) -> Iterator[str]:
    """One JSON line out per JSON line in; a bad line gets an ``error`` field and the rest go on.

    The output line is the input object with ``verdict`` and ``decided_by`` appended; the JSON of
    each distinct decision pair is built once (decisions are shared objects of the compiled tables).

    A well-formed query (string ends, a valid protocol, a port number or name) is read by orjson; any
    other line by :func:`_query`, so its answer and error messages are the standard library's (orjson
    refuses what the standard library accepts, NaN and lone surrogates, and reads integers beyond 64
    bits as floats: both go the standard library's way).
    """
    compiled = resolver.compiled
    resolve = resolver.resolve
    port_number = resolver.port_number
    sides = compiled.sides
    fast_loads, dumps = orjson.loads, json.dumps
    tails: dict[tuple[int, int, bool], str] = {}
    self_tail = ', "verdict": "allowed", "decided_by": []}'
    known: dict[str, Endpoint] = {}  # resolver.resolve() without a call per reference
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            try:
                q = fast_loads(text)
                src_ref, dst_ref, raw_port, named = q["from"], q["to"], q["port"], q.get("protocol", "TCP")
                well_formed = (
                    type(src_ref) is str
                    and type(dst_ref) is str
                    and ((type(raw_port) is int and 0 < raw_port < 65536) or type(raw_port) is str)
                )
                known_proto = PROTOCOL_NAMES.get(named) if well_formed else None  # TypeError: a list or an object
            except (orjson.JSONDecodeError, KeyError, TypeError):  # TypeError: not an object
                known_proto = None
            if known_proto is not None:
                proto = known_proto
                src = known.get(src_ref)
                if src is None:
                    src = known[src_ref] = resolve(src_ref)
                dst = known.get(dst_ref)
                if dst is None:
                    dst = known[dst_ref] = resolve(dst_ref)
                port = raw_port if type(raw_port) is int else port_number(dst, proto, raw_port)
            else:
                src, dst, proto, port = _query(resolver, text)
            pod = src.pod
            if pod is not None and pod is dst.pod and pod.kind == "Pod":  # same_pod()
                yield text[:-1] + self_tail
                continue
            egress, ingress = sides(src.identity, dst.identity, proto, port)
            # A denial is told by its first denying side alone; an allowance by both sides.
            if egress is not None and egress.verdict == "deny":
                key = (id(egress), 0, False)
            elif ingress is not None and ingress.verdict == "deny":
                key = (id(ingress), 0, False)
            else:
                key = (id(egress), id(ingress), True)
            tail = tails.get(key)
            if tail is None:
                v = ConnectionVerdict(key[2], egress, ingress)
                decided = dumps([d.rule.to_json() for d in v.deciding if d.rule is not None])
                tail = tails[key] = f', "verdict": "{"allowed" if v.allowed else "denied"}", "decided_by": {decided}}}'
            yield text[:-1] + tail
        except KeyError as exc:
            yield dumps({"query": text, "error": f"missing field {exc.args[0]!r}"})
        except (PodnetError, json.JSONDecodeError) as exc:
            yield dumps({"query": text, "error": str(exc)})
