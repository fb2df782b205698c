"""``--namespace NS``: either side is a pod in NS."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import Flow


def matches(value: str) -> Callable[[Flow], bool]:
    if not value:
        raise ValueError("empty namespace")
    return lambda f: f.source.namespace == value or f.destination.namespace == value
