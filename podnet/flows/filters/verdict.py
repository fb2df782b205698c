"""``--verdict FORWARDED|DROPPED|AUDIT``."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import Flow

VERDICTS = ("FORWARDED", "DROPPED", "AUDIT")


def matches(value: str) -> Callable[[Flow], bool]:
    want = value.upper()
    if want not in VERDICTS:
        raise ValueError(f"verdict is one of {', '.join(VERDICTS)}")
    return lambda f: f.verdict == want
