"""The mistakes people make with network policies, each with its fix."""

from __future__ import annotations

import json
from dataclasses import dataclass

from podnet.k8s.model import Cluster, NetworkPolicy, Peer
from podnet.policy.compiler import CompiledPolicy


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    policy: str
    field: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "policy": self.policy, "field": self.field, "message": self.message, "fix": self.fix}

    def __str__(self) -> str:
        where = f"{self.policy}: {self.field}: " if self.field else f"{self.policy}: "
        return f"[{self.code}] {where}{self.message}\n    fix: {self.fix}"


def _peer_lists(np: NetworkPolicy) -> list[tuple[str, tuple[Peer, ...]]]:
    out = []
    for direction, rules, field in (("ingress", np.ingress, "from"), ("egress", np.egress, "to")):
        for i, rule in enumerate(rules):
            if rule.peers:
                out.append((f"spec.{direction}[{i}].{field}", rule.peers))
    return out


def lint(compiled: CompiledPolicy) -> list[Finding]:
    cluster = compiled.cluster
    findings: list[Finding] = []
    findings += _ored_selectors(cluster)
    findings += _selects_nothing(compiled)
    findings += _egress_without_dns(compiled)
    findings += _ipblock_on_pods(cluster)
    findings += _unknown_named_ports(cluster)
    return findings


def _ored_selectors(cluster: Cluster) -> list[Finding]:
    out = []
    for np in cluster.policies:
        for path, peers in _peer_lists(np):
            for i in range(len(peers) - 1):
                a, b = peers[i], peers[i + 1]
                ns_only = [p for p in (a, b) if p.namespace_selector is not None and p.pod_selector is None]
                pod_only = [p for p in (a, b) if p.pod_selector is not None and p.namespace_selector is None]
                if ns_only and pod_only:
                    out.append(
                        Finding(
                            "or-selectors",
                            f"NetworkPolicy {np.ref}",
                            f"{path}[{i}], {path}[{i + 1}]",
                            "namespaceSelector and podSelector are two separate peers here, so they are OR'd: "
                            "every pod of the selected namespaces, plus the selected pods of the policy's namespace",
                            "if you meant 'these pods in these namespaces', put podSelector in the same list item as "
                            "namespaceSelector (drop the '-' before podSelector)",
                        )
                    )
    return out


def _selects_nothing(compiled: CompiledPolicy) -> list[Finding]:
    out = []
    ids = compiled.identities
    for np in compiled.cluster.policies:
        if not any(
            np.pod_selector.matches(ids.by_id[i].label_dict) for i in ids.pod_identities_by_ns.get(np.namespace, ())
        ):
            out.append(
                Finding(
                    "selects-nothing",
                    f"NetworkPolicy {np.ref}",
                    "spec.podSelector",
                    f"selects no pod in namespace {np.namespace} ({np.pod_selector.describe()})",
                    "check the labels against the pods' labels (kubectl get pods --show-labels) and the namespace",
                )
            )
    for anp in compiled.cluster.admin_policies:
        if not compiled.selectors.admin_peer(anp.subject):
            out.append(
                Finding(
                    "selects-nothing",
                    f"AdminNetworkPolicy {anp.name}",
                    "spec.subject",
                    f"selects no pod ({anp.subject.describe()})",
                    "check the subject's selectors",
                )
            )
    return out


def _egress_without_dns(compiled: CompiledPolicy) -> list[Finding]:
    out = []
    ids = compiled.identities
    peers = list(ids.by_id)
    flagged: set[str] = set()
    for ident in ids.pods():
        dpol = compiled.direction(ident.id, "egress")
        if not dpol.isolated_by:
            continue
        if any(compiled.table(ident.id, "egress", p).lookup("UDP", 53).verdict == "allow" for p in peers):
            continue
        for ref in dpol.isolated_by:
            if ref not in flagged:
                flagged.add(ref)
                out.append(
                    Finding(
                        "egress-without-dns",
                        f"NetworkPolicy {ref}",
                        "spec.policyTypes",
                        f"isolates egress of pods (e.g. {ident.describe()}) that may then send DNS (UDP 53) nowhere: "
                        "name lookups will fail",
                        "add an egress rule allowing UDP and TCP port 53 to kube-system pods labelled k8s-app=kube-dns",
                    )
                )
    return out


def _ipblock_on_pods(cluster: Cluster) -> list[Finding]:
    out = []
    for np in cluster.policies:
        for path, peers in _peer_lists(np):
            for i, peer in enumerate(peers):
                if peer.ip_block is None:
                    continue
                hit = [p.ref for p in cluster.pods if any(peer.ip_block.contains(a) for a in p.ips)]
                if hit:
                    out.append(
                        Finding(
                            "ipblock-on-pods",
                            f"NetworkPolicy {np.ref}",
                            f"{path}[{i}].ipBlock",
                            f"{peer.ip_block.describe()} contains the addresses of pods {', '.join(hit[:5])}"
                            + (" …" if len(hit) > 5 else "")
                            + "; pod addresses change when pods restart",
                            "select pods with podSelector/namespaceSelector; keep ipBlock for addresses outside the "
                            "cluster (add the pod CIDR to except)",
                        )
                    )
    return out


def _unknown_named_ports(cluster: Cluster) -> list[Finding]:
    out = []
    declared = {(cp.name, cp.protocol) for p in cluster.pods for cp in p.ports if cp.name}
    for np in cluster.policies:
        for direction, rules in (("ingress", np.ingress), ("egress", np.egress)):
            for i, rule in enumerate(rules):
                for j, port in enumerate(rule.ports or ()):
                    if port.name is not None and (port.name, port.protocol) not in declared:
                        out.append(
                            Finding(
                                "unknown-named-port",
                                f"NetworkPolicy {np.ref}",
                                f"spec.{direction}[{i}].ports[{j}].port",
                                f"no pod declares a {port.protocol} container port named {port.name!r}: this port "
                                "matches nothing",
                                "name the port in the pod template (ports[].name) or use its number",
                            )
                        )
    return out


def render(findings: list[Finding], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([f.to_json() for f in findings], indent=2)
    if not findings:
        return "no problems found"
    return "\n".join(str(f) for f in findings)
