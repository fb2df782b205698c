"""The reachability matrix: every endpoint pair with the connections it allows, and its formats."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from podnet.analyzer.connections import Connections, connections
from podnet.analyzer.endpoints import Endpoint, Resolver

FORMATS = ("table", "json", "csv", "md", "dot")


@dataclass(frozen=True, slots=True)
class Cell:
    src: Endpoint
    dst: Endpoint
    conns: Connections


def matrix(resolver: Resolver, endpoints: list[Endpoint] | None = None) -> list[Cell]:
    """Every ordered pair of endpoints, at least one of them a pod; a workload also to itself (replica to replica)."""
    eps = endpoints if endpoints is not None else resolver.endpoints()
    compiled = resolver.compiled
    cells: list[Cell] = []
    for src in eps:
        for dst in eps:
            if (src.ref == dst.ref and (src.pod is None or src.pod.kind == "Pod")) or (
                not src.is_pod and not dst.is_pod
            ):
                continue
            cells.append(Cell(src, dst, connections(compiled, src.identity, dst.identity, src.is_pod, dst.is_pod)))
    return cells


def render(cells: list[Cell], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            [
                {"from": c.src.ref, "to": c.dst.ref, "connections": str(c.conns), "ports": c.conns.to_json()}
                for c in cells
            ],
            indent=2,
        )
    rows = [(c.src.ref, c.dst.ref, str(c.conns)) for c in cells]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["from", "to", "connections"])
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    if fmt == "md":
        lines = ["| from | to | connections |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        return "\n".join(lines)
    if fmt == "dot":
        lines = ["digraph reachability {", "  rankdir=LR;"]
        for c in cells:
            if not c.conns.is_none:
                lines.append(f'  "{c.src.ref}" -> "{c.dst.ref}" [label="{c.conns}"];')
        lines.append("}")
        return "\n".join(lines)
    w1 = max([4, *(len(r[0]) for r in rows)])
    w2 = max([2, *(len(r[1]) for r in rows)])
    lines = [f"{'FROM':<{w1}}  {'TO':<{w2}}  CONNECTIONS"]
    lines += [f"{a:<{w1}}  {b:<{w2}}  {c}" for a, b, c in rows]
    return "\n".join(lines)
