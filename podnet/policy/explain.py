"""Why a connection gets its verdict: every rule on each side, whether it matched, and why not.

The steps walk the same compiled rules, in the same order, as the port tables; the final decision
of each side is read from the compiled table, so an explanation never disagrees with a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podnet.k8s.model import AdminNetworkPolicy, Direction, NetworkPolicy, PortSpec, Protocol
from podnet.policy.compiler import CompiledPolicy, CompiledRule, Decision, expand_ports


@dataclass(frozen=True, slots=True)
class RuleStep:
    rule: str
    action: str
    peer_matched: bool
    port_matched: bool
    peers: str
    ports: str
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "action": self.action,
            "peer_matched": self.peer_matched,
            "port_matched": self.port_matched,
            "peers": self.peers,
            "ports": self.ports,
            "outcome": self.outcome,
        }


@dataclass
class SideExplanation:
    direction: Direction
    pod: str
    identity: int
    admin_policies: list[str] = field(default_factory=list)
    network_policies: list[str] = field(default_factory=list)
    isolated_by: list[str] = field(default_factory=list)
    baseline: bool = False
    steps: list[RuleStep] = field(default_factory=list)
    decision: Decision | None = None

    def to_json(self) -> dict[str, Any]:
        assert self.decision is not None
        return {
            "direction": self.direction,
            "pod": self.pod,
            "identity": self.identity,
            "admin_policies": self.admin_policies,
            "network_policies": self.network_policies,
            "isolated_by": self.isolated_by,
            "baseline_applies": self.baseline,
            "steps": [s.to_json() for s in self.steps],
            "verdict": self.decision.verdict,
            "decided_by": str(self.decision),
        }


def _ports_text(ports: tuple[PortSpec, ...] | None) -> str:
    if ports is None:
        return "all ports"
    if not ports:
        return "no ports"
    return ", ".join(p.describe() for p in ports)


class Explainer:
    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        c = compiled.cluster
        self._np: dict[str, NetworkPolicy] = {p.ref: p for p in c.policies}
        self._anp: dict[str, AdminNetworkPolicy] = {a.name: a for a in c.admin_policies}

    def _peers_text(self, rule: CompiledRule) -> str:
        ref = rule.ref
        if ref.kind == "NetworkPolicy":
            np = self._np[ref.policy]
            src = (np.ingress if ref.direction == "ingress" else np.egress)[ref.index]
            if src.peers is None:
                return "every peer"
            return " OR ".join(p.describe() for p in src.peers) or "no peer"
        anp = self.compiled.cluster.baseline if ref.kind == "BaselineAdminNetworkPolicy" else self._anp[ref.name]
        assert anp is not None
        arule = (anp.ingress if ref.direction == "ingress" else anp.egress)[ref.index]
        return " OR ".join(p.describe() for p in arule.peers)

    def side(self, subject: int, direction: Direction, peer: int, protocol: Protocol, port: int) -> SideExplanation:
        compiled = self.compiled
        ident = compiled.identities.by_id[subject]
        dpol = compiled.direction(subject, direction)
        dest = compiled.identities.by_id[subject if direction == "ingress" else peer]
        out = SideExplanation(direction, "", subject)
        out.admin_policies = sorted({r.ref.name for r in dpol.admin})
        out.isolated_by = list(dpol.isolated_by)
        out.network_policies = sorted(
            np.ref
            for np in compiled.cluster.policies
            if np.namespace == ident.namespace and np.pod_selector.matches(ident.label_dict)
        )
        out.baseline = bool(dpol.baseline)
        decided = False
        for tier_rules in (dpol.admin, dpol.network if dpol.isolated_by else dpol.baseline):
            for rule in tier_rules:
                peer_ok = rule.selects(peer)
                port_ok = any(p == protocol and lo <= port <= hi for p, lo, hi in expand_ports(rule.ports, dest))
                if decided:
                    outcome = "not evaluated (decided above)"
                elif peer_ok and port_ok:
                    outcome = "matched"
                    decided = rule.action != "pass" or decided
                    if rule.action == "pass":
                        outcome = "matched: Pass, remaining admin rules skipped"
                else:
                    outcome = "no match: " + ("port" if peer_ok else "peer" if port_ok else "peer and port")
                out.steps.append(
                    RuleStep(
                        str(rule.ref),
                        rule.action,
                        peer_ok,
                        port_ok,
                        self._peers_text(rule),
                        _ports_text(rule.ports),
                        outcome,
                    )
                )
                if rule.action == "pass" and outcome.startswith("matched"):
                    break
        out.decision = compiled.table(subject, direction, peer).lookup(protocol, port)
        return out


def render_side(side: SideExplanation) -> list[str]:
    assert side.decision is not None
    arrow = "egress from" if side.direction == "egress" else "ingress to"
    lines = [f"{arrow} {side.pod} (identity {side.identity}):"]
    lines.append(f"  AdminNetworkPolicies selecting it: {', '.join(side.admin_policies) or 'none'}")
    lines.append(f"  NetworkPolicies selecting it: {', '.join(side.network_policies) or 'none'}")
    if side.isolated_by:
        lines.append(f"  isolated for {side.direction} by: {', '.join(side.isolated_by)}")
    else:
        lines.append(f"  not isolated for {side.direction} by any NetworkPolicy")
        if side.baseline:
            lines.append("  BaselineAdminNetworkPolicy default applies")
    for step in side.steps:
        lines.append(f"    - {step.rule} [{step.action}]: {step.outcome}")
        if not step.outcome.startswith("not evaluated"):
            lines.append(f"        peers: {step.peers}")
            lines.append(f"        ports: {step.ports}")
    lines.append(f"  => {side.decision}")
    return lines
