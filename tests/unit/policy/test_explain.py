"""Explanations walk the rules in the order the compiler does: the rule they show as deciding is the verdict's."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from podnet.k8s.manifests import Document
from podnet.k8s.model import PROTOCOLS, Source
from podnet.k8s.parse import build_cluster
from podnet.policy.compiler import DIRECTIONS, compile_cluster
from podnet.policy.explain import Explainer, render_side
from tests.unit.policy.clusters import PORTS, cluster_manifests


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster_manifests())
def test_the_first_matching_step_is_the_deciding_rule(docs: list[dict[str, Any]]) -> None:
    compiled = compile_cluster(build_cluster([Document(Source("gen.yaml", i), d) for i, d in enumerate(docs)]))
    explainer = Explainer(compiled)
    ids = compiled.identities
    for subject in ids.pods():
        for direction in DIRECTIONS:
            for peer in ids.by_id:
                for proto in PROTOCOLS:
                    for port in PORTS:
                        side = explainer.side(subject.id, direction, peer, proto, port)
                        decision = side.decision
                        assert decision is not None
                        matched = [s for s in side.steps if s.outcome == "matched"]
                        if decision.rule is None:  # default allow: nothing matched, no NetworkPolicy isolates
                            assert not matched and not side.isolated_by
                        elif decision.rule.kind == "isolation":
                            assert not matched
                            assert list(decision.rule.isolated_by) == side.isolated_by
                        else:
                            assert matched and matched[0].rule == str(decision.rule)
                        assert render_side(side)[-1] == f"  => {decision}"
