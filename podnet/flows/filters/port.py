"""``--port N``: either side's L4 port."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import Flow


def matches(value: str) -> Callable[[Flow], bool]:
    number = int(value)
    if not 0 < number < 65536:
        raise ValueError("port is 1-65535")
    return lambda f: f.source_port == number or f.destination_port == number
