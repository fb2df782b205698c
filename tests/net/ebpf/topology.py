"""A routed one-node topology in throwaway network namespaces, like a routed CNI builds it.

One "node" namespace, one namespace per pod; each pod's eth0 pairs with a host veth in the node,
the pod has a /32 and a /128 and default routes via link-local gateways (static neighbour entries),
the node a /32 and a /128 route and static neighbours per pod. Names carry a random suffix so parallel runs
never meet, and ``destroy`` removes exactly the namespaces it made (their links go with them).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .agents import PROBE, SERVER

GATEWAY = "169.254.1.1"
GATEWAY6 = "fe80::1"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@dataclass
class PodNet:
    name: str
    netns: str
    ip: ipaddress.IPv4Address
    ip6: ipaddress.IPv6Address
    mac: str
    host_veth: str
    host_mac: str
    log: Path
    local: bool = True  # False: stands for a pod on another node (its veth is the node's uplink, no programs)
    server: subprocess.Popen[str] | None = None


@dataclass
class Topology:
    workdir: Path
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    pods: dict[str, PodNet] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"pne-node-{self.suffix}"

    def ns_exec(self, netns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", netns, *args, check=check)

    def _add_netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def create(self, pods: list[str], remote: tuple[str, ...] = (), subnet: int = 0) -> None:
        """Local pods get 10.200.0.11… and fd00:200::b…; ``remote`` ones (another node's pods, reached
        through an uplink veth of the node) get 10.200.1.11… and fd00:201::b…. ``subnet`` moves both
        (10.200.<subnet>…, 10.200.<subnet + 1>…), so two topologies can stand for two nodes."""
        self._add_netns(self.node)
        self.ns_exec(self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.ns_exec(self.node, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for i, name in enumerate([*pods, *remote], start=1):
            local = name in pods
            net = subnet + (0 if local else 1)
            pod = PodNet(
                name=name,
                netns=f"pne-{name}-{self.suffix}",
                ip=ipaddress.IPv4Address(f"10.200.{net}.{10 + i}"),
                ip6=ipaddress.IPv6Address(f"fd00:20{net}::{10 + i:x}"),
                mac=f"02:00:00:00:01:{i:02x}",
                host_veth=f"pe{self.suffix}{'h' if local else 'u'}{i}",
                host_mac=f"02:00:00:00:02:{i:02x}",
                log=self.workdir / f"{name}.log",
                local=local,
            )
            self._add_netns(pod.netns)
            sh("ip", "-n", self.node, "link", "add", pod.host_veth, "address", pod.host_mac, "type", "veth",
               "peer", "name", "eth0", "address", pod.mac, "netns", pod.netns)  # fmt: skip
            sh("ip", "-n", self.node, "link", "set", pod.host_veth, "up")
            sh("ip", "-n", self.node, "route", "add", f"{pod.ip}/32", "dev", pod.host_veth)
            sh("ip", "-n", self.node, "neigh", "replace", str(pod.ip), "lladdr", pod.mac, "dev", pod.host_veth,
               "nud", "permanent")  # fmt: skip
            sh("ip", "-n", self.node, "-6", "route", "add", f"{pod.ip6}/128", "dev", pod.host_veth)
            sh("ip", "-n", self.node, "-6", "neigh", "replace", str(pod.ip6), "lladdr", pod.mac, "dev", pod.host_veth,
               "nud", "permanent")  # fmt: skip
            sh("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/32", "dev", "eth0")
            sh("ip", "-n", pod.netns, "-6", "addr", "add", f"{pod.ip6}/128", "dev", "eth0", "nodad")
            sh("ip", "-n", pod.netns, "link", "set", "eth0", "up")
            sh("ip", "-n", pod.netns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
            sh("ip", "-n", pod.netns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
            sh("ip", "-n", pod.netns, "neigh", "replace", GATEWAY, "lladdr", pod.host_mac, "dev", "eth0",
               "nud", "permanent")  # fmt: skip
            sh("ip", "-n", pod.netns, "-6", "route", "add", "default", "via", GATEWAY6, "dev", "eth0")
            sh("ip", "-n", pod.netns, "-6", "neigh", "replace", GATEWAY6, "lladdr", pod.host_mac, "dev", "eth0",
               "nud", "permanent")  # fmt: skip
            self.pods[name] = pod

    def start_servers(self, tcp: list[int], udp: list[int], sctp: list[int]) -> None:
        for pod in self.pods.values():
            pod.log.touch()
            args = [",".join(map(str, ports)) for ports in (tcp, udp, sctp)]
            cmd = ["ip", "netns", "exec", pod.netns, sys.executable, "-c", SERVER, str(pod.log), *args]
            pod.server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert pod.server.stdout is not None
            line = pod.server.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"server in {pod.netns} did not start: {line} {pod.server.stderr}")

    def probe(self, pod: str, probes: list[dict[str, object]]) -> list[bool]:
        if not probes:
            return []
        out = self.ns_exec(self.pods[pod].netns, sys.executable, "-c", PROBE, json.dumps(probes))
        results: list[bool] = json.loads(out.stdout)
        return results

    def logged(self, pod: str) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.pods[pod].log.read_text().splitlines() if line.strip()]

    def wait_logged(self, pod: str, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(rec.get("data") == marker for rec in self.logged(pod)):
                return True
            time.sleep(0.05)
        return False

    def destroy(self) -> None:
        for pod in self.pods.values():
            if pod.server is not None and pod.server.poll() is None:
                pod.server.kill()
                pod.server.wait()
        for name in reversed(self.namespaces):
            sh("ip", "netns", "del", name, check=False)
        self.namespaces.clear()
