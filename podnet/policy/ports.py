"""Port tables: for each protocol, disjoint port intervals covering 1-65535, each with a decision.

A table answers "what happens to protocol P, port N" with one bisect, and two tables (the source's
egress and the destination's ingress) intersect into the connections a pair really has.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from podnet.k8s.model import PROTOCOLS, Protocol

MIN_PORT = 1
MAX_PORT = 65535
T = TypeVar("T")
Span = tuple[int, int]


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
    """Per protocol, sorted disjoint intervals with a value each; built by claiming in precedence order."""

    __slots__ = ("_free", "_his", "_los", "_taken")

    def __init__(self) -> None:
        self._free: dict[Protocol, list[Span]] = {p: [(MIN_PORT, MAX_PORT)] for p in PROTOCOLS}
        self._taken: dict[Protocol, list[Interval[T]]] = {p: [] for p in PROTOCOLS}
        self._los: dict[Protocol, list[int]] = {}
        self._his: dict[Protocol, list[int]] = {}

    def claim(self, protocol: Protocol, lo: int, hi: int, value: T) -> bool:
        """Give ``value`` to the still-unclaimed part of [lo, hi]; True when anything was claimed."""
        free = self._free[protocol]
        if not free:
            return False
        inside, outside = subtract(free, lo, hi)
        if not inside:
            return False
        self._free[protocol] = outside
        taken = self._taken[protocol]
        for a, b in inside:
            taken.append(Interval(a, b, value))
        return True

    def release(self, value: T) -> None:
        """Return every interval holding ``value`` to the unclaimed ports."""
        for proto in PROTOCOLS:
            kept = [iv for iv in self._taken[proto] if iv.value != value]
            if len(kept) != len(self._taken[proto]):
                back = [(iv.lo, iv.hi) for iv in self._taken[proto] if iv.value == value]
                self._free[proto] = sorted(self._free[proto] + back)
                self._taken[proto] = kept

    def claim_all(self, value: T) -> PortTable[T]:
        """A sealed table giving ``value`` to every port of every protocol."""
        for proto in PROTOCOLS:
            self._free[proto] = []
            self._taken[proto] = [Interval(MIN_PORT, MAX_PORT, value)]
            self._los[proto] = [MIN_PORT]
        return self

    def claim_rest(self, value: T) -> None:
        for proto in PROTOCOLS:
            for a, b in self._free[proto]:
                self._taken[proto].append(Interval(a, b, value))
            self._free[proto] = []

    def free(self, protocol: Protocol) -> list[Span]:
        return list(self._free[protocol])

    def seal(self) -> PortTable[T]:
        """Sort and index for lookups; every port must be claimed by then."""
        for proto in PROTOCOLS:
            if self._free[proto]:
                raise ValueError("port table has unclaimed ports")
            ivs = sorted(self._taken[proto], key=lambda iv: iv.lo)
            merged: list[Interval[T]] = []
            for iv in ivs:
                if merged and merged[-1].value == iv.value and merged[-1].hi + 1 == iv.lo:
                    merged[-1] = Interval(merged[-1].lo, iv.hi, iv.value)
                else:
                    merged.append(iv)
            self._taken[proto] = merged
            self._los[proto] = [iv.lo for iv in merged]
        return self

    def lookup(self, protocol: Protocol, port: int) -> T:
        ivs = self._taken[protocol]
        return ivs[bisect_right(self._los[protocol], port) - 1].value

    def intervals(self, protocol: Protocol) -> list[Interval[T]]:
        return self._taken[protocol]

    def items(self) -> Iterable[tuple[Protocol, Interval[T]]]:
        for proto in PROTOCOLS:
            for iv in self._taken[proto]:
                yield proto, iv


def format_spans(spans: list[Span]) -> str:
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
