"""Endpoints the analyzer talks about: pods (or workload templates) and addresses outside the cluster."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from podnet.errors import ReferenceError_
from podnet.k8s.model import IPAddress, IPNetwork, Pod, Protocol
from podnet.policy.compiler import CompiledPolicy
from podnet.policy.identity import WORLD_V4, WORLD_V6


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a connection. ``pod`` is None for an address outside the cluster."""

    ref: str
    identity: int
    pod: Pod | None = None
    address: IPAddress | None = None
    cidr: IPNetwork | None = None

    @property
    def is_pod(self) -> bool:
        return self.pod is not None


class Resolver:
    """Turns ``ns/name`` and ``ip:ADDR`` references into endpoints; results are cached."""

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        self._cache: dict[str, Endpoint] = {}
        pods = compiled.cluster.pods
        self._pods = {(p.namespace, p.name): p for p in pods if p.kind == "Pod"}
        self._workloads = {(p.namespace, p.name): p for p in pods if p.kind != "Pod"}
        self._owned: dict[tuple[str, str], Pod] = {}
        for p in sorted(pods, key=lambda p: p.name):
            if p.owner:
                self._owned.setdefault((p.namespace, p.owner), p)
        self._by_ip = {ip: p for p in pods for ip in p.ips}

    def pod_endpoint(self, pod: Pod) -> Endpoint:
        return Endpoint(pod.ref, self.compiled.identities.of_pod(pod), pod)

    def resolve(self, ref: str) -> Endpoint:
        found = self._cache.get(ref)
        if found is None:
            found = self._resolve(ref)
            self._cache[ref] = found
        return found

    def _resolve(self, ref: str) -> Endpoint:
        if ref.startswith("ip:"):
            try:
                addr = ipaddress.ip_address(ref[3:])
            except ValueError as exc:
                raise ReferenceError_(f"{ref!r}: not an IP address") from exc
            pod = self._by_ip.get(addr)
            if pod is not None:
                return Endpoint(ref, self.compiled.identities.of_pod(pod), pod, addr)
            return Endpoint(ref, self.compiled.identities.identity_of_address(addr), None, addr)
        ns, _, name = ref.rpartition("/")
        key = (ns or "default", name)
        pod = self._pods.get(key) or self._workloads.get(key) or self._owned.get(key)
        if pod is None:
            raise ReferenceError_(
                f"{ref!r}: no Pod or workload {key[0]}/{key[1]} in the manifests (use ns/name or ip:ADDR)"
            )
        return self.pod_endpoint(pod)

    def port_number(self, dst: Endpoint, protocol: Protocol, port: int | str) -> int:
        """A port given by number or by name; a name resolves against the destination's container ports."""
        if isinstance(port, int):
            if not 1 <= port <= 65535:
                raise ReferenceError_(f"port {port}: must be between 1 and 65535")
            return port
        if port.isdigit():
            return self.port_number(dst, protocol, int(port))
        if dst.pod is None:
            raise ReferenceError_(f"named port {port!r}: {dst.ref} is not a pod and declares no ports")
        found = dst.pod.named_port(port, protocol)
        if not found:
            raise ReferenceError_(f"named port {port!r}: {dst.ref} declares no {protocol} port of that name")
        return found[0][1]

    def endpoints(self) -> list[Endpoint]:
        """Every pod (workload templates without pods included) and one address per external range."""
        out = [self.pod_endpoint(p) for p in sorted(self.compiled.cluster.pods, key=lambda p: (p.namespace, p.name))]
        ids = self.compiled.identities
        taken = set(self._by_ip)  # a pod's address stands for the pod, never for an outside range
        for cidr in ids.cidrs:
            children = [c for c in ids.cidrs if c != cidr and c.version == cidr.version and c.subnet_of(cidr)]  # type: ignore[arg-type]
            addr = _representative(cidr, children, taken)
            if addr is None:
                continue
            label = str(cidr)
            if children:
                top = [c for c in children if not any(o != c and c.subnet_of(o) for o in children)]  # type: ignore[arg-type]
                label += " except " + ",".join(str(c) for c in top)
            out.append(Endpoint(label, ids.identity_of_address(addr), None, addr, cidr))
        for version, world in ((4, WORLD_V4), (6, WORLD_V6)):
            everything = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
            tops = [c for c in ids.cidrs if c.version == version]
            if everything in tops or (version == 6 and not tops):
                continue
            addr = _representative(everything, tops, taken)
            if addr is not None:
                out.append(Endpoint("world" if version == 4 else "world-v6", world, None, addr, everything))
        return out


def _representative(cidr: IPNetwork, holes: list[IPNetwork], taken: set[IPAddress]) -> IPAddress | None:
    """An address of ``cidr`` outside every hole and not ``taken`` (by a pod), or None when there is none."""
    candidates = [cidr]
    for hole in sorted(holes, key=lambda h: h.prefixlen):
        nxt: list[IPNetwork] = []
        for c in candidates:
            if c.subnet_of(hole):  # type: ignore[arg-type]
                continue
            if hole.subnet_of(c):  # type: ignore[arg-type]
                nxt.extend(c.address_exclude(hole))  # type: ignore[arg-type]
            else:
                nxt.append(c)
        candidates = nxt
        if not candidates:
            return None
    for best in sorted(candidates, key=lambda c: c.prefixlen):
        # at most len(taken) + 1 tries in all: every miss is a distinct taken address
        for offset in range(1 if best.num_addresses > 2 else 0, best.num_addresses):
            addr = best.network_address + offset
            if addr not in taken:
                return addr
    return None
