"""Label selectors: validation with field paths, and matching as the API server matches."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.k8s.fieldpath import Problems
from podnet.k8s.selectors import (
    EVERYTHING,
    LabelSelector,
    Requirement,
    label_key_error,
    label_value_error,
    parse_selector,
)

CHARSET = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
VALUE_CHARSET = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)


def parse(raw: Any) -> tuple[LabelSelector, list[str]]:
    problems = Problems()
    selector = parse_selector(raw, "sel", problems)
    return selector, problems.items


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("app", None),
        ("app.kubernetes.io/name", None),
        ("a", None),
        ("A_b.C-9", None),
        ("x" * 63, None),
        ("example.com/" + "x" * 63, None),
        ("", "name part must be non-empty"),
        ("x" * 64, "name part must be no more than 63 characters"),
        ("-app", CHARSET),
        ("app-", CHARSET),
        ("a b", CHARSET),
        ("app\n", CHARSET),
        ("/app", "prefix part must be non-empty"),
        ("example.com/", "name part must be non-empty"),
        ("Example.com/app", "prefix part must be a lowercase RFC 1123 subdomain"),
        ("a/b/c", "prefix part must be a lowercase RFC 1123 subdomain"),
        ("a" * 254 + "/app", "prefix part must be a lowercase RFC 1123 subdomain"),
        (3, "must be a string"),
    ],
)
def test_label_keys(key: object, error: str | None) -> None:
    assert label_key_error(key) == error


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", None),
        ("web", None),
        ("v1.2_3-x", None),
        ("x" * 63, None),
        ("x" * 64, "must be no more than 63 characters"),
        ("-web", VALUE_CHARSET),
        ("web.", VALUE_CHARSET),
        ("a/b", VALUE_CHARSET),
        ("web\n", VALUE_CHARSET),
        (1, "must be a string"),
        (True, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_label_values(value: object, error: str | None) -> None:
    assert label_value_error(value) == error


def test_a_missing_selector_selects_everything() -> None:
    assert parse(None) == (EVERYTHING, [])
    assert parse({}) == (EVERYTHING, [])
    assert EVERYTHING.matches({}) and EVERYTHING.matches({"a": "b"})


def test_match_labels_and_expressions_are_converted() -> None:
    raw = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "env", "operator": "DoesNotExist"},
        ],
    }
    selector, errors = parse(raw)
    assert errors == []
    assert selector == LabelSelector(
        frozenset({("app", "web")}),
        frozenset({Requirement("tier", "In", frozenset({"a", "b"})), Requirement("env", "DoesNotExist")}),
    )
    assert selector.to_dict() == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
        ],
    }


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ("app=web", ["sel: must be an object"]),
        ({"matchLabel": {"a": "b"}}, ["sel.matchLabel: unknown field"]),
        ({"matchLabels": ["a"]}, ["sel.matchLabels: must be a map of string keys to string values"]),
        ({"matchLabels": {"-a": "b"}}, [f"sel.matchLabels: Invalid value: '-a': {CHARSET}"]),
        ({"matchLabels": {"a": "b c"}}, [f"sel.matchLabels: Invalid value: 'b c': {VALUE_CHARSET}"]),
        ({"matchLabels": {"a": 1}}, ["sel.matchLabels: Invalid value: 1: must be a string"]),
        ({"matchExpressions": {"key": "a"}}, ["sel.matchExpressions: must be a list"]),
        ({"matchExpressions": ["a"]}, ["sel.matchExpressions[0]: must be an object"]),
        (
            {
                "matchExpressions": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "Equals", "values": ["x"]},
                ]
            },
            ["sel.matchExpressions[1].operator: Invalid value: 'Equals': not a valid selector operator"],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
            ["sel.matchExpressions[0].operator: Invalid value: 'in': not a valid selector operator"],
        ),
        (
            {"matchExpressions": [{"key": "a"}]},
            ["sel.matchExpressions[0].operator: Invalid value: None: not a valid selector operator"],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            ["sel.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            ["sel.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            [
                "sel.matchExpressions[0].values: Forbidden: may not be specified when `operator` is "
                "'Exists' or 'DoesNotExist'"
            ],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]},
            [
                "sel.matchExpressions[0].values: Forbidden: may not be specified when `operator` is "
                "'Exists' or 'DoesNotExist'"
            ],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            ["sel.matchExpressions[0].values: must be a list of strings"],
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "not ok"]}]},
            [f"sel.matchExpressions[0].values[1]: Invalid value: 'not ok': {VALUE_CHARSET}"],
        ),
        (
            {"matchExpressions": [{"operator": "Exists"}]},
            ["sel.matchExpressions[0].key: Required value"],
        ),
        (
            {"matchExpressions": [{"key": "a/", "operator": "Exists"}]},
            ["sel.matchExpressions[0].key: Invalid value: 'a/': name part must be non-empty"],
        ),
        (
            {"matchLabels": {"-a": "b", "c": "-d"}, "matchExpressions": [{"key": "_x", "operator": "Nope"}]},
            [
                f"sel.matchLabels: Invalid value: '-a': {CHARSET}",
                f"sel.matchLabels: Invalid value: '-d': {VALUE_CHARSET}",
                f"sel.matchExpressions[0].key: Invalid value: '_x': {CHARSET}",
                "sel.matchExpressions[0].operator: Invalid value: 'Nope': not a valid selector operator",
            ],
        ),
    ],
)
def test_invalid_selectors(raw: Any, errors: list[str]) -> None:
    assert parse(raw)[1] == errors


def sel(raw: dict[str, Any]) -> LabelSelector:
    selector, errors = parse(raw)
    assert errors == []
    return selector


@pytest.mark.parametrize(
    ("raw", "labels", "expected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        ({"matchLabels": {"app": "web"}}, {}, False),
        ({"matchLabels": {"app": ""}}, {"app": ""}, True),
        ({"matchLabels": {"app": ""}}, {}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, {"app": "b"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, {}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {"app": "a"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {"app": "b"}, True),
        # NotIn and DoesNotExist match objects without the key.
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": ""}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"app": ""}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"other": "app"}, False),
        (
            {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            {"app": "web"},
            False,
        ),
        (
            {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            {"app": "web", "tier": "x"},
            True,
        ),
    ],
)
def test_matching(raw: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert sel(raw).matches(labels) is expected


def test_selectors_are_hashable_and_equal_by_content() -> None:
    a = sel({"matchLabels": {"a": "1", "b": "2"}, "matchExpressions": [{"key": "c", "operator": "Exists"}]})
    b = sel({"matchExpressions": [{"key": "c", "operator": "Exists"}], "matchLabels": {"b": "2", "a": "1"}})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_describe() -> None:
    assert EVERYTHING.describe() == "{} (everything)"
    raw = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "t", "operator": "NotIn", "values": ["b", "a"]},
            {"key": "e", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist"},
        ],
    }
    assert sel(raw).describe() == "app=web,!d,e,t notin (a,b)"
