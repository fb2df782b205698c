"""``--pod``, ``--from-pod``, ``--to-pod``: ``NS/POD``, or ``POD`` in any namespace."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import Flow, FlowEndpoint


def _endpoint(value: str) -> Callable[[FlowEndpoint], bool]:
    namespace, _, name = value.rpartition("/")
    if not name:
        raise ValueError("expected NS/POD or POD")
    if namespace:
        return lambda ep: ep.namespace == namespace and ep.pod_name == name
    return lambda ep: ep.pod_name == name


def source(value: str) -> Callable[[Flow], bool]:
    match = _endpoint(value)
    return lambda f: match(f.source)


def destination(value: str) -> Callable[[Flow], bool]:
    match = _endpoint(value)
    return lambda f: match(f.destination)


def either(value: str) -> Callable[[Flow], bool]:
    match = _endpoint(value)
    return lambda f: match(f.source) or match(f.destination)
