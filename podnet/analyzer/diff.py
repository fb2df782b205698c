"""Connections gained and lost between two sets of manifests."""

from __future__ import annotations

import json
from dataclasses import dataclass

from podnet.analyzer.connections import Connections, connections
from podnet.analyzer.endpoints import Endpoint, Resolver


@dataclass(frozen=True, slots=True)
class Change:
    src: str
    dst: str
    gained: Connections
    lost: Connections

    def to_json(self) -> dict[str, object]:
        return {
            "from": self.src,
            "to": self.dst,
            "gained": str(self.gained) if not self.gained.is_none else None,
            "lost": str(self.lost) if not self.lost.is_none else None,
        }


def _key(ep: Endpoint) -> str:
    if ep.pod is not None:
        return ep.ref
    return f"ip:{ep.address} ({ep.ref})"


def _endpoint_map(resolver: Resolver, others: list[Endpoint]) -> dict[str, Endpoint]:
    out = {_key(e): e for e in resolver.endpoints()}
    for e in others:  # the other side's external ranges, looked up by their representative address here
        if e.pod is None and _key(e) not in out:
            found = resolver.resolve(f"ip:{e.address}")
            if found.pod is None:
                out[_key(e)] = found
    return out


def diff(old: Resolver, new: Resolver) -> list[Change]:
    old_eps = _endpoint_map(old, new.endpoints())
    new_eps = _endpoint_map(new, old.endpoints())
    keys = sorted(set(old_eps) | set(new_eps))
    changes: list[Change] = []
    none = Connections(())
    for s in keys:
        for d in keys:
            if s == d:
                continue
            sides: list[Connections] = []
            for eps, res in ((old_eps, old), (new_eps, new)):
                src, dst = eps.get(s), eps.get(d)
                if src is None or dst is None or (not src.is_pod and not dst.is_pod):
                    sides.append(none)
                else:
                    sides.append(connections(res.compiled, src.identity, dst.identity, src.is_pod, dst.is_pod))
            gained, lost = sides[1].minus(sides[0]), sides[0].minus(sides[1])
            if not gained.is_none or not lost.is_none:
                changes.append(Change(s, d, gained, lost))
    return changes


def render(changes: list[Change], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([c.to_json() for c in changes], indent=2)
    if not changes:
        return "no connection gained or lost"
    lines = []
    for c in changes:
        if not c.gained.is_none:
            lines.append(f"+ {c.src} => {c.dst} : {c.gained}")
        if not c.lost.is_none:
            lines.append(f"- {c.src} => {c.dst} : {c.lost}")
    return "\n".join(lines)
