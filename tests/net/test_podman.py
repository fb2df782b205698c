"""podman (Debian's 4.3, CNI network backend, runc) runs two containers on a podnet network.

Everything podman uses is private to the test: containers.conf via CONTAINERS_CONF, storage under
``--root``/``--runroot``/``--tmpdir``, network configs in the test's own directory, and a rootfs made
of busybox-static. The agent runs in the test's node namespace; podman execs the installed plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.cni.install import install
from tests.net.helpers import NODE_V4, NODE_V6, REFERENCE_PLUGINS, Agent, Node, podnet_veths

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ping", "sleep", "ip", "cat")


class Podman:
    def __init__(self, root: Path, network: str) -> None:
        self.root = root
        self.network = network
        self.env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf")}
        self.base = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run")]
        self.base += ["--tmpdir", str(root / "tmp"), "--storage-driver", "vfs"]
        self.base += ["--network-config-dir", str(root / "net.d")]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(self.base + list(args), env=self.env, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {r.stderr}")
        return r


@pytest.fixture
def podman(node: Node, agent: Agent) -> Iterator[Podman]:
    assert shutil.which("podman") and shutil.which("runc"), "podman and runc are in scripts/debian-packages.txt"
    root = Path(tempfile.mkdtemp(prefix="pnp-"))  # podman refuses a runroot longer than 50 characters
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    network = f"podnet-{node.name}"
    install(root / "bin", root / "net.d", name=network, socket_path=str(agent.socket), cni_version="1.0.0")
    (root / "containers.conf").write_text(
        f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{root / "bin"}", "{REFERENCE_PLUGINS}"]
network_config_dir = "{root / "net.d"}"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
"""
    )
    p = Podman(root, network)
    try:
        yield p
    finally:
        names = p("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
        if names:
            p("rm", "-f", "-t", "0", *names, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_two_containers_on_podnet(podman: Podman, agent: Agent, node: Node) -> None:
    rootfs = str(podman.root / "rootfs")
    names = [f"a-{node.name}", f"b-{node.name}"]
    for name in names:
        podman("run", "-d", "--name", name, "--network", podman.network, "--rootfs", rootfs, "sleep", "600")
    ips = {}
    for name in names:
        doc = json.loads(podman("inspect", name).stdout)[0]
        net = doc["NetworkSettings"]["Networks"][podman.network]
        ips[name] = (net["IPAddress"], net["GlobalIPv6Address"], doc["Id"])
        assert net["IPAddress"].startswith("10.77.0.") and net["Gateway"] == "169.254.1.1"
    endpoints = {e["container_id"]: e for e in agent.get("/v1/endpoints")}
    assert set(endpoints) == {ips[n][2] for n in names}
    assert sorted(agent.allocations()) == sorted(f"{ips[n][2]}/eth0" for n in names)

    a, b = names
    for target in (ips[b][0], ips[b][1], NODE_V4, NODE_V6):
        r = podman("exec", a, "ping", "-c", "1", "-W", "3", target, check=False)
        assert r.returncode == 0, f"{a} → {target}: {r.stdout} {r.stderr}"
    r = podman("exec", b, "ping", "-c", "1", "-W", "3", ips[a][0], check=False)
    assert r.returncode == 0, r.stdout

    podman("rm", "-f", "-t", "0", *names)
    assert agent.allocations() == {}
    assert agent.get("/v1/endpoints") == []
    assert podnet_veths(node.name) == []
