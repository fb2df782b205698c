"""Validation problems as the analyzer reports them, split into their parts for the editor.

A problem line reads ``FILE[doc N](.items[i])*: Kind ns/name: field.path: message`` (see
:mod:`podnet.k8s.parse`); a YAML syntax error reads ``FILE[doc N]: invalid YAML: line L, column C: ...``.
Nothing is lost: ``text`` keeps the whole line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SOURCE = re.compile(r"^(?P<file>.+?)\[doc (?P<doc>\d+)\](?P<items>(?:\.items\[\d+\])*): (?P<rest>.*)$", re.S)
_OBJECT = re.compile(r"^(?P<kind>[A-Z][A-Za-z]*) (?P<object>\S*): (?P<rest>.*)$", re.S)
_FIELD = re.compile(r"^(?P<path>[A-Za-z_$][^:\s]*): (?P<message>.*)$", re.S)
_LINE = re.compile(r"line (?P<line>\d+), column (?P<column>\d+)")


@dataclass(frozen=True, slots=True)
class Problem:
    text: str
    file: str | None = None
    doc: int | None = None
    items: tuple[int, ...] = ()
    kind: str | None = None
    object: str | None = None
    path: str | None = None
    message: str = ""
    line: int | None = None
    column: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "file": self.file,
            "doc": self.doc,
            "items": list(self.items),
            "kind": self.kind,
            "object": self.object,
            "path": self.path,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }


def parse_problem(text: str) -> Problem:
    """Split one problem line; a line of another shape keeps only its text as the message."""
    m = _SOURCE.match(text)
    if m is None:
        return Problem(text, message=text)
    items = tuple(int(i) for i in re.findall(r"\d+", m["items"]))
    rest = m["rest"]
    kind = obj = path = None
    line = column = None
    o = _OBJECT.match(rest)
    if o is not None:
        kind, obj, rest = o["kind"], o["object"], o["rest"]
    f = _FIELD.match(rest)
    if f is not None:
        path, rest = f["path"], f["message"]
    if rest.startswith("invalid YAML") or rest.startswith("invalid JSON"):
        pos = _LINE.search(rest)
        if pos is not None:
            line, column = int(pos["line"]), int(pos["column"])
    return Problem(text, m["file"], int(m["doc"]), items, kind, obj, path, rest, line, column)
