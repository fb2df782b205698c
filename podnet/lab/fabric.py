"""Kernel side of a lab's topology: namespaces, the underlay bridge, node uplinks and inter-node routes.

Every function is an idempotent ``ensure_*`` (an object that already exists as wanted is fine) or
a ``remove_*`` that tolerates what is already gone. Only objects inside the lab's own namespaces
are touched; the host's interfaces, routes and firewall never are.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from podnet.errors import PodnetError
from podnet.lab.plan import UNDERLAY, VXLAN_ID, VXLAN_PORT, LabPlan, NodePlan

NETNS_DIR = "/run/netns"
OVERLAY = ipaddress.IPv4Network("172.31.0.0/24")
EEXIST = 17
ENOENT = 2
ESRCH = 3


class FabricError(PodnetError):
    cni_code = 110


@contextmanager
def _ipr(ns: str) -> Iterator[Any]:
    with IPRoute(netns=ns) as ipr:
        yield ipr


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def list_netns(prefix: str) -> list[str]:
    if not os.path.isdir(NETNS_DIR):
        return []
    return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))


def ensure_netns(name: str) -> None:
    """The namespace ``name`` exists with its loopback up.

    Done with two ``ip`` commands: pyroute2 forks the calling Python process for each (twice), which in
    the lab's controller (many threads, large heap) cost about 4x the CPU of exec'ing ``ip``."""
    if not netns_exists(name):
        _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FabricError(f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")


def remove_netns(name: str) -> None:
    """Delete the namespace (its links go with it); a missing one is fine."""
    if netns_exists(name):
        try:
            netns.remove(name)
        except OSError as exc:
            if exc.errno != ENOENT:
                raise


def sysctl(ns: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (net.*) inside ``ns``."""
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"], check=True)


def _index(ipr: Any, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def _ensure_addr(ipr: Any, index: int, address: str, prefixlen: int) -> None:
    try:
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
    except NetlinkError as exc:
        if exc.code != EEXIST:
            raise


def _ensure_route(ipr: Any, **spec: Any) -> None:
    try:
        ipr.route("replace", **spec)
    except NetlinkError as exc:
        raise FabricError(f"route {spec}: {exc}") from exc


OUTSIDE = UNDERLAY[254]  # the fabric bridge's own address: "the internet" of `connectivity test`


def ensure_fabric(plan: LabPlan) -> None:
    """The fabric namespace with its underlay bridge, up, holding the lab's outside address."""
    ensure_netns(plan.fabric_netns)
    with _ipr(plan.fabric_netns) as ipr:
        if _index(ipr, plan.bridge) is None:
            ipr.link("add", ifname=plan.bridge, kind="bridge")
        br = _index(ipr, plan.bridge)
        if br is None:
            raise FabricError(f"{plan.fabric_netns}: bridge {plan.bridge} missing after creation")
        _ensure_addr(ipr, br, str(OUTSIDE), UNDERLAY.prefixlen)
        ipr.link("set", index=br, state="up")


def ensure_outside_routes(plan: LabPlan) -> None:
    """Routes in the fabric namespace back to every node's pod CIDR, so the outside can answer pods."""
    with _ipr(plan.fabric_netns) as ipr:
        br = _index(ipr, plan.bridge)
        for node in plan.nodes:
            _ensure_route(ipr, dst=str(node.pod_cidr), gateway=str(node.underlay_ip), oif=br)


def ensure_node(plan: LabPlan, node: NodePlan) -> None:
    """The node's namespace, joined to the underlay bridge, forwarding, with its underlay address."""
    ensure_netns(node.netns)
    with _ipr(plan.fabric_netns) as fab:
        if _index(fab, node.fabric_port) is None:
            with _ipr(node.netns) as nipr:
                stale = _index(nipr, node.uplink)
                if stale is not None:
                    nipr.link("del", index=stale)
            fab.link("add", ifname=node.fabric_port, kind="veth", peer={"ifname": node.uplink, "net_ns_fd": node.netns})
        port = _index(fab, node.fabric_port)
        fab.link("set", index=port, master=_index(fab, plan.bridge), state="up")
    with _ipr(node.netns) as ipr:
        up = _index(ipr, node.uplink)
        if up is None:
            raise FabricError(f"{node.netns}: uplink {node.uplink} missing after creation")
        _ensure_addr(ipr, up, str(node.underlay_ip), UNDERLAY.prefixlen)
        ipr.link("set", index=up, state="up")
    sysctl(node.netns, "net.ipv4.ip_forward", "1")


def ensure_routes(plan: LabPlan, node: NodePlan) -> None:
    """Routes from ``node`` to every other node's pod CIDR: via the underlay, or over VXLAN."""
    with _ipr(node.netns) as ipr:
        if plan.routing == "vxlan":
            vx = _index(ipr, "vxlan0")
            if vx is None:
                ipr.link(
                    "add",
                    ifname="vxlan0",
                    kind="vxlan",
                    vxlan_id=VXLAN_ID,
                    vxlan_local=str(node.underlay_ip),
                    vxlan_port=VXLAN_PORT,
                    vxlan_link=_index(ipr, node.uplink),
                    vxlan_learning=1,
                )
                vx = _index(ipr, "vxlan0")
            assert vx is not None
            overlay = list(OVERLAY.hosts())
            _ensure_addr(ipr, vx, str(overlay[node.index]), OVERLAY.prefixlen)
            ipr.link("set", index=vx, state="up")
            for other in plan.nodes:
                if other.index == node.index:
                    continue
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        node.netns,
                        "bridge",
                        "fdb",
                        "append",
                        "00:00:00:00:00:00",
                        "dev",
                        "vxlan0",
                        "dst",
                        str(other.underlay_ip),
                    ],
                    check=False,
                    capture_output=True,
                )
                _ensure_route(ipr, dst=str(other.pod_cidr), gateway=str(overlay[other.index]), oif=vx)
        else:
            up = _index(ipr, node.uplink)
            for other in plan.nodes:
                if other.index != node.index:
                    _ensure_route(ipr, dst=str(other.pod_cidr), gateway=str(other.underlay_ip), oif=up)


def remove_lab_namespaces(plan_prefix: str) -> list[str]:
    """Delete every namespace whose name starts with the lab's prefix; returns what was removed."""
    removed = []
    for name in list_netns(plan_prefix):
        remove_netns(name)
        removed.append(name)
    return removed
