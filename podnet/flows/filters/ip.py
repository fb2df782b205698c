"""``--ip CIDR`` (or one address): either side's address is in it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from podnet.flows.model import Flow


def matches(value: str) -> Callable[[Flow], bool]:
    net = ipaddress.ip_network(value, strict=False)

    def inside(text: str) -> bool:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return False
        return addr.version == net.version and addr in net

    return lambda f: inside(f.ip_source) or inside(f.ip_destination)
