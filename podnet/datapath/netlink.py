"""Routed veth wiring over rtnetlink (no bridge).

Per pod: a veth pair created in one message with the peer born inside the pod's netns; in the pod
``<ifname>`` with /32 and /128 addresses and default routes through the link-local gateways
(169.254.1.1 on a scope-link route, fe80::1); on the host the veth (named ``pn…``, alias
``podnet:<container id>:<ifname>``) up, with a ``proto 201`` /32 (/128) route to each pod address.

Neighbours: the host veth itself owns the gateway addresses (169.254.1.1/32 with scope host, so the
node never picks it as a source; fe80::1 without DAD), so it answers the pod's ARP/NDP for its
gateway, and the host resolves pod addresses by ordinary ARP/NDP. No static entries: a chained plugin
that changes the pod's MAC (tuning) flushes the pod's neighbour table, and everything still resolves.

The hot path (wire, unwire) speaks rtnetlink through :mod:`podnet.datapath.rtnl`; the queries
(check, host_veths, start-up) use pyroute2.

Threading rule: a :class:`NetlinkDatapath` is used from one thread at a time (the agent's worker);
pod-side sockets are opened with :func:`podnet.datapath.netns.entered` and closed before returning.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute

from podnet.cni.protocol import GATEWAY_V4, GATEWAY_V6
from podnet.datapath import rtnl
from podnet.datapath.backend import (
    ALIAS_PREFIX,
    HOST_VETH_PREFIX,
    ROUTE_PROTO,
    CheckReport,
    Wiring,
    WiringRequest,
    attachment_mac,
    host_veth_name,
)
from podnet.datapath.netns import entered, same_as_current
from podnet.datapath.rtnl import Rtnl
from podnet.errors import DatapathError, InterfaceExists, InvalidEnvironment

log = logging.getLogger("podnet.datapath")

IFA_F_NODAD = 0x02
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
SYSCTLS = {"/proc/sys/net/ipv4/ip_forward": "1", "/proc/sys/net/ipv6/conf/all/forwarding": "1"}


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


@contextlib.contextmanager
def pod_netlink(netns: str) -> Iterator[Any]:
    """An IPRoute whose socket lives in the pod's namespace."""
    with entered(netns):
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


