"""Collecting validation problems with API-server-style field paths."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problems:
    """Problems found in one document; ``where`` prefixes each, like ``file[doc 2]: NetworkPolicy ns/x``.

    ``warnings`` holds what the API server would accept with a warning (one line each).
    """

    where: str = ""
    items: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        prefix = f"{self.where}: " if self.where else ""
        self.items.append(f"{prefix}{path}: {message}")

    def warn(self, path: str, message: str) -> None:
        prefix = f"{self.where}: " if self.where else ""
        self.warnings.append(f"warning: {prefix}{path}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)
