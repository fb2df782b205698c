"""Real probes between lab pods (and from each node to its pods): one, or every pair in parallel (one prober
process per source)."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from podnet.errors import UsageError
from podnet.lab.manager import Lab, LabError


@dataclass(frozen=True, slots=True)
class Probe:
    src: str
    dst: str
    protocol: str
    port: int
    reachable: bool
    rtt_ms: float | None
    answer: str = ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src,
            "to": self.dst,
            "protocol": self.protocol,
            "port": self.port,
            "reachable": self.reachable,
            "rtt_ms": self.rtt_ms,
        }


def pod_record(lab: Lab, ref: str) -> dict[str, Any]:
    ns, _, name = ref.rpartition("/")
    record = lab.pods.get(f"{ns or 'default'}/{name}")
    if record is None:
        known = ", ".join(sorted(lab.pods)) or "none"
        raise UsageError(f"lab {lab.name} has no pod {ref!r} (pods: {known})")
    return record


def target(lab: Lab, ref: str) -> tuple[str, str | None]:
    """(address, expected answer) for ``NS/POD``, ``host:NODE`` (the node's underlay address),
    ``outside`` (the fabric's address standing for the internet) or a bare address."""
    if ref.startswith("host:"):
        return str(lab.plan.node(ref[5:]).underlay_ip), ref
    if ref == "outside":
        from podnet.lab.fabric import OUTSIDE

        return str(OUTSIDE), ref
    if "/" in ref:
        record = pod_record(lab, ref)
        if not record["ips"]:
            raise LabError(f"pod {ref} has no address")
        return record["ips"][0], f"{record['namespace']}/{record['name']}"
    return ref.removeprefix("ip:"), None


def source_netns(lab: Lab, src: str) -> tuple[str, str]:
    """(network namespace, name shown) of a probe's source: ``NS/POD``, or ``host:NODE`` (the node itself,
    whose packets to its pods come from its underlay address)."""
    if src.startswith("host:"):
        node = lab.plan.node(src[5:])
        return node.netns, f"host:{node.name}"
    record = pod_record(lab, src)
    return record["netns"], f"{record['namespace']}/{record['name']}"


def run_probes(netns: str, targets: list[tuple[str, str, int]], timeout: float) -> list[dict[str, Any]]:
    argv = [sys.executable, "-m", "podnet.lab.probe", "check", "--timeout", str(timeout)]
    argv += [f"{addr}/{proto}/{port}" for addr, proto, port in targets]
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout * 4 + 30, check=False
    )
    if proc.returncode != 0:
        raise LabError(f"probe from {netns} failed: {proc.stderr.strip()[-500:]}")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _result(src: str, dst: str, expected: str | None, raw: dict[str, Any]) -> Probe:
    ok = bool(raw["reachable"]) and (expected is None or raw["answer"] == expected)
    return Probe(
        src, dst, raw["protocol"], int(raw["port"]), ok, raw["rtt_ms"] if ok else None, raw["answer"], raw["error"]
    )


def probe(lab: Lab, src: str, dst: str, protocol: str, port: int, timeout: float) -> Probe:
    netns, shown = source_netns(lab, src)
    addr, expected = target(lab, dst)
    [raw] = run_probes(netns, [(addr, protocol, port)], timeout)
    return _result(shown, dst, expected, raw)


def matrix(lab: Lab, pairs: list[tuple[str, str, str, int]], timeout: float) -> list[Probe]:
    """Probe (src, dst, protocol, port) tuples; one prober per source pod, sources in parallel."""
    by_src: dict[str, list[tuple[str, str, int]]] = {}
    for src, dst, proto, port in pairs:
        by_src.setdefault(src, []).append((dst, proto, port))

    def one(src: str) -> list[Probe]:
        netns, _ = source_netns(lab, src)
        todo = by_src[src]
        resolved = [target(lab, dst) for dst, _, _ in todo]
        raws = run_probes(netns, [(a, p, n) for (a, _), (_, p, n) in zip(resolved, todo, strict=True)], timeout)
        return [_result(src, dst, exp, raw) for (dst, _, _), (_, exp), raw in zip(todo, resolved, raws, strict=True)]

    out: list[Probe] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for probes in pool.map(one, list(by_src)):
            out.extend(probes)
    return out


@dataclass(frozen=True, slots=True)
class Difference:
    probe: Probe
    expected: bool
    decided_by: str

    def __str__(self) -> str:
        want = "allowed" if self.expected else "denied"
        got = "reachable" if self.probe.reachable else "not reachable"
        p = self.probe
        return f"{p.src} -> {p.dst} {p.protocol}/{p.port}: analyzer says {want} ({self.decided_by}), traffic was {got}"


def expected_pairs(lab: Lab, objects: list[dict[str, Any]]) -> list[tuple[tuple[str, str, str, int], bool, str]]:
    """Every (pod, pod, declared port) of the lab with the analyzer's verdict over the API's objects."""
    from podnet.analyzer.endpoints import Resolver
    from podnet.analyzer.verdict import answer
    from podnet.k8s.manifests import Document
    from podnet.k8s.model import Source
    from podnet.k8s.parse import build_cluster
    from podnet.policy.compiler import compile_cluster

    docs = [Document(Source("api", i), o) for i, o in enumerate(objects)]
    cluster = build_cluster(docs)
    resolver = Resolver(compile_cluster(cluster))
    out: list[tuple[tuple[str, str, str, int], bool, str]] = []
    refs = sorted(lab.pods)
    for src in refs:
        for dst in refs:
            if src == dst:
                continue
            for port in lab.pods[dst]["ports"]:
                ans = answer(resolver, src, dst, port["protocol"], port["port"])
                why = "; ".join(str(d) for d in ans.verdict.deciding) or "no policy"
                out.append(((src, dst, port["protocol"], port["port"]), ans.verdict.allowed, why))
    out += external_pairs(lab, resolver)
    out += node_pairs(lab, objects)
    return out


def node_pairs(lab: Lab, objects: list[dict[str, Any]]) -> list[tuple[tuple[str, str, str, int], bool, str]]:
    """Every node (``host:NODE``) to each declared port of its own pods, with the verdict of the policy as
    that node's agent compiles it: the node's address is the ``host`` identity, always allowed in."""
    from podnet.k8s.manifests import Document
    from podnet.k8s.model import Source
    from podnet.k8s.parse import build_cluster
    from podnet.policy.compiler import compile_cluster
    from podnet.policy.identity import HOST

    out: list[tuple[tuple[str, str, str, int], bool, str]] = []
    for node in lab.plan.nodes:
        cluster = build_cluster([Document(Source("api", i), o) for i, o in enumerate(objects)])
        compiled = compile_cluster(cluster, host_addresses=(node.underlay_ip,))
        for dst in sorted(lab.pods):
            record = lab.pods[dst]
            if record["node"] != node.name:
                continue
            ident = compiled.identities.pod_identity.get((record["namespace"], record["name"], "Pod"))
            if ident is None:
                continue
            for port in record["ports"]:
                verdict = compiled.decide(HOST, ident, port["protocol"], port["port"])
                why = "; ".join(str(d) for d in verdict.deciding) or "no policy"
                out.append(((f"host:{node.name}", dst, port["protocol"], port["port"]), verdict.allowed, why))
    return out


def external_pairs(lab: Lab, resolver: Any) -> list[tuple[tuple[str, str, str, int], bool, str]]:
    """Every pod to its own node (``host:NODE``) and to ``outside``, with the analyzer's verdict for
    the address: an ipBlock or ``world`` peer, as for any address outside the cluster."""
    from podnet.analyzer.verdict import answer
    from podnet.lab.fabric import OUTSIDE
    from podnet.lab.manager import HOST_PROBE_PORTS, OUTSIDE_PROBE_PORTS

    out: list[tuple[tuple[str, str, str, int], bool, str]] = []
    for src in sorted(lab.pods):
        node = lab.plan.node(lab.pods[src]["node"])
        for dst, addr, ports in (
            (f"host:{node.name}", node.underlay_ip, HOST_PROBE_PORTS),
            ("outside", OUTSIDE, OUTSIDE_PROBE_PORTS),
        ):
            for proto, numbers in ports.items():
                for number in numbers:
                    ans = answer(resolver, src, f"ip:{addr}", proto.upper(), number)  # type: ignore[arg-type]
                    why = "; ".join(str(d) for d in ans.verdict.deciding) or "no policy"
                    out.append(((src, dst, proto.upper(), number), ans.verdict.allowed, why))
    return out


def compare_with_analyzer(
    lab: Lab, objects: list[dict[str, Any]], timeout: float
) -> tuple[list[Probe], list[Difference]]:
    """Probe every pair and port; the probes that disagree with the analyzer."""
    expected = expected_pairs(lab, objects)
    probes = matrix(lab, [pair for pair, _, _ in expected], timeout)
    by_pair = {(p.src, p.dst, p.protocol, p.port): p for p in probes}
    diffs = [
        Difference(by_pair[pair], allowed, why) for pair, allowed, why in expected if by_pair[pair].reachable != allowed
    ]
    return probes, diffs
