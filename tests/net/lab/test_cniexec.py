"""The lab's CNI caller drives real plugins (Debian's reference plugins) like a container runtime."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.lab import fabric
from podnet.lab.cniexec import Attachment, CniExecError, ConflistRunner

REFERENCE = Path("/usr/lib/cni")


@pytest.fixture
def node_and_pod() -> Iterator[tuple[str, str]]:
    suffix = secrets.token_hex(3)
    node, pod = f"pnl-t{suffix}-n0", f"pnl-t{suffix}-pod"
    try:
        fabric.ensure_netns(node)
        fabric.ensure_netns(pod)
        yield node, pod
    finally:
        fabric.remove_netns(pod)
        fabric.remove_netns(node)


def _conflist(tmp: Path, *extra: dict[str, object]) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": "labtest",
        "plugins": [
            {
                "type": "ptp",
                "ipam": {"type": "host-local", "subnet": "10.252.7.0/24", "dataDir": str(tmp / "ipam")},
            },
            *extra,
        ],
    }


def _links(ns: str) -> list[str]:
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show"], check=True, capture_output=True, text=True).stdout
    return [link["ifname"] for link in json.loads(out)]


def test_add_check_del_with_reference_plugins(node_and_pod: tuple[str, str], tmp_path: Path) -> None:
    assert REFERENCE.joinpath("ptp").exists(), "Debian's containernetworking-plugins must be installed"
    node, pod = node_and_pod
    runner = ConflistRunner(_conflist(tmp_path, {"type": "tuning", "sysctl": {}}), [REFERENCE], node_netns=node)
    att = Attachment("c" + secrets.token_hex(8), f"/run/netns/{pod}", "eth0", (("K8S_POD_NAME", "p"),))
    result = runner.add(att)
    assert result["ips"][0]["address"].startswith("10.252.7.")
    assert "eth0" in _links(pod)
    host_veths = [name for name in _links(node) if name.startswith("veth")]
    assert len(host_veths) == 1  # the host side lives in the node namespace, not the caller's
    runner.check(att)
    runner.delete(att)
    assert "eth0" not in _links(pod)
    assert [name for name in _links(node) if name.startswith("veth")] == []
    runner.delete(att)  # a second DEL succeeds


def test_a_failing_plugin_rolls_the_whole_add_back(node_and_pod: tuple[str, str], tmp_path: Path) -> None:
    node, pod = node_and_pod
    bad = {"type": "tuning", "sysctl": {"net.ipv4.no_such_knob": "1"}}
    runner = ConflistRunner(_conflist(tmp_path, bad), [REFERENCE], node_netns=node)
    att = Attachment("c" + secrets.token_hex(8), f"/run/netns/{pod}", "eth0")
    with pytest.raises(CniExecError) as err:
        runner.add(att)
    assert err.value.plugin == "tuning"
    assert "eth0" not in _links(pod)
    assert [name for name in _links(node) if name.startswith("veth")] == []
    leases = [p.name for p in (tmp_path / "ipam" / "labtest").iterdir() if p.name[0].isdigit()]
    assert leases == []  # host-local released the address during the rollback
