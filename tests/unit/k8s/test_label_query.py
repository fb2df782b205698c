"""The string form of label selectors (``?labelSelector=``, ``kubectl -l``)."""

from __future__ import annotations

import pytest

from podnet.k8s.selectors import EVERYTHING, Requirement, SelectorSyntaxError, parse_label_query


def test_every_operator_parses_into_requirements() -> None:
    sel = parse_label_query("a=b,c!=d, e in (x, y),!f,g,h==i,j notin (k)")
    assert sel.match_labels == frozenset({("a", "b"), ("h", "i")})
    assert sel.expressions == frozenset(
        {
            Requirement("c", "NotIn", frozenset({"d"})),
            Requirement("e", "In", frozenset({"x", "y"})),
            Requirement("f", "DoesNotExist"),
            Requirement("g", "Exists"),
            Requirement("j", "NotIn", frozenset({"k"})),
        }
    )


@pytest.mark.parametrize(
    ("query", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app!=web", {}, True),  # != matches objects without the key, as in Kubernetes
        ("app!=web", {"app": "web"}, False),
        ("tier in (a,b)", {"tier": "b"}, True),
        ("tier in (a,b)", {}, False),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("tier", {"tier": ""}, True),
        ("!tier", {"tier": ""}, False),
        ("example.com/role=x,app", {"example.com/role": "x", "app": "y"}, True),
        ("a=", {"a": ""}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_matching(query: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_query(query).matches(labels) is expected


def test_empty_string_selects_everything() -> None:
    assert parse_label_query("  ") is EVERYTHING


@pytest.mark.parametrize(
    "query",
    ["a=b,", "a in ()", "a in (b", "a)=b", "a>1", "=b", "a=b=c", "-a=b", "a=b c", "a in (x,y)) ", "a=-b"],
)
def test_malformed_queries_are_rejected(query: str) -> None:
    with pytest.raises(SelectorSyntaxError):
        parse_label_query(query)
