"""Label selectors as the API server defines them (``metav1.LabelSelector``).

A selector is immutable and hashable so the policy compiler can cache what each one selects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from podnet.k8s.fieldpath import Problems

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
OPERATORS: tuple[str, ...] = ("In", "NotIn", "Exists", "DoesNotExist")
Labels = Mapping[str, str]

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_key_error(key: object) -> str | None:
    """Why ``key`` is not a valid qualified label key, or None when it is."""
    if not isinstance(key, str):
        return "must be a string"
    if not key:
        return "name part must be non-empty"
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "prefix part must be non-empty"
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return None


def label_value_error(value: object) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    if value == "":
        return None
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _NAME.fullmatch(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Labels) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels

    def describe(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        op = "in" if self.operator == "In" else "notin"
        return f"{self.key} {op} ({','.join(sorted(self.values))})"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """``matchLabels`` and ``matchExpressions`` ANDed; an empty selector selects everything."""

    match_labels: frozenset[tuple[str, str]] = frozenset()
    expressions: frozenset[Requirement] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.expressions

    def matches(self, labels: Labels) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(req.matches(labels) for req in self.expressions)

    def describe(self) -> str:
        if self.is_empty:
            return "{} (everything)"
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels)]
        parts += sorted(r.describe() for r in self.expressions)
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(sorted(self.match_labels))
        if self.expressions:
            out["matchExpressions"] = [
                {"key": r.key, "operator": r.operator, **({"values": sorted(r.values)} if r.values else {})}
                for r in sorted(self.expressions, key=lambda r: (r.key, r.operator))
            ]
        return out


EVERYTHING = LabelSelector()


def parse_selector(raw: object, path: str, problems: Problems) -> LabelSelector:
    """Validate and convert a ``LabelSelector`` object; invalid fields are reported under ``path``."""
    if raw is None:
        return EVERYTHING
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return EVERYTHING
    for key in raw:
        if key not in ("matchLabels", "matchExpressions"):
            problems.add(f"{path}.{key}", "unknown field")
    labels: set[tuple[str, str]] = set()
    ml = raw.get("matchLabels")
    if ml is not None:
        if not isinstance(ml, dict):
            problems.add(f"{path}.matchLabels", "must be a map of string keys to string values")
        else:
            for k, v in ml.items():
                kerr = label_key_error(k)
                if kerr:
                    problems.add(f"{path}.matchLabels", f"Invalid value: {k!r}: {kerr}")
                    continue
                verr = label_value_error(v)
                if verr:
                    problems.add(f"{path}.matchLabels", f"Invalid value: {v!r}: {verr}")
                    continue
                labels.add((k, v))
    reqs: set[Requirement] = set()
    me = raw.get("matchExpressions")
    if me is not None:
        if not isinstance(me, list):
            problems.add(f"{path}.matchExpressions", "must be a list")
        else:
            for i, expr in enumerate(me):
                req = _parse_requirement(expr, f"{path}.matchExpressions[{i}]", problems)
                if req is not None:
                    reqs.add(req)
    return LabelSelector(frozenset(labels), frozenset(reqs))


def _parse_requirement(raw: object, path: str, problems: Problems) -> Requirement | None:
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return None
    key = raw.get("key")
    op = raw.get("operator")
    values = raw.get("values")
    ok = True
    if not isinstance(key, str):
        problems.add(f"{path}.key", "Required value")
        ok = False
    else:
        kerr = label_key_error(key)
        if kerr:
            problems.add(f"{path}.key", f"Invalid value: {key!r}: {kerr}")
            ok = False
    if op not in OPERATORS:
        problems.add(f"{path}.operator", f"Invalid value: {op!r}: not a valid selector operator")
        return None
    vals: list[str] = []
    if values is not None:
        if not isinstance(values, list):
            problems.add(f"{path}.values", "must be a list of strings")
            return None
        for j, v in enumerate(values):
            verr = label_value_error(v)
            if verr:
                problems.add(f"{path}.values[{j}]", f"Invalid value: {v!r}: {verr}")
                ok = False
            else:
                vals.append(v)
    if op in ("In", "NotIn") and not values:
        problems.add(f"{path}.values", "Required value: must be specified when `operator` is 'In' or 'NotIn'")
        ok = False
    if op in ("Exists", "DoesNotExist") and values:
        problems.add(f"{path}.values", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        ok = False
    if not ok or not isinstance(key, str):
        return None
    return Requirement(key, op, frozenset(vals))


class SelectorSyntaxError(ValueError):
    """A ``labelSelector=`` query string that does not parse; the message says where."""


_QUERY_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_QUERY_SET = re.compile(rf"^({_QUERY_KEY})\s+(in|notin)\s*\((.*)\)$", re.DOTALL)
_QUERY_EQ = re.compile(rf"^({_QUERY_KEY})\s*(==|!=|=)\s*([^\s,()=!]*)$")
_QUERY_EXISTS = re.compile(rf"^({_QUERY_KEY})$")
_QUERY_NOT_EXISTS = re.compile(rf"^!\s*({_QUERY_KEY})$")


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth > 1:
                raise SelectorSyntaxError(f"unexpected '(' at position {i}")
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorSyntaxError(f"unexpected ')' at position {i}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise SelectorSyntaxError("unclosed '('")
    parts.append(text[start:])
    return parts


def _checked_key(key: str) -> str:
    err = label_key_error(key)
    if err:
        raise SelectorSyntaxError(f"invalid label key {key!r}: {err}")
    return key


def _checked_value(value: str) -> str:
    err = label_value_error(value)
    if err:
        raise SelectorSyntaxError(f"invalid label value {value!r}: {err}")
    return value


def parse_label_query(text: str) -> LabelSelector:
    """Parse the string form of a label selector, as in ``?labelSelector=`` or ``kubectl -l``.

    Grammar (requirements ANDed, separated by commas): ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
    ``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist). ``k!=v`` and ``notin`` also match objects
    without the label, as in Kubernetes. An empty string selects everything. The set-based ``>``/``<``
    operators are not supported and raise :class:`SelectorSyntaxError`, like any malformed requirement.
    """
    if not text.strip():
        return EVERYTHING
    labels: set[tuple[str, str]] = set()
    reqs: set[Requirement] = set()
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise SelectorSyntaxError(f"empty requirement in {text!r}")
        if m := _QUERY_SET.match(part):
            key = _checked_key(m.group(1))
            values = [v.strip() for v in m.group(3).split(",")]
            if values == [""]:
                raise SelectorSyntaxError(f"{part!r}: for 'in', 'notin' operators, values set can't be empty")
            vals = frozenset(_checked_value(v) for v in values)
            reqs.add(Requirement(key, "In" if m.group(2) == "in" else "NotIn", vals))
        elif m := _QUERY_EQ.match(part):
            key, op, value = _checked_key(m.group(1)), m.group(2), _checked_value(m.group(3))
            if op == "!=":
                reqs.add(Requirement(key, "NotIn", frozenset({value})))
            else:
                labels.add((key, value))
        elif m := _QUERY_NOT_EXISTS.match(part):
            reqs.add(Requirement(_checked_key(m.group(1)), "DoesNotExist"))
        elif m := _QUERY_EXISTS.match(part):
            reqs.add(Requirement(_checked_key(m.group(1)), "Exists"))
        else:
            raise SelectorSyntaxError(f"unable to parse requirement {part!r}")
    return LabelSelector(frozenset(labels), frozenset(reqs))
