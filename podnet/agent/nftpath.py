"""The nftables backend behind the policy loop: :class:`NftPolicyDatapath` implements
:class:`podnet.agent.policy.PolicyDatapath` with :class:`podnet.datapath.nft.NftDatapath`.

Names are per node: the table is ``podnet_<node>`` and the NFLOG group a number derived from the node
name (:func:`table_name`, :func:`nflog_group`), so two agents never share state even in one network
namespace (each lab node has its own anyway).

Fail closed: the table is the state. Nothing is removed when the agent stops, so the last policy
keeps being enforced; a new agent re-creates the fixed chains in one transaction, reads the map
elements back and writes only differences: there is no allow-all window.

Endpoints are keyed by ifindex like the eBPF datapath's. An endpoint in the table whose interface is
gone (its pod went away while the agent was down) gets a negative stand-in id so that the loop can
detach it.

Not thread-safe: the policy loop's thread owns it (it also reads the NFLOG socket, see
:mod:`podnet.flows.collector`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import time
from collections.abc import Iterator

from podnet.datapath.ebpf.events import DatapathEvent
from podnet.datapath.ebpf.system import in_netns
from podnet.datapath.nft import NftDatapath
from podnet.datapath.nft.events import EventAggregator
from podnet.datapath.nft.nflog import NflogSocket
from podnet.errors import PodnetError
from podnet.k8s.model import IPAddress
from podnet.policy.identity import WORLD_V4, WORLD_V6, IdentityTable
from podnet.policy.mapimage import MapImage

NFLOG_GROUP_BASE = 0x7000  # groups 28672..32767: derived from the node name


def table_name(node_name: str) -> str:
    """``podnet_<node>``: podnet's table for one node (characters nft does not take become ``_``)."""
    return "podnet_" + re.sub(r"[^A-Za-z0-9_]", "_", node_name)[:200]


def nflog_group(node_name: str) -> int:
    return NFLOG_GROUP_BASE + int.from_bytes(hashlib.sha256(node_name.encode()).digest()[:2], "big") % 0x1000


class NftPolicyDatapath:
    """Adapts :class:`NftDatapath` (one table per node, NFLOG events) to the policy loop."""

    def __init__(
        self,
        node_name: str,
        netns: str | None = None,
        table: str | None = None,
        log_group: int | None = None,
        events: bool = True,
    ) -> None:
        """``events=False``: no NFLOG logging at all (the agent keeps no flows)."""
        self.netns = netns
        self.log_group = (nflog_group(node_name) if log_group is None else log_group) if events else None
        self.dp = NftDatapath(netns, table or table_name(node_name), self.log_group)
        self._names: dict[int, str] = {}  # ifindex (or a negative stand-in) → host veth
        self._identity: dict[int, int] = {}  # ifindex → the pod's identity (for events)
        self._attached_as: dict[str, tuple[str, int, tuple[str, ...]]] = {}  # what this process wrote
        self._read_kernel = False
        self._identities: IdentityTable | None = None
        self._log: NflogSocket | None = None
        self._agg = EventAggregator()

    def ensure_loaded(self) -> None:
        self.dp.ensure_loaded()
        if self._log is None and self.log_group is not None:
            with in_netns(self.netns):
                self._log = NflogSocket(self.log_group)

    def close(self) -> None:
        """Release the NFLOG socket; the table stays and keeps enforcing."""
        if self._log is not None:
            self._log.close()
            self._log = None
        self.dp.close()

    def destroy(self) -> None:
        """Remove the node's table (the undo of :meth:`ensure_loaded`)."""
        self.close()
        self.dp.destroy()

    def _ifindex(self, host_veth: str) -> int | None:
        with in_netns(self.netns):
            try:
                return socket.if_nametoindex(host_veth)
            except OSError:
                return None

    def sync_identities(self, identities: IdentityTable) -> object:
        self._identities = identities
        return self.dp.sync_identities(identities)

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int:
        ifindex = self._ifindex(host_veth)
        if ifindex is None:
            raise PodnetError(f"no interface {host_veth!r} in netns {self.netns or '(own)'}")
        want = (mac, identity, tuple(addresses))
        if self._attached_as.get(host_veth) != want:  # the sets hold it already: no nft run
            from podnet.datapath.ebpf.datapath import Endpoint

            v4 = next((ipaddress.IPv4Address(a) for a in addresses if ":" not in a), None)
            v6 = next((ipaddress.IPv6Address(a) for a in addresses if ":" in a), None)
            self.dp.attach(Endpoint(host_veth, mac, identity, v4, v6))
            self._attached_as[host_veth] = want
        for old in [i for i, n in self._names.items() if n == host_veth and i != ifindex]:
            del self._names[old]
        self._names[ifindex] = host_veth
        self._identity[ifindex] = identity
        return ifindex

    def apply_pod_image(self, ifindex: int, image: MapImage) -> object:
        return self.dp.apply_image(self._names[ifindex], image)

    def attached(self) -> set[int]:
        if not self._read_kernel:
            for name in self.dp.endpoint_names():
                if name in self._names.values():
                    continue
                ifindex = self._ifindex(name)
                if ifindex is None or ifindex in self._names:
                    ifindex = -1 - len(self._names)
                self._names[ifindex] = name
            self._read_kernel = True
        return set(self._names)

    def detach_pod(self, ifindex: int) -> object:
        name = self._names.pop(ifindex, None)
        self._identity.pop(ifindex, None)
        if name is None:
            return False
        self._attached_as.pop(name, None)
        return self.dp.detach(name)

    def _peer_identity(self, addr: IPAddress) -> int:
        if self._identities is None:
            return WORLD_V4 if addr.version == 4 else WORLD_V6
        return self._identities.identity_of_address(addr)

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        self.ensure_loaded()
        if self._log is None:  # no events wanted
            return
        deadline = time.monotonic() + timeout
        while True:
            packets = self._log.read(max(0.0, deadline - time.monotonic()))
            now = time.monotonic_ns()
            offset = time.time_ns() - now
            for pkt in packets:
                event = self._agg.event(pkt, now, self._identity, self._peer_identity, self.dp.rules, offset)
                if event is not None:
                    yield event
            if time.monotonic() >= deadline:
                return

    def counters(self) -> dict[str, int]:
        out = dict(self.dp.counters())
        out["events_lost"] = self._log.lost if self._log is not None else 0
        out["events_aggregated"] = self._agg.aggregated
        return out
