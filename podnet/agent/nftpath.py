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
from collections.abc import Iterator

from podnet.datapath.ebpf.audit import Audit
from podnet.datapath.ebpf.datapath import Endpoint
from podnet.datapath.ebpf.events import DatapathEvent
from podnet.datapath.nft import NftDatapath, NftError
from podnet.policy.identity import IdentityTable
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
        group = (nflog_group(node_name) if log_group is None else log_group) if events else None
        self.dp = NftDatapath(netns, table or table_name(node_name), group)
        self._names: dict[int, str] = {}  # ifindex (or a negative stand-in) → host veth
        self._attached_as: dict[str, tuple[str, int, tuple[str, ...]]] = {}  # what this process wrote
        self._read_kernel = False

    def ensure_loaded(self) -> None:
        self.dp.ensure_loaded()

    def close(self) -> None:
        """Release the NFLOG socket; the table stays and keeps enforcing."""
        self.dp.close()

    def destroy(self) -> None:
        """Remove the node's table (the undo of :meth:`ensure_loaded`)."""
        self.dp.destroy()

    def sync_identities(self, identities: IdentityTable) -> object:
        return self.dp.sync_identities(identities)

    def attach_pod(self, host_veth: str, mac: str, identity: int, addresses: list[str]) -> int:
        ifindex = self.dp.ifindex(host_veth)
        want = (mac, identity, tuple(addresses))
        if self._attached_as.get(host_veth) != want:  # else the sets hold it already: no nft run
            v4 = next((ipaddress.IPv4Address(a) for a in addresses if ":" not in a), None)
            v6 = next((ipaddress.IPv6Address(a) for a in addresses if ":" in a), None)
            self.dp.attach(Endpoint(host_veth, mac, identity, v4, v6))
            self._attached_as[host_veth] = want
        for old in [i for i, n in self._names.items() if n == host_veth and i != ifindex]:
            del self._names[old]
        self._names[ifindex] = host_veth
        return ifindex

    def apply_pod_image(self, ifindex: int, image: MapImage, audit: Audit | None = None) -> object:
        return self.dp.apply_image(self._names[ifindex], image, audit)

    def attached(self) -> set[int]:
        if not self._read_kernel:  # once: endpoints an earlier agent left in the table
            for name in self.dp.endpoint_names():
                if name in self._names.values():
                    continue
                try:
                    ifindex = self.dp.ifindex(name)
                except NftError:
                    ifindex = min(-1, *self._names) - 1  # the link is gone: a stand-in id
                self._names[ifindex] = name
            self._read_kernel = True
        return set(self._names)

    def detach_pod(self, ifindex: int) -> object:
        name = self._names.pop(ifindex, None)
        if name is None:
            return False
        self._attached_as.pop(name, None)
        return self.dp.detach(name)

    def events(self, timeout: float = 0.0) -> Iterator[DatapathEvent]:
        return self.dp.events(timeout)

    def counters(self) -> dict[str, int]:
        return self.dp.counters()
