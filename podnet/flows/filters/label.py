"""``--label k=v`` (or ``k``: the key is set) on either side; ``k8s:`` style prefixes are ignored."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import Flow, FlowEndpoint


def matches(value: str) -> Callable[[Flow], bool]:
    key, eq, want = value.partition("=")
    key = key.partition(":")[2] if ":" in key else key
    if not key:
        raise ValueError("expected KEY=VALUE or KEY")

    def has(ep: FlowEndpoint) -> bool:
        labels = ep.label_map()
        return key in labels and (not eq or labels[key] == want)

    return lambda f: has(f.source) or has(f.destination)
