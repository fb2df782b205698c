"""``--type drop|policy-verdict|trace``: the kind of event the flow came from."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import EVENT_TYPE_CODE, Flow


def matches(value: str) -> Callable[[Flow], bool]:
    if value not in EVENT_TYPE_CODE:
        raise ValueError(f"type is one of {', '.join(EVENT_TYPE_CODE)}")
    return lambda f: f.type == value
