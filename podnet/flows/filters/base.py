"""Composition of the per-dimension predicates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from podnet.errors import UsageError
from podnet.flows.model import Flow

from . import ip, label, namespace, pod, port, protocol, verdict
from . import type as event_type

Predicate = Callable[[Flow], bool]

# dimension name → factory(value) -> predicate; a factory raises ValueError on a bad value.
DIMENSIONS: dict[str, Callable[[str], Predicate]] = {
    "verdict": verdict.matches,
    "namespace": namespace.matches,
    "pod": pod.either,
    "from-pod": pod.source,
    "to-pod": pod.destination,
    "ip": ip.matches,
    "label": label.matches,
    "protocol": protocol.matches,
    "port": port.matches,
    "type": event_type.matches,
}


@dataclass(frozen=True, slots=True)
class FilterTerm:
    """``dimension=value``, negated by ``--not`` (query parameter ``not-<dimension>``)."""

    dimension: str
    value: str
    negated: bool = False

    @property
    def query_key(self) -> str:
        return f"not-{self.dimension}" if self.negated else self.dimension


def parse_terms(items: Iterable[tuple[str, str]]) -> list[FilterTerm]:
    """Terms from (key, value) pairs such as query parameters; ``not-port`` negates ``port``; others are ignored."""
    out: list[FilterTerm] = []
    for key, value in items:
        negated = key.startswith("not-")
        dim = key[4:] if negated else key
        if dim in DIMENSIONS:
            out.append(FilterTerm(dim, value, negated))
    return out


def _any(preds: list[Predicate]) -> Predicate:
    return lambda f: any(p(f) for p in preds)


def _not(pred: Predicate) -> Predicate:
    return lambda f: not pred(f)


def build(terms: Iterable[FilterTerm]) -> Predicate:
    """One predicate for all terms (no terms: every flow)."""
    groups: dict[tuple[str, bool], list[Predicate]] = {}
    for term in terms:
        try:
            pred = DIMENSIONS[term.dimension](term.value)
        except (ValueError, KeyError) as exc:
            raise UsageError(f"bad flow filter --{term.dimension} {term.value!r}: {exc}") from exc
        groups.setdefault((term.dimension, term.negated), []).append(pred)
    checks: list[Predicate] = []
    for (_, negated), preds in groups.items():
        either = _any(preds)
        checks.append(_not(either) if negated else either)
    return lambda f: all(c(f) for c in checks)
