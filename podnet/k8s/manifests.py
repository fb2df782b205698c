"""Reading manifests: files, directories (recursive), stdin; multi-document YAML, JSON, List kinds."""

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
    if name == "-":
        return (stdin or sys.stdin).read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{name}: cannot read: {exc}"]) from exc


def _expand(obj: Any, source: Source, problems: list[str]) -> Iterator[Document]:
    if obj is None:
        return
    if not isinstance(obj, dict):
        problems.append(f"{source}: expected an object, got {type(obj).__name__}")
        return
    kind = obj.get("kind")
    if isinstance(kind, str) and (kind == "List" or kind.endswith("List")) and "items" in obj:
        items = obj.get("items")
        if not isinstance(items, list):
            problems.append(f"{source}: items: must be a list")
            return
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(f"{source}: items[{i}]: expected an object")
                continue
            yield Document(source, item)
        return
    yield Document(source, obj)


def parse_text(text: str, name: str) -> list[Document]:
    """All documents of one file's text; ``name`` is used in error messages."""
    problems: list[str] = []
    docs: list[Document] = []
    if name.endswith(".json"):
        try:
            raw_docs: Iterable[Any] = [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise ManifestError([f"{name}[doc 0]: invalid JSON: {exc}"]) from exc
    else:
        try:
            raw_docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise ManifestError([f"{name}: invalid YAML: {exc}"]) from exc
    for index, raw in enumerate(raw_docs):
        docs.extend(_expand(raw, Source(name, index), problems))
    if problems:
        raise ManifestError(problems)
    return docs


def load_documents(paths: Iterable[str], stdin: IO[str] | None = None) -> list[Document]:
    """Documents from every path, in order; raises ManifestError on unreadable or unparsable input."""
    docs: list[Document] = []
    problems: list[str] = []
    for path in paths:
        for name in _files(path):
            try:
                docs.extend(parse_text(_read(name, stdin), name))
            except ManifestError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)
    return docs
