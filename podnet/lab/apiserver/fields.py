"""Field selectors (``?fieldSelector=``): exact matches on the few fields the API server indexes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from podnet.lab.apiserver.resources import Resource

COMMON_FIELDS = ("metadata.name", "metadata.namespace")
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase", "status.podIP"),
    "Namespace": ("status.phase",),
}
_TERM = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$")


class FieldSelectorError(ValueError):
    """A field selector that does not parse, or names a field this resource cannot be selected by."""


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    op: Literal["=", "!="]
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        return (field_value(obj, self.field) == self.value) == (self.op == "=")


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string value of a dotted field path; a missing field is the empty string, as in Kubernetes."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def parse_field_selector(text: str, resource: Resource) -> tuple[FieldRequirement, ...]:
    if not text.strip():
        return ()
    allowed = COMMON_FIELDS + EXTRA_FIELDS.get(resource.kind, ())
    out: list[FieldRequirement] = []
    for part in text.split(","):
        m = _TERM.match(part)
        if not m:
            raise FieldSelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
        field, op, value = m.groups()
        if field not in allowed:
            raise FieldSelectorError(f'field label not supported: {field} (resource "{resource.plural}")')
        out.append(FieldRequirement(field, "!=" if op == "!=" else "=", value))
    return tuple(out)
