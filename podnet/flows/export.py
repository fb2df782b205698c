"""Flows to a JSON-lines file, rotated by size: ``flows.jsonl`` → ``flows.jsonl.1`` → … ``.N`` (oldest removed).

Not thread-safe: one writer (the agent's policy loop thread).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .model import Flow, from_line, to_line_bytes


class JsonlExporter:
    def __init__(self, path: Path, max_bytes: int = 10 * 1024 * 1024, backups: int = 3) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError("export: max_bytes must be positive and backups not negative")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 — kept open for the exporter's lifetime
        self._size = self._file.tell()

    def write(self, flow: Flow) -> None:
        self.write_all((flow,))

    def write_all(self, flows: Iterable[Flow]) -> None:
        """Append flows, one line each, rotating when the next line would pass ``max_bytes``: one write
        call per file for the batch."""
        chunk: list[bytes] = []
        size = self._size
        for flow in flows:
            line = to_line_bytes(flow) + b"\n"
            if size and size + len(line) > self.max_bytes:
                self._file.write(b"".join(chunk))
                chunk.clear()
                self._rotate()
                size = 0
            chunk.append(line)
            size += len(line)
        self._file.write(b"".join(chunk))
        self._size = size

    def flush(self) -> None:
        self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            Path(f"{self.path}.{self.backups}").unlink(missing_ok=True)
            for i in range(self.backups - 1, 0, -1):
                older = Path(f"{self.path}.{i}")
                if older.exists():
                    os.replace(older, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._file.close()


def read_jsonl(lines: Iterable[str]) -> list[Flow]:
    """Every flow of JSON lines (blank lines skipped)."""
    out: list[Flow] = []
    for line in lines:
        if line.strip():
            out.append(from_line(line))
    return out
