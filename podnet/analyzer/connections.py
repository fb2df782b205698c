"""Sets of allowed connections between two endpoints: per protocol, sorted disjoint port spans."""

from __future__ import annotations

from dataclasses import dataclass

from podnet.k8s.model import PROTOCOLS, Protocol
from podnet.policy.compiler import CompiledPolicy, Decision
from podnet.policy.ports import MAX_PORT, MIN_PORT, PortTable, Span, subtract

FULL: tuple[Span, ...] = ((MIN_PORT, MAX_PORT),)


@dataclass(frozen=True, slots=True)
class Connections:
    spans: tuple[tuple[Protocol, tuple[Span, ...]], ...]

    @staticmethod
    def of(by_proto: dict[Protocol, list[Span]]) -> Connections:
        return Connections(tuple((p, tuple(_merge(by_proto.get(p, [])))) for p in PROTOCOLS if by_proto.get(p)))

    def get(self, proto: Protocol) -> tuple[Span, ...]:
        for p, spans in self.spans:
            if p == proto:
                return spans
        return ()

    @property
    def is_all(self) -> bool:
        return all(self.get(p) == FULL for p in PROTOCOLS)

    @property
    def is_none(self) -> bool:
        return not self.spans

    def minus(self, other: Connections) -> Connections:
        out: dict[Protocol, list[Span]] = {}
        for proto, spans in self.spans:
            rest = list(spans)
            for lo, hi in other.get(proto):
                rest = subtract(rest, lo, hi)[1]
            if rest:
                out[proto] = rest
        return Connections.of(out)

    def __str__(self) -> str:
        if self.is_all:
            return "All Connections"
        if self.is_none:
            return "No Connections"
        parts: list[str] = []
        for proto, spans in self.spans:
            if spans == FULL:
                parts.append(proto)
            else:
                parts.append(f"{proto} " + ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans))
        return ",".join(parts)

    def to_json(self) -> dict[str, list[str]] | str:
        if self.is_all:
            return "all"
        return {p: [str(a) if a == b else f"{a}-{b}" for a, b in spans] for p, spans in self.spans}


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _allowed(table: PortTable[Decision] | None, proto: Protocol) -> list[Span]:
    if table is None:
        return [FULL[0]]
    return [(iv.lo, iv.hi) for iv in table.intervals(proto) if iv.value.verdict == "allow"]


def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def connections(compiled: CompiledPolicy, src: int, dst: int, src_is_pod: bool, dst_is_pod: bool) -> Connections:
    """What ``src`` may open to ``dst``: the source's egress intersected with the destination's ingress."""
    egress = compiled.table(src, "egress", dst) if src_is_pod else None
    ingress = compiled.table(dst, "ingress", src) if dst_is_pod else None
    return Connections.of({p: _intersect(_allowed(egress, p), _allowed(ingress, p)) for p in PROTOCOLS})
