"""``--protocol tcp|udp|sctp|icmp``."""

from __future__ import annotations

from collections.abc import Callable

from podnet.flows.model import Flow

NAMES = {"tcp": ("TCP",), "udp": ("UDP",), "sctp": ("SCTP",), "icmp": ("ICMPv4", "ICMPv6")}


def matches(value: str) -> Callable[[Flow], bool]:
    want = NAMES.get(value.lower())
    if want is None:
        raise ValueError(f"protocol is one of {', '.join(NAMES)}")
    return lambda f: f.protocol in want
