"""The editor's questions, answered by the real analyzer: validation, lint, workloads, matrix, graphs, explain.

Input is the editor's files (name + text), parsed exactly as ``podnet policy`` parses files on disk, so a
problem reads the same in the browser as on the command line. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podnet.analyzer import explanation
from podnet.analyzer import lint as lint_mod
from podnet.analyzer import matrix as matrix_mod
from podnet.analyzer.connections import connections
from podnet.analyzer.endpoints import Endpoint, Resolver
from podnet.errors import ManifestError
from podnet.k8s.manifests import Document, parse_text
from podnet.k8s.model import PROTOCOLS, Cluster, Protocol
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import compile_cluster
from podnet.ui.graph import policy_graphs
from podnet.ui.problems import parse_problem


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One file of the editor: a name (used in problem messages) and its YAML or JSON text."""

    name: str
    text: str


def parse_files(files: Sequence[ManifestFile]) -> tuple[list[Document], list[str]]:
    """Every document of every file, and the problems of files that do not parse (the others still count)."""
    docs: list[Document] = []
    problems: list[str] = []
    for f in files:
        try:
            docs.extend(parse_text(f.text, f.name))
        except ManifestError as exc:
            problems.extend(exc.problems)
    return docs, problems


def load_cluster(files: Sequence[ManifestFile]) -> Cluster:
    """The validated cluster of the files; raises ManifestError listing every problem."""
    docs, problems = parse_files(files)
    if problems:
        raise ManifestError(problems)
    return build_cluster(docs)


def _valid_part(docs: list[Document]) -> Cluster | None:
    """The cluster of the documents that are valid on their own (None when even those clash)."""
    good = []
    for doc in docs:
        try:
            build_cluster([doc])
        except ManifestError:
            continue
        good.append(doc)
    try:
        return build_cluster(good)
    except ManifestError:
        return None


def _endpoint_json(ep: Endpoint) -> dict[str, Any]:
    kind = ep.pod.kind if ep.pod is not None else "world" if ep.ref.startswith("world") else "cidr"
    return {"ref": ep.ref, "kind": kind, "is_pod": ep.is_pod, "address": str(ep.address) if ep.address else None}


def _workloads(cluster: Cluster) -> list[dict[str, Any]]:
    return [
        {
            "ref": p.ref,
            "kind": p.kind,
            "namespace": p.namespace,
            "name": p.name,
            "labels": dict(sorted(p.labels.items())),
            "ports": [{"name": cp.name, "port": cp.port, "protocol": cp.protocol} for cp in p.ports],
            "ips": [str(a) for a in p.ips],
        }
        for p in sorted(cluster.pods, key=lambda p: (p.namespace, p.name))
    ]


def _namespaces(cluster: Cluster) -> list[dict[str, Any]]:
    return [
        {"name": ns.name, "labels": dict(sorted(ns.labels.items())), "defined": ns.defined}
        for ns in sorted(cluster.namespaces.values(), key=lambda n: n.name)
    ]


def analyze(files: Sequence[ManifestFile]) -> dict[str, Any]:
    """Validation problems, warnings, lint findings, workloads, policy graphs and the reachability matrix.

    With problems, ``matrix`` and ``lint`` are None (the analyzer refuses invalid input, as the CLI does),
    while the graphs and workloads come from the documents that are valid on their own.
    """
    docs, problems = parse_files(files)
    cluster: Cluster | None = None
    if not problems:
        try:
            cluster = build_cluster(docs)
        except ManifestError as exc:
            problems = exc.problems
    if cluster is None:
        partial = _valid_part(docs)
        return {
            "valid": False,
            "errors": [parse_problem(p).to_json() for p in problems],
            "warnings": [parse_problem(w.removeprefix("warning: ")).to_json() for w in partial.warnings]
            if partial
            else [],
            "lint": None,
            "namespaces": _namespaces(partial) if partial else [],
            "workloads": _workloads(partial) if partial else [],
            "policies": policy_graphs(partial) if partial else [],
            "matrix": None,
        }
    compiled = compile_cluster(cluster)
    resolver = Resolver(compiled)
    endpoints = resolver.endpoints()
    cells = matrix_mod.matrix(resolver, endpoints)
    return {
        "valid": True,
        "errors": [],
        "warnings": [parse_problem(w.removeprefix("warning: ")).to_json() for w in cluster.warnings],
        "lint": [f.to_json() for f in lint_mod.lint(compiled)],
        "namespaces": _namespaces(cluster),
        "workloads": _workloads(cluster),
        "policies": policy_graphs(cluster),
        "matrix": {
            "endpoints": [_endpoint_json(e) for e in endpoints],
            "cells": [
                {"from": c.src.ref, "to": c.dst.ref, "connections": str(c.conns), "ports": c.conns.to_json()}
                for c in cells
            ],
        },
    }


def default_port(resolver: Resolver, src: Endpoint, dst: Endpoint) -> tuple[Protocol, int]:
    """The port a cell's explanation starts from: the first allowed one, else the destination's first port."""
    conns = connections(resolver.compiled, src.identity, dst.identity, src.is_pod, dst.is_pod)
    for proto in PROTOCOLS:
        spans = conns.get(proto)
        if spans and not conns.is_all:
            return proto, spans[0][0]
    if dst.pod is not None and dst.pod.ports:
        first = dst.pod.ports[0]
        return first.protocol, first.port
    return "TCP", 80


def explain(
    files: Sequence[ManifestFile], src_ref: str, dst_ref: str, protocol: Protocol | None, port: int | str | None
) -> dict[str, Any]:
    """``podnet policy explain`` for one connection: the verdict, each side's rules in order, and its text."""
    resolver = Resolver(compile_cluster(load_cluster(files)))
    src, dst = resolver.resolve(src_ref), resolver.resolve(dst_ref)
    if port is None:
        guess_proto, port = default_port(resolver, src, dst)
        protocol = protocol or guess_proto
    out = explanation.explain(resolver, src_ref, dst_ref, protocol or "TCP", port)
    return {**out.to_json(), "text": out.text()}
