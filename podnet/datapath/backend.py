"""The seam between the agent and the kernel: what wiring a pod means, independent of how it is done.

The netlink backend (:mod:`podnet.datapath.netlink`) is the first implementation; the eBPF policy
datapath of a later issue plugs in here too (attaching programs to the host veth it gets back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from podnet.ipam.allocator import IPAddress

HOST_VETH_PREFIX = "pn"
ALIAS_PREFIX = "podnet:"
ROUTE_PROTO = 201  # rtnetlink protocol number tagging podnet's host routes ("proto 201")


def host_veth_name(container_id: str, ifname: str) -> str:
    """``pn`` + 11 hex digits of sha256(container id, ifname): unique per attachment, ≤ 15 chars."""
    return HOST_VETH_PREFIX + hashlib.sha256(f"{container_id}\0{ifname}".encode()).hexdigest()[:11]


def attachment_mac(container_id: str, ifname: str, side: str) -> str:
    """A stable, locally administered unicast MAC for one side (``host``/``pod``) of an attachment."""
    digest = hashlib.sha256(f"{side}\0{container_id}\0{ifname}".encode()).digest()
    first = (digest[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in (first, *digest[1:6]))


@dataclass(frozen=True)
class WiringRequest:
    container_id: str
    ifname: str
    netns: str
    addresses: tuple[IPAddress, ...]
    mtu: int


@dataclass(frozen=True)
class Wiring:
    host_veth: str
    host_mac: str
    pod_mac: str


@dataclass(frozen=True)
class CheckReport:
    """What CHECK found in the kernel: what is missing or wrong, and the MACs the two ends have now.

    A MAC is None when that end could not be read (it is missing, which ``problems`` already says).
    Comparing the MACs with the endpoint record and ``prevResult`` is the CNI service's job.
    """

    problems: list[str]
    host_mac: str | None = None
    pod_mac: str | None = None


class DatapathBackend(Protocol):
    """Kernel operations for pod attachments. Every method is idempotent or undoes itself on failure."""

    def prepare(self) -> None:
        """Node-wide settings (forwarding). Called once at agent start."""

    def wire(self, request: WiringRequest) -> Wiring:
        """Create the pod's interface, addresses, routes and neighbours; on failure leave nothing behind.

        Raises InterfaceExists when ``request.ifname`` already exists in the pod's namespace.
        """
        ...

    def unwire(self, host_veth: str) -> bool:
        """Remove an attachment by its host veth; True if something was removed. Gone already is fine."""
        ...

    def check(self, request: WiringRequest, host_veth: str) -> CheckReport:
        """What of the wiring is missing or wrong (no problems when all is in place), and the live MACs.

        Includes whether the pod's interface is still the peer of ``host_veth``.
        """
        ...

    def host_veths(self) -> dict[str, str]:
        """podnet's host veths on this node: name → alias tag."""
        ...
