"""Checking a :class:`~podnet.analyzer.suggest.Suggestion` with the project's own parser and analyzer.

Pure: no I/O. The suggested policies go through YAML text and the manifest validator (what a user would
apply), together with the namespaces and pods the flows name (their stable labels and addresses). The
analyzer then answers, with the suggested policies alone:

- every observed connection (with a side in scope) must be allowed;
- every other pair of the pods and outside addresses seen, on every protocol/port seen, should be denied.
  Pairs allowed although never observed are listed as ``broader`` (labels that do not tell workloads
  apart, or addresses grouped into a CIDR); an observed connection denied is ``missing`` (a bug).
  Ends the analyzer cannot tell apart (one identity, one workload or address block) count once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import yaml

from podnet.analyzer.endpoints import Endpoint, Resolver
from podnet.analyzer.suggest import PeerKey, Side, Suggestion, WorkloadKey
from podnet.analyzer.verdict import same_pod
from podnet.k8s.manifests import Document, parse_text
from podnet.k8s.model import IPNetwork, Protocol, Source
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import compile_cluster

MAX_PAIR_CHECKS = 500_000


@dataclass
class CheckReport:
    observed: int = 0
    observed_allowed: int = 0
    unobserved: int = 0
    unobserved_denied: int = 0
    missing: list[str] = field(default_factory=list)  # observed connections the suggestion denies
    broader: list[str] = field(default_factory=list)  # unobserved pairs the suggestion allows
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        text = f"checked by the analyzer: {self.observed_allowed} of {self.observed} observed connections allowed"
        if self.skipped:
            return f"{text}; {self.skipped}"
        return f"{text}, {self.unobserved_denied} of {self.unobserved} unobserved pairs denied"


def to_yaml(policies: list[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in the order written."""
    return "---\n".join(yaml.safe_dump(p, sort_keys=False, default_flow_style=False) for p in policies)


def world_documents(suggestion: Suggestion) -> list[Document]:
    """Namespaces and pods as the flows show them (stable labels, observed addresses)."""
    docs: list[Document] = []
    namespaces = sorted({k.namespace for k in suggestion.workloads})
    for i, ns in enumerate(namespaces):
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        docs.append(Document(Source("<flows: namespaces>", i), obj))
    taken: set[str] = set()
    seen_pods: set[tuple[str, str]] = set()
    for key in sorted(suggestion.workloads):
        wl = suggestion.workloads[key]
        for pod, labels in sorted(wl.pods.items()):
            if (key.namespace, pod) in seen_pods:
                continue
            seen_pods.add((key.namespace, pod))
            ips = sorted(a for a in wl.addresses.get(pod, set()) if a not in taken)
            taken.update(ips)
            obj = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": key.namespace, "labels": labels},
                "status": {"podIPs": [{"ip": a} for a in ips]},
            }
            docs.append(Document(Source("<flows: pods>", len(docs)), obj))
    return docs


def _peer_key(side: Side, prefix: tuple[int, int]) -> PeerKey:
    if side.workload is not None:
        return side.workload
    addr = ipaddress.ip_address(side.address)
    net: IPNetwork = ipaddress.ip_network(f"{addr}/{prefix[0] if addr.version == 4 else prefix[1]}", strict=False)
    return net


def check(
    suggestion: Suggestion, namespace: str | None = None, cidr_prefix: tuple[int, int] = (32, 128)
) -> CheckReport:
    """Validate the suggested YAML and compare the analyzer's verdicts with the observed connections.

    Raises :class:`~podnet.errors.ManifestError` when the suggested policies do not validate.
    """
    policy_docs = parse_text(to_yaml(suggestion.policies), "<suggested policies>") if suggestion.policies else []
    cluster = build_cluster(world_documents(suggestion) + policy_docs)
    resolver = Resolver(compile_cluster(cluster))
    decide = resolver.compiled.decide
    report = CheckReport()

    def in_scope(side: Side) -> bool:
        return side.workload is not None and (namespace is None or side.workload.namespace == namespace)

    observed: set[tuple[PeerKey, PeerKey, Protocol, int]] = set()
    sides: dict[str, Side] = {}
    ports: set[tuple[Protocol, int]] = set()
    for c in suggestion.connections:
        observed.add((_peer_key(c.src, cidr_prefix), _peer_key(c.dst, cidr_prefix), c.protocol, c.port))
        ports.add((c.protocol, c.port))
        for side in (c.src, c.dst):
            sides.setdefault(side.ref, side)
        if not (in_scope(c.src) or in_scope(c.dst)):
            continue
        report.observed += 1
        if decide(
            resolver.resolve(c.src.ref).identity, resolver.resolve(c.dst.ref).identity, c.protocol, c.port
        ).allowed:
            report.observed_allowed += 1
        else:
            report.missing.append(f"{c.src.ref} -> {c.dst.ref} {c.protocol}/{c.port}")
    # Ends alike for the analyzer (one identity) and for the expectation (one peer key) are checked once:
    # one representative per group, and within a group of several pods one pair of two of them.
    groups: dict[tuple[int, PeerKey, bool], list[Side]] = {}
    endpoints: dict[str, Endpoint] = {}
    for side in sorted(sides.values(), key=lambda s: s.ref):
        ep = endpoints[side.ref] = resolver.resolve(side.ref)
        groups.setdefault((ep.identity, _peer_key(side, cidr_prefix), in_scope(side)), []).append(side)
    pod_groups = sum(1 for members in groups.values() if members[0].workload is not None)
    if (pod_groups**2 + 2 * pod_groups * (len(groups) - pod_groups)) * len(ports) > MAX_PAIR_CHECKS:
        report.skipped = f"unobserved pairs not checked (more than {MAX_PAIR_CHECKS} pair/port combinations)"
        return report
    pairs: list[tuple[Side, Side]] = []
    for g1, members1 in groups.items():
        for g2, members2 in groups.items():
            if g1 != g2:
                pairs.append((members1[0], members2[0]))
            elif len(members1) > 1:
                pairs.append((members1[0], members1[1]))
    for src, dst in pairs:
        if not (in_scope(src) or in_scope(dst)) or (src.workload is None and dst.workload is None):
            continue
        s_ep, d_ep = endpoints[src.ref], endpoints[dst.ref]
        if same_pod(s_ep, d_ep):
            continue
        s_key, d_key = _peer_key(src, cidr_prefix), _peer_key(dst, cidr_prefix)
        for proto, port in sorted(ports):
            if (s_key, d_key, proto, port) in observed:
                continue
            report.unobserved += 1
            if decide(s_ep.identity, d_ep.identity, proto, port).allowed:
                report.broader.append(f"{src.ref} -> {dst.ref} {proto}/{port}")
            else:
                report.unobserved_denied += 1
    return report


__all__ = ["CheckReport", "WorkloadKey", "check", "to_yaml", "world_documents"]
