"""Helpers for the privileged tests: namespaces, the agent process, exec'ing CNI plugins like a runtime."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.cni.install import install

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PLUGINS = Path("/usr/lib/cni")
NODE_V4 = "192.0.2.1"
NODE_V6 = "2001:db8::1"


def new_suffix() -> str:
    return secrets.token_hex(3)


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


def netns_add(name: str) -> None:
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def netns_del(name: str) -> None:
    sh("ip", "netns", "del", name, check=False)


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def links(netns: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(sh("ip", "-n", netns, "-j", "-d", "link", "show").stdout)
    return out


def podnet_veths(netns: str) -> list[str]:
    return [link["ifname"] for link in links(netns) if link["ifname"].startswith("pn")]


def addresses(netns: str, ifname: str) -> list[str]:
    doc = json.loads(sh("ip", "-n", netns, "-j", "addr", "show", "dev", ifname).stdout)
    return [f"{a['local']}/{a['prefixlen']}" for a in doc[0]["addr_info"] if a.get("scope") == "global"]


TCP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(sys.argv[2].encode() + b" " + peer[0].encode())
    c.close()
"""


def tcp_server(netns: str, port: int, banner: str) -> subprocess.Popen[str]:
    """A TCP server in ``netns`` answering ``banner peer-address`` to every connection (IPv4 and IPv6)."""
    cmd = ["ip", "netns", "exec", netns, sys.executable, "-c", TCP_SERVER, str(port), banner]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


TCP_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
    print(c.recv(200).decode())
"""


def tcp_get(netns: str, host: str, port: int) -> str:
    """Connect from ``netns`` to host:port and return what the server said ("" when it failed)."""
    r = sh("ip", "netns", "exec", netns, sys.executable, "-c", TCP_CLIENT, host, str(port), check=False)
    if r.returncode != 0:
        print(f"tcp_get {netns} → {host}:{port} failed: {r.stderr.strip().splitlines()[-1:]}")
    return r.stdout.strip()


def ping(netns: str, address: str, count: int = 1) -> bool:
    r = sh("ip", "netns", "exec", netns, "ping", "-c", str(count), "-W", "2", address, check=False)
    return r.returncode == 0


@dataclass
class Node:
    """A network namespace standing in for the node: the agent runs here, host veths live here."""

    name: str
    dir: Path

    @classmethod
    def create(cls, suffix: str, tmp: Path) -> Node:
        node = cls(f"pnt-{suffix}", tmp)
        netns_add(node.name)
        sh("ip", "-n", node.name, "addr", "add", f"{NODE_V4}/32", "dev", "lo")
        sh("ip", "-n", node.name, "addr", "add", f"{NODE_V6}/128", "dev", "lo")
        return node

    def destroy(self) -> None:
        netns_del(self.name)


@dataclass
class Agent:
    node: Node
    cidrs: list[str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    socket: Path = field(init=False)
    state_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.socket = self.node.dir / "agent.sock"
        self.state_dir = self.node.dir / "state"
        self.log_path = self.node.dir / "agent.log"

    def start(self, timeout: float = 20) -> None:
        cmd = ["ip", "netns", "exec", self.node.name, sys.executable, "-m", "podnet.cli.main", "agent"]
        cmd += ["--node-name", self.node.name, "--socket", str(self.socket), "--state-dir", str(self.state_dir)]
        for cidr in self.cidrs:
            cmd += ["--pod-cidr", cidr]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.log_path.read_text()}")
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                s.connect(str(self.socket))
                return
            time.sleep(0.05)
        raise RuntimeError(f"agent did not listen within {timeout}s: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def get(self, path: str) -> Any:
        from podnet.agent.client import get_json

        return get_json(str(self.socket), path)

    def allocations(self) -> dict[str, list[str]]:
        doc = json.loads((self.state_dir / "ipam.json").read_text())
        out: dict[str, list[str]] = {}
        for pool in doc["pools"].values():
            for address, owner in pool["allocations"].items():
                out.setdefault(owner["containerID"] + "/" + owner["ifname"], []).append(address)
        return out


@dataclass
class CniCall:
    returncode: int
    doc: Any
    stderr: str


@dataclass
class Plugin:
    """The installed ``podnet`` plugin, exec'd with CNI env and stdin exactly as a runtime does."""

    bin_dir: Path
    conf_dir: Path
    socket: Path
    run_in: str  # plugins run in the node's namespace, as a runtime on that node would run them

    @classmethod
    def install(cls, where: Path, socket_path: Path, run_in: str) -> Plugin:
        bin_dir, conf_dir = where / "bin", where / "net.d"
        install(bin_dir, conf_dir, socket_path=str(socket_path))
        return cls(bin_dir, conf_dir, socket_path, run_in)

    @property
    def cni_path(self) -> str:
        return f"{self.bin_dir}:{REFERENCE_PLUGINS}"

    def conf(self, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
        return {
            "cniVersion": version,
            "name": "podnet-test",
            "type": "podnet",
            "agentSocket": str(self.socket),
            **extra,
        }

    def exec(
        self,
        command: str,
        conf: dict[str, Any] | bytes,
        container_id: str = "",
        netns: str = "",
        ifname: str = "eth0",
        args: str = "",
        plugin: str = "podnet",
        env: dict[str, str] | None = None,
    ) -> CniCall:
        path = os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
        base = {"CNI_COMMAND": command, "CNI_PATH": self.cni_path, "PATH": path}
        if command not in ("VERSION", "STATUS", "GC"):
            base.update(CNI_CONTAINERID=container_id, CNI_NETNS=netns, CNI_IFNAME=ifname, CNI_ARGS=args)
        if env is not None:
            base = {**base, **env}
        data = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
        exe = self.bin_dir / plugin if plugin == "podnet" else REFERENCE_PLUGINS / plugin
        cmd = ["ip", "netns", "exec", self.run_in, str(exe)]
        r = subprocess.run(cmd, input=data, env=base, capture_output=True, timeout=60)
        out = r.stdout.decode().strip()
        return CniCall(r.returncode, json.loads(out) if out else None, r.stderr.decode())

    def chain_add(self, plugins: list[dict[str, Any]], version: str, cid: str, netns: str) -> Any:
        """ADD through a conflist's plugins in order, each getting the previous result (as libcni does)."""
        prev = None
        for p in plugins:
            conf = {"cniVersion": version, "name": "podnet-test", **p}
            if prev is not None:
                conf["prevResult"] = prev
            call = self.exec("ADD", conf, cid, netns, plugin=p["type"])
            assert call.returncode == 0, (p["type"], call.doc, call.stderr)
            prev = call.doc
        return prev

    def chain(self, command: str, plugins: list[dict[str, Any]], version: str, cid: str, netns: str, prev: Any) -> None:
        """CHECK (in order) or DEL (in reverse), each plugin getting the final ADD result."""
        order = plugins if command == "CHECK" else list(reversed(plugins))
        for p in order:
            conf = {"cniVersion": version, "name": "podnet-test", **p}
            if prev is not None:
                conf["prevResult"] = prev
            call = self.exec(command, conf, cid, netns, plugin=p["type"])
            assert call.returncode == 0, (command, p["type"], call.doc, call.stderr)
