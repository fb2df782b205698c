"""Port tables: for each protocol, disjoint port intervals covering 1-65535, each with a decision.

A table answers "what happens to protocol P, port N" with one bisect, and two tables (the source's
egress and the destination's ingress) intersect into the connections a pair really has.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from podnet.k8s.model import PROTOCOLS, Protocol

MIN_PORT = 1
MAX_PORT = 65535
T = TypeVar("T")
Span = tuple[int, int]
Part = tuple[list[int], list[T]]  # the start of each interval, its value (the last one runs to MAX_PORT)


@dataclass(frozen=True, slots=True)
class Interval(Generic[T]):
    lo: int
    hi: int
    value: T


def subtract(spans: list[Span], lo: int, hi: int) -> tuple[list[Span], list[Span]]:
    """Split ``spans`` by [lo, hi]: (the parts inside, the parts left outside)."""
    inside: list[Span] = []
    outside: list[Span] = []
    for a, b in spans:
        if b < lo or a > hi:
            outside.append((a, b))
            continue
        if a < lo:
            outside.append((a, lo - 1))
        if b > hi:
            outside.append((hi + 1, b))
        inside.append((max(a, lo), min(b, hi)))
    return inside, outside


class PortTable(Generic[T]):
    """Per protocol, sorted disjoint intervals covering every port, a value each; adjacent intervals
    never hold equal values. Immutable (tables are shared): built by :func:`paint` or :meth:`uniform`.

    ``parts``: per protocol, the start of each interval and its value; read it, never change it."""

    __slots__ = ("_intervals", "parts")

    def __init__(self, parts: dict[Protocol, Part[T]]) -> None:
        self.parts = parts
        self._intervals: dict[Protocol, list[Interval[T]]] | None = None  # made on first use

    @classmethod
    def uniform(cls, value: T) -> PortTable[T]:
        """``value`` for every port of every protocol."""
        part: Part[T] = ([MIN_PORT], [value])
        return cls({p: part for p in PROTOCOLS})

    def lookup(self, protocol: Protocol, port: int) -> T:
        los, values = self.parts[protocol]
        return values[bisect_right(los, port) - 1]

    def intervals(self, protocol: Protocol) -> list[Interval[T]]:
        """The intervals of ``protocol`` in order (a list shared by every caller: never change it)."""
        if self._intervals is None:
            self._intervals = {}
            for proto, (los, values) in self.parts.items():
                his = [lo - 1 for lo in los[1:]]
                his.append(MAX_PORT)
                self._intervals[proto] = [Interval(lo, hi, v) for lo, hi, v in zip(los, his, values, strict=True)]
        return self._intervals[protocol]

    def items(self) -> Iterator[tuple[Protocol, Interval[T]]]:
        for proto in PROTOCOLS:
            for iv in self.intervals(proto):
                yield proto, iv


def paint(claims: Iterable[tuple[Protocol, int, int, T]], rest: T) -> PortTable[T]:
    """The table giving each port the value of the first claim (protocol, lo, hi, value) that covers
    it, and ``rest`` to the ports no claim covers."""
    by_proto: dict[Protocol, list[tuple[int, int, T]]] = {}
    for proto, lo, hi, value in claims:
        found = by_proto.get(proto)
        if found is None:
            by_proto[proto] = [(lo, hi, value)]
        else:
            found.append((lo, hi, value))
    unclaimed: Part[T] = ([MIN_PORT], [rest])
    return PortTable({p: _paint(by_proto[p], rest) if p in by_proto else unclaimed for p in PROTOCOLS})


def _paint(claims: list[tuple[int, int, T]], rest: T) -> Part[T]:
    if len(claims) == 1:  # the common case, without a sort
        lo, hi, value = claims[0]
        if value is rest or value == rest:
            return [MIN_PORT], [rest]
        los = [MIN_PORT, lo, hi + 1] if lo > MIN_PORT else [lo, hi + 1]
        values = [rest, value, rest] if lo > MIN_PORT else [value, rest]
        if hi == MAX_PORT:
            los.pop()
            values.pop()
        return los, values
    # Between two consecutive starts no claim begins or ends: one value holds from each start to the next.
    starts = {MIN_PORT}
    for lo, hi, _ in claims:
        starts.add(lo)
        if hi < MAX_PORT:
            starts.add(hi + 1)
    los = []
    values = []
    for start in sorted(starts):
        value = rest
        for lo, hi, claimed in claims:
            if lo <= start <= hi:
                value = claimed
                break
        if values and (values[-1] is value or values[-1] == value):
            continue
        los.append(start)
        values.append(value)
    return los, values


def format_spans(spans: list[Span]) -> str:
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