class NetlinkDatapath:
    """:class:`podnet.datapath.backend.DatapathBackend` over rtnetlink."""

    def __init__(self, *, node_ipv4: str | None = None, sysctl_root: str = "") -> None:
        self.sysctl_root = sysctl_root
        self.node_ipv4 = node_ipv4
        self._host: Any = None
        self._fast: Rtnl | None = None

    @property
    def host(self) -> Any:
        if self._host is None:
            self._host = IPRoute()
        return self._host

    def close(self) -> None:
        if self._host is not None:
            self._host.close()
            self._host = None
        if self._fast is not None:
            self._fast.close()
            self._fast = None

    # --- node -------------------------------------------------------------------------------------

    def _sysctl(self, path: str, value: str) -> bool:
        """Ensure a sysctl value; False when the knob does not exist (e.g. IPv6 disabled)."""
        full = self.sysctl_root + path
        try:
            with open(full) as f:
                if f.read().strip() == value:
                    return True
            with open(full, "w") as f:
                f.write(value)
        except FileNotFoundError:
            return False
        return True

    def _write_sysctl(self, path: str, value: str) -> None:
        """Set a sysctl without reading it first; a missing knob (IPv6 disabled) is fine."""
        with contextlib.suppress(FileNotFoundError), open(self.sysctl_root + path, "w") as f:
            f.write(value)

    def prepare(self) -> None:
        """Turn on IPv4 and IPv6 forwarding in the agent's namespace (pods route through the host)."""
        for path, value in SYSCTLS.items():
            if self._sysctl(path, value):
                log.debug("sysctl %s=%s", path, value)
        if self.node_ipv4 is None:
            self.node_ipv4 = self._find_node_ipv4()
        log.info("node address for pod routes", extra={"node_ipv4": self.node_ipv4})

    def _find_node_ipv4(self) -> str | None:
        """The first global IPv4 address outside podnet's veths: the source of host→pod traffic.

        Without it the kernel may pick a host veth's 169.254.1.1 as the source of host→pod packets.
        """
        names = {link["index"]: _attr(link, "IFLA_IFNAME") or "" for link in self.host.get_links()}
        for addr in self.host.get_addr(family=socket.AF_INET):
            if addr["scope"] == 0 and not names.get(addr["index"], "").startswith(HOST_VETH_PREFIX):
                return str(addr.get_attr("IFA_ADDRESS"))
        return None

    def uplink_devices(self) -> list[str]:
        """The devices other nodes' packets for this node's pods arrive on: the one holding the node's
        address, and every VXLAN or Geneve device (an overlay's decapsulated packets)."""
        links = self.host.get_links()
        names = {link["index"]: _attr(link, "IFLA_IFNAME") or "" for link in links}
        found: list[str] = []
        if self.node_ipv4 is not None:
            for addr in self.host.get_addr(family=socket.AF_INET):
                if str(addr.get_attr("IFA_ADDRESS")) == self.node_ipv4:
                    found.append(names.get(addr["index"], ""))
        for link in links:
            info = _attr(link, "IFLA_LINKINFO")
            if info is not None and info.get_attr("IFLA_INFO_KIND") in ("vxlan", "geneve"):
                found.append(_attr(link, "IFLA_IFNAME") or "")
        return [n for i, n in enumerate(found) if n and not n.startswith(HOST_VETH_PREFIX) and n not in found[:i]]

    def host_veths(self) -> dict[str, str]:
        out = {}
        for link in self.host.get_links():
            name = _attr(link, "IFLA_IFNAME") or ""
            alias = _attr(link, "IFLA_IFALIAS") or ""
            if name.startswith(HOST_VETH_PREFIX) and alias.startswith(ALIAS_PREFIX):
                out[name] = alias
        return out

    # --- wiring -----------------------------------------------------------------------------------

    def _index(self, name: str) -> int | None:
        return self.fast.link_index(name)

    @property
    def fast(self) -> Rtnl:
        """The hot path's rtnetlink socket in the agent's namespace."""
        if self._fast is None:
            self._fast = Rtnl()
        return self._fast

    def unwire(self, host_veth: str) -> bool:
        """Delete the host veth (its peer and routes go with it). Absent is fine."""
        try:
            self.fast.del_link(host_veth)
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise DatapathError(f"cannot delete {host_veth}: {exc}") from exc
        return True

    def wire(self, request: WiringRequest) -> Wiring:
        host_veth = host_veth_name(request.container_id, request.ifname)
        host_mac = attachment_mac(request.container_id, request.ifname, "host")
        pod_mac = attachment_mac(request.container_id, request.ifname, "pod")
        with contextlib.ExitStack() as undo:
            try:
                fd = os.open(request.netns, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise DatapathError(f"cannot open netns {request.netns}: {exc}") from exc
            if same_as_current(request.netns):
                os.close(fd)
                raise InvalidEnvironment(f"CNI_NETNS {request.netns} is the node's own network namespace")
            try:
                host_idx, pod_idx = self._create_veth(request, host_veth, host_mac, pod_mac, fd)
            finally:
                os.close(fd)
            undo.callback(self.unwire, host_veth)
            try:
                with entered(request.netns):
                    pod = Rtnl()
                with pod:
                    self._wire_pod(pod, request, pod_idx)
                self._wire_host(host_veth, request, host_idx)
            except OSError as exc:
                raise DatapathError(f"wiring {request.container_id}/{request.ifname} failed: {exc}") from exc
            undo.pop_all()
        return Wiring(host_veth, host_mac, pod_mac)

    def _create_veth(
        self, request: WiringRequest, host_veth: str, host_mac: str, pod_mac: str, fd: int
    ) -> tuple[int | None, int | None]:
        """One RTM_NEWLINK; on EEXIST tell a stale host veth (removed, retried) from a taken pod ifname.

        Returns the (host, pod) interface indexes the kernel echoed, (None, None) without an echo.
        """
        for attempt in (1, 2):
            try:
                return self.fast.add_veth(host_veth, host_mac, request.mtu, request.ifname, pod_mac, fd)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise DatapathError(f"cannot create veth {host_veth}: {exc}") from exc
                if attempt == 1 and self._index(host_veth) is not None:
                    log.info("removing stale %s", host_veth)
                    self.unwire(host_veth)
                    continue
                raise InterfaceExists(f"interface {request.ifname} already exists in {request.netns}") from exc
        raise AssertionError("unreachable")

    def _wire_pod(self, pod: Rtnl, request: WiringRequest, idx: int | None) -> None:
        """Link up, addresses, routes: one datagram (the kernel runs it in order, so the gateway's
        scope-link route exists before the default route through it)."""
        if idx is None:
            idx = pod.link_index(request.ifname)
        if idx is None:
            raise DatapathError(f"{request.ifname} vanished from {request.netns} while wiring")
        messages = [rtnl.set_link_msg(idx, up=True, name=request.ifname)]
        families = set()
        for address in request.addresses:
            families.add(address.version)
            flags = IFA_F_NODAD if address.version == 6 else 0
            messages.append(rtnl.replace_addr_msg(idx, str(address), address.max_prefixlen, flags=flags))
        if 4 in families:
            messages.append(rtnl.replace_route_msg(GATEWAY_V4, 32, idx, scope=RT_SCOPE_LINK))
            messages.append(rtnl.replace_route_msg("0.0.0.0", 0, idx, gateway=GATEWAY_V4))
        if 6 in families:
            messages.append(rtnl.replace_route_msg("::", 0, idx, gateway=GATEWAY_V6))
        pod.batch(messages)

    def _wire_host(self, host_veth: str, request: WiringRequest, idx: int | None) -> None:
        if idx is None:
            idx = self._index(host_veth)
        if idx is None:
            raise DatapathError(f"{host_veth} vanished while wiring")
        alias = f"{ALIAS_PREFIX}{request.container_id}:{request.ifname}"
        # No duplicate address detection on the host side: a tentative link-local address would
        # keep the host from resolving the pod's IPv6 address for the first second or two. And no
        # IPv6 router role on the veth (forwarding is decided by conf/all): a router interface joins
        # ff02::2 and anycast groups, which doubles the kernel's cost of deleting it on DEL. Both
        # before the link comes up; a new veth has the defaults, so write without reading first.
        self._write_sysctl(f"/proc/sys/net/ipv6/conf/{host_veth}/accept_dad", "0")
        self._write_sysctl(f"/proc/sys/net/ipv6/conf/{host_veth}/forwarding", "0")
        messages = [rtnl.set_link_msg(idx, up=True, alias=alias[:255], name=host_veth)]
        versions = {a.version for a in request.addresses}
        if 4 in versions:
            messages.append(rtnl.replace_addr_msg(idx, GATEWAY_V4, 32, scope=RT_SCOPE_HOST))
        if 6 in versions:
            messages.append(rtnl.replace_addr_msg(idx, GATEWAY_V6, 64, flags=IFA_F_NODAD))
        for address in request.addresses:
            if address.version == 4:
                messages.append(
                    rtnl.replace_route_msg(
                        str(address), 32, idx, scope=RT_SCOPE_LINK, proto=ROUTE_PROTO, prefsrc=self.node_ipv4
                    )
                )
            else:
                messages.append(rtnl.replace_route_msg(str(address), 128, idx, proto=ROUTE_PROTO))
        self.fast.batch(messages)

    # --- check ------------------------------------------------------------------------------------

    def check(self, request: WiringRequest, host_veth: str) -> CheckReport:
        problems: list[str] = []
        idx = self._index(host_veth)
        if idx is None:
            return CheckReport([f"host veth {host_veth} is missing"])
        link = self.host.get_links(idx)[0]
        host_mac = _attr(link, "IFLA_ADDRESS")
        host_peer = _attr(link, "IFLA_LINK")
        if not (link["flags"] & 1):
            problems.append(f"host veth {host_veth} is down")
        if not (_attr(link, "IFLA_IFALIAS") or "").startswith(ALIAS_PREFIX):
            problems.append(f"host veth {host_veth} lacks the podnet alias")
        have = {a.get_attr("IFA_ADDRESS") for a in self.host.get_addr(index=idx)}
        versions = {a.version for a in request.addresses}
        for version, gateway in ((4, GATEWAY_V4), (6, GATEWAY_V6)):
            if version in versions and gateway not in have:
                problems.append(f"gateway address {gateway} on {host_veth} is missing")
        for address in request.addresses:
            family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            routes = self.host.get_routes(family=family, dst=str(address), dst_len=address.max_prefixlen, oif=idx)
            if not any(r.get_attr("RTA_OIF") == idx and r["dst_len"] == address.max_prefixlen for r in routes):
                problems.append(f"host route {address}/{address.max_prefixlen} dev {host_veth} is missing")
        if not os.path.exists(request.netns):
            return CheckReport([*problems, f"netns {request.netns} is missing"], host_mac)
        with pod_netlink(request.netns) as pod:
            pod_problems, pod_idx, pod_mac, pod_peer = self._check_pod(pod, request)
        problems.extend(pod_problems)
        # The two ends name each other's ifindex (IFLA_LINK); another veth renamed to the pod's
        # interface name, or a host veth re-created for another pod, breaks that.
        if pod_idx is not None and (pod_peer != idx or host_peer != pod_idx):
            problems.append(f"{request.ifname} in {request.netns} is not the veth peer of {host_veth}")
        return CheckReport(problems, host_mac, pod_mac)

    def _check_pod(self, pod: Any, request: WiringRequest) -> tuple[list[str], int | None, str | None, int | None]:
        """(problems, ifindex, MAC, peer ifindex) of the pod's interface."""
        found = pod.link_lookup(ifname=request.ifname)
        if not found:
            return [f"interface {request.ifname} is missing in {request.netns}"], None, None, None
        idx = found[0]
        problems = []
        link = pod.get_links(idx)[0]
        if not (link["flags"] & 1):
            problems.append(f"{request.ifname} is down")
        if link.get_attr("IFLA_MTU") != request.mtu:
            problems.append(f"{request.ifname} has MTU {link.get_attr('IFLA_MTU')}, expected {request.mtu}")
        have = {ipaddress.ip_address(a.get_attr("IFA_ADDRESS")) for a in pod.get_addr(index=idx)}
        for address in request.addresses:
            if address not in have:
                problems.append(f"address {address} is missing on {request.ifname}")
        versions = {a.version for a in request.addresses}
        for version, gateway, family in ((4, GATEWAY_V4, socket.AF_INET), (6, GATEWAY_V6, socket.AF_INET6)):
            if version not in versions:
                continue
            defaults = [r for r in pod.get_routes(family=family) if r["dst_len"] == 0 and r.get_attr("RTA_OIF") == idx]
            if not any(r.get_attr("RTA_GATEWAY") == gateway for r in defaults):
                problems.append(f"default route via {gateway} on {request.ifname} is missing")
        return problems, idx, link.get_attr("IFLA_ADDRESS"), link.get_attr("IFLA_LINK")
