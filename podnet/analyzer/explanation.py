"""``explain``: one connection's verdict with each side's rules in evaluation order, as text or JSON.

The CLI (``podnet policy explain``) and the web UI's explain panel print the same thing from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podnet.analyzer.endpoints import Endpoint, Resolver
from podnet.analyzer.verdict import Answer, answer
from podnet.k8s.model import Direction, Protocol
from podnet.policy.explain import Explainer, SideExplanation, render_side


@dataclass
class Explanation:
    answer: Answer
    sides: list[SideExplanation]  # the enforced sides: the source's egress, the destination's ingress

    def to_json(self) -> dict[str, Any]:
        return {**self.answer.to_json(), "sides": [s.to_json() for s in self.sides]}

    def text(self) -> str:
        ans = self.answer
        word = ans.word.upper()
        lines = [f"Connection {ans.src.ref} -> {ans.dst.ref} {ans.protocol}/{ans.port}: {word}", ""]
        if ans.same_pod:
            lines.append("both ends are the same pod: traffic stays inside it and no policy applies")
        elif not self.sides:
            lines.append("neither end is a pod: no policy of the cluster applies")
        for side in self.sides:
            lines += render_side(side)
            lines.append("")
        for label, who in (("source", ans.src), ("destination", ans.dst)):
            if not who.is_pod and self.sides:
                lines.append(f"{label} {who.ref} is outside the cluster: only the other side's policy applies")
        lines.append(f"verdict: {word}")
        return "\n".join(lines).rstrip()


def explain(resolver: Resolver, src_ref: str, dst_ref: str, protocol: Protocol, port: int | str) -> Explanation:
    ans = answer(resolver, src_ref, dst_ref, protocol, port)
    explainer = Explainer(resolver.compiled)
    sides: list[SideExplanation] = []
    ends: tuple[tuple[Endpoint, Direction, Endpoint], ...] = (
        (ans.src, "egress", ans.dst),
        (ans.dst, "ingress", ans.src),
    )
    for subject, direction, peer in ends:
        if subject.is_pod and not ans.same_pod:
            side = explainer.side(subject.identity, direction, peer.identity, ans.protocol, ans.port)
            side.pod = subject.ref
            sides.append(side)
    return Explanation(ans, sides)
