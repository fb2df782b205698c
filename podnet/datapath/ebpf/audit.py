"""Audit mode: what the kernel does with decisions that only audit-mode policies cause. Pure.

A NetworkPolicy annotated ``podnet.io/audit: "true"`` (or in a Namespace annotated so) is compiled
like any other, so the analyzer shows what it would do. In the kernel, a port whose decision is the
isolation default-deny and whose isolating policies are all in audit mode is enforced as if those
policies did not exist: the pod is then not isolated, so the BaselineAdminNetworkPolicy decides, else
the default allow. Where that is an allow, the row is AUDIT: the packet passes and the new-connection
event says AUDIT and names the isolation that would have denied it. Where the baseline denies, the row
is that deny.
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.k8s.model import Cluster, Protocol
from podnet.policy.compiler import CompiledPolicy, Decision, DirectionPolicy, build_table
from podnet.policy.identity import Identity
from podnet.policy.mapimage import WILDCARD, MapImage, MapKey

from .codecs import VERDICT_ALLOW, VERDICT_AUDIT, VERDICT_DENY

PROTO_NAMES: dict[int, Protocol] = {6: "TCP", 17: "UDP", 132: "SCTP"}
Enforced = dict[MapKey, tuple[Decision, int]]  # the decision to report, and the kernel verdict code


@dataclass(frozen=True, slots=True)
class Audit:
    """What audit mode needs for one endpoint: the compiled policy, the pod's identity, the audit policies."""

    compiled: CompiledPolicy
    subject: int
    policies: frozenset[str]


def audit_policies(cluster: Cluster) -> frozenset[str]:
    """The NetworkPolicies (``namespace/name``) in audit mode: annotated ``podnet.io/audit: "true"``
    themselves, or in a namespace annotated so."""
    audited_ns = {name for name, ns in cluster.namespaces.items() if ns.audit}
    return frozenset(np.ref for np in cluster.policies if np.audit or np.namespace in audited_ns)


def audited(decision: Decision, policies: frozenset[str]) -> bool:
    """A deny that only audit-mode policies cause: the isolation deny of audit-mode policies alone."""
    rule = decision.rule
    return (
        decision.verdict == "deny"
        and rule is not None
        and rule.kind == "isolation"
        and bool(rule.isolated_by)
        and all(ref in policies for ref in rule.isolated_by)
    )


def _code(decision: Decision) -> int:
    return VERDICT_ALLOW if decision.verdict == "allow" else VERDICT_DENY


def enforced_image(image: MapImage, audit: Audit | None = None) -> Enforced:
    """The rows the kernel holds: each image row with its verdict code, audit rows split as needed.

    Peers the baseline selects may need rows of their own once the isolation is set aside (with it,
    they shared the wildcard's table): they get a copy of the wildcard rows, transformed for them.
    """
    rows = dict(image)
    if audit is not None and any(audited(d, audit.policies) for d in image.values()):
        for direction in ("ingress", "egress"):
            explicit = {k.peer for k in image if k.direction == direction}
            wild = [k for k in image if k.direction == direction and k.peer == WILDCARD]
            if not any(audited(image[k], audit.policies) for k in wild):
                continue
            for rule in audit.compiled.direction(audit.subject, direction).baseline:
                for peer in sorted((rule.peers or frozenset()) - explicit):
                    explicit.add(peer)
                    rows.update({MapKey(k.direction, peer, k.protocol, k.lo, k.hi): image[k] for k in wild})
    out: Enforced = {}
    for key, decision in rows.items():
        if audit is None or not audited(decision, audit.policies):
            out[key] = (decision, _code(decision))
            continue
        out.update(_unaudited(audit, key, decision))
    return out


def _unaudited(audit: Audit, key: MapKey, decision: Decision) -> Enforced:
    """An audited row enforced as if the pod were not isolated: the baseline decides, else allow."""
    ids = audit.compiled.identities
    dpol = audit.compiled.direction(audit.subject, key.direction)
    if key.direction == "ingress":
        dest = ids.by_id[audit.subject]
    else:
        dest = ids.by_id.get(key.peer) or Identity(WILDCARD, "world")
    table = build_table(DirectionPolicy(key.direction, (), (), (), dpol.baseline), key.peer, dest)
    out: Enforced = {}
    for iv in table.intervals(PROTO_NAMES[key.protocol]):
        lo, hi = max(iv.lo, key.lo), min(iv.hi, key.hi)
        if lo <= hi:
            part = MapKey(key.direction, key.peer, key.protocol, lo, hi)
            out[part] = (decision, VERDICT_AUDIT) if iv.value.verdict == "allow" else (iv.value, VERDICT_DENY)
    return out
