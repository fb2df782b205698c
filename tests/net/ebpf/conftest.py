"""One routed node with three pods, the eBPF datapath on it, for the whole module."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from podnet.datapath.ebpf import EbpfDatapath, Endpoint, ensure_bpffs
from podnet.datapath.ebpf.audit import Audit, audit_policies
from podnet.datapath.ebpf.system import unmount
from podnet.datapath.nft import NftDatapath
from podnet.k8s.parse import load_cluster
from podnet.policy.compiler import CompiledPolicy, compile_cluster
from podnet.policy.mapimage import map_image

from .topology import Topology

TCP_PORTS = [5432, 8000, 8080, 8081, 9000]
UDP_PORTS = [53, 5353]
SCTP_PORTS = [7777]
NAMESPACE = "shop"
NFT_LOG_GROUP = 7  # the node is a namespace of its own: no other listener on the group
# declared ports, for named-port rules: db serves its DNS-like service on UDP 5353 as "dns"
CONTAINER_PORTS: dict[str, list[dict[str, Any]]] = {"db": [{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}


class Lab:
    """The topology, a bpffs of its own, and helpers to compile manifests and program the kernel."""

    def __init__(self, workdir: Path, backend: str = "ebpf") -> None:
        self.workdir = workdir
        self.backend = backend
        self.topo = Topology(workdir)
        self.bpffs = workdir / "bpffs"
        self.mounted = False
        self.pin_dir = self.bpffs / f"node-{self.topo.suffix}"
        self.dp: Any = None  # EbpfDatapath or NftDatapath: the same calls
        self.compiled: CompiledPolicy | None = None
        self.version = 0

    def open(self) -> Any:
        if self.backend == "nft":
            self.dp = NftDatapath(netns=self.topo.node, log_group=NFT_LOG_GROUP)
        else:
            self.dp = EbpfDatapath(self.pin_dir, netns=self.topo.node)
        self.dp.ensure_loaded()
        return self.dp

    def compile(self, policies: list[dict[str, Any]]) -> CompiledPolicy:
        """Write the manifests (namespace, the topology's pods with their addresses, ``policies``) and compile."""
        self.version += 1
        path = self.workdir / f"cluster-{self.version}.yaml"
        docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
        for pod in self.topo.pods.values():
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": pod.name, "namespace": NAMESPACE, "labels": {"app": pod.name}},
                    "spec": {
                        "containers": [{"name": "main", "image": "probe", "ports": CONTAINER_PORTS.get(pod.name, [])}]
                    },
                    "status": {"podIP": str(pod.ip), "podIPs": [{"ip": str(pod.ip)}, {"ip": str(pod.ip6)}]},
                }
            )
        docs.extend(policies)
        path.write_text(yaml.safe_dump_all(docs))
        return compile_cluster(load_cluster([str(path)]))

    def identity(self, compiled: CompiledPolicy, pod: str) -> int:
        return compiled.identities.address_identity[self.topo.pods[pod].ip]

    def apply(self, compiled: CompiledPolicy) -> dict[str, tuple[int, int]]:
        """Attach every pod (idempotent), sync identities, apply every pod's image; rows written/deleted."""
        assert self.dp is not None
        self.dp.sync_identities(compiled.identities)
        stats = {}
        for name, pod in self.topo.pods.items():
            if not pod.local:
                continue
            ident = self.identity(compiled, name)
            self.dp.attach(Endpoint(pod.host_veth, pod.mac, ident, ipv4=pod.ip, ipv6=pod.ip6))
            audit = Audit(compiled, ident, audit_policies(compiled.cluster))
            s = self.dp.apply_image(pod.host_veth, map_image(compiled, ident), audit)
            stats[name] = (s.written, s.deleted)
        self.compiled = compiled
        return stats

    def teardown(self) -> None:
        errors: list[str] = []
        if self.dp is not None:
            try:
                if self.backend == "nft" or self.pin_dir.exists():
                    self.dp.destroy()
            except Exception as e:  # keep cleaning
                errors.append(f"datapath: {e}")
        self.topo.destroy()
        if self.mounted:
            unmount(self.bpffs)
        shutil.rmtree(self.workdir, ignore_errors=True)
        assert not errors, errors


def make_lab(backend: str) -> Iterator[Lab]:
    if backend == "ebpf" and not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.fail("the eBPF tests need a kernel with BPF and BTF (/sys/kernel/btf/vmlinux)", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("tests/net need root (network namespaces, tc, eBPF, nftables): run them as root", pytrace=False)
    lab = Lab(Path(tempfile.mkdtemp(prefix=f"podnet-{backend}-")), backend)
    try:
        if backend == "ebpf":
            lab.mounted = ensure_bpffs(lab.bpffs)
        lab.topo.create(["web", "db", "client"], remote=("far",))
        lab.topo.start_servers(TCP_PORTS, UDP_PORTS, SCTP_PORTS)
        lab.open()
        yield lab
    finally:
        lab.teardown()
        leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab.topo.suffix not in leftover


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    yield from make_lab("ebpf")
