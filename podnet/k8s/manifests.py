"""Reading manifests: files, directories (recursive), stdin; multi-document YAML, JSON, List kinds.

Text is decoded the way kubectl decodes it: text whose first non-blank character is ``{`` is a stream of
JSON objects, anything else is multi-document YAML (where timestamps stay strings, as sigs.k8s.io/yaml
keeps them). ``kind: List`` and every ``*List`` kind are flattened, nested lists included.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from podnet.errors import ManifestError
from podnet.k8s.model import Source

SUFFIXES = (".yaml", ".yml", ".json")


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver (``2024-01-01`` is a string, as in Kubernetes) that
    rejects a key written twice in one mapping, as strict decoding does (PyYAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"mapping key {key!r} already defined",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Document:
    """One Kubernetes object and where it came from."""

    source: Source
    obj: dict[str, Any]


def _files(path: str) -> list[str]:
    if path == "-":
        return ["-"]
    p = Path(path)
    if p.is_dir():
        return sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
    if not p.exists():
        raise ManifestError([f"{path}: no such file or directory"])
    return [str(p)]


def _read(name: str, stdin: IO[str] | None) -> str:
    try:
        if name == "-":
            return (stdin or sys.stdin).read()
        return Path(name).read_text(encoding="utf-8-sig")  # a leading byte order mark is not content
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{name}: cannot read: {exc}"]) from exc


def _is_list(obj: dict[str, Any]) -> bool:
    """``kind: List``, or a ``*List`` kind with ``items`` (a kind merely ending in List is no list)."""
    kind = obj.get("kind")
    return kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in obj)


def _expand(obj: Any, source: Source, problems: list[str]) -> Iterator[Document]:
    if obj is None:
        return
    if not isinstance(obj, dict):
        problems.append(f"{source}: expected an object, got {type(obj).__name__}")
        return
    if not _is_list(obj):
        yield Document(source, obj)
        return
    items = obj.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(f"{source}: items: must be a list")
        return
    for i, item in enumerate(items):
        inner = source.item_source(i)
        if not isinstance(item, dict):
            problems.append(f"{inner}: expected an object, got {type(item).__name__}")
            continue
        yield from _expand(item, inner, problems)


def _json_stream(text: str, name: str) -> list[Any]:
    decoder = json.JSONDecoder()
    out: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ManifestError([f"{name}[doc {len(out)}]: invalid JSON: {exc}"]) from exc
        out.append(obj)


def _yaml_stream(text: str, name: str) -> list[Any]:
    out: list[Any] = []
    try:
        for raw in yaml.load_all(text, Loader=_Loader):  # a SafeLoader subclass
            out.append(raw)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
            mark = exc.problem_mark
            detail = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        raise ManifestError([f"{name}[doc {len(out)}]: invalid YAML: {detail}"]) from exc
    return out


def parse_text(text: str, name: str) -> list[Document]:
    """All documents of one file's text; ``name`` is used in error messages."""
    problems: list[str] = []
    docs: list[Document] = []
    raw_docs = _json_stream(text, name) if text.lstrip().startswith("{") else _yaml_stream(text, name)
    for index, raw in enumerate(raw_docs):
        docs.extend(_expand(raw, Source(name, index), problems))
    if problems:
        raise ManifestError(problems)
    return docs


def load_documents(paths: Iterable[str], stdin: IO[str] | None = None) -> list[Document]:
    """Documents from every path, in order; raises ManifestError on unreadable or unparsable input.

    Every problem of every path is reported, not only the first.
    """
    docs: list[Document] = []
    problems: list[str] = []
    for path in paths:
        try:
            names = _files(path)
        except ManifestError as exc:
            problems.extend(exc.problems)
            continue
        for name in names:
            try:
                docs.extend(parse_text(_read(name, stdin), name))
            except ManifestError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)
    return docs
