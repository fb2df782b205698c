"""The spec's verbs driven by exec'ing the installed plugin against a real agent and real namespaces."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest

from tests.net.helpers import NODE_V4, NODE_V6, Agent, Node, Plugin, addresses, links, netns_del, ping, podnet_veths, sh

VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del_every_version(
    version: str, plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]
) -> None:
    pod = make_pod("a")
    cid = f"ctr-{pod}"
    add = plugin.exec(
        "ADD", plugin.conf(version), cid, f"/run/netns/{pod}", args="K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web"
    )
    assert add.returncode == 0, add.doc
    result = add.doc
    assert result["cniVersion"] == version
    ips = [ip["address"] for ip in result["ips"]]
    assert [ip.split("/")[1] for ip in ips] == ["32", "128"]
    assert ("version" in result["ips"][0]) == (version < "1.0.0")
    assert sorted(addresses(pod, "eth0")) == sorted(ips)
    host_veth = result["interfaces"][0]["name"]
    assert podnet_veths(node.name) == [host_veth]
    routes = sh("ip", "-n", node.name, "route", "show", "proto", "201").stdout
    assert f"{ips[0].split('/')[0]} dev {host_veth}" in routes
    (ep,) = agent.get("/v1/endpoints")
    assert (ep["pod_namespace"], ep["pod_name"], ep["host_veth"]) == ("ns1", "web", host_veth)

    if version >= "0.4.0":
        check = plugin.exec("CHECK", plugin.conf(version, prevResult=result), cid, f"/run/netns/{pod}")
        assert check.returncode == 0, check.doc
        # CHECK reports what is missing
        sh("ip", "-n", pod, "route", "del", "default")
        broken = plugin.exec("CHECK", plugin.conf(version, prevResult=result), cid, f"/run/netns/{pod}")
        assert broken.returncode != 0 and broken.doc["code"] == 115
        assert "default route via 169.254.1.1" in broken.doc["details"]

    delete = plugin.exec("DEL", plugin.conf(version), cid, f"/run/netns/{pod}")
    assert delete.returncode == 0, delete.doc
    assert podnet_veths(node.name) == []
    assert [link["ifname"] for link in links(pod)] == ["lo"]
    assert agent.allocations() == {} and agent.get("/v1/endpoints") == []
    again = plugin.exec("DEL", plugin.conf(version), cid, f"/run/netns/{pod}")
    assert again.returncode == 0


def test_check_names_a_changed_mac_or_a_foreign_peer(
    plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]
) -> None:
    pod = make_pod("mac")
    cid, netns = f"ctr-{pod}", f"/run/netns/{pod}"
    add = plugin.exec("ADD", plugin.conf(), cid, netns)
    assert add.returncode == 0, add.doc
    result = add.doc
    host, eth0 = result["interfaces"]
    (ep,) = agent.get("/v1/endpoints")
    live = {link["ifname"]: link["address"] for link in links(pod) + links(node.name)}
    assert (ep["host_mac"], ep["mac"]) == (host["mac"], eth0["mac"]) == (live[host["name"]], live["eth0"])

    def check() -> tuple[int, str]:
        call = plugin.exec("CHECK", plugin.conf(prevResult=result), cid, netns)
        return call.returncode, "" if call.doc is None else f"{call.doc.get('code')}: {call.doc.get('details')}"

    assert check() == (0, "")
    sh("ip", "-n", pod, "link", "set", "eth0", "address", "02:de:ad:be:ef:01")
    code, details = check()
    assert code == 1 and details == (
        f"115: eth0 in {netns} has MAC 02:de:ad:be:ef:01, podnet recorded and prevResult lists {eth0['mac']}"
    )
    sh("ip", "-n", pod, "link", "set", "eth0", "address", eth0["mac"])
    sh("ip", "-n", node.name, "link", "set", host["name"], "address", "02:de:ad:be:ef:02")
    code, details = check()
    assert code == 1 and details == (
        f"115: host veth {host['name']} has MAC 02:de:ad:be:ef:02, podnet recorded and prevResult lists {host['mac']}"
    )
    sh("ip", "-n", node.name, "link", "set", host["name"], "address", host["mac"])
    assert check() == (0, "")
    # another veth in the pod takes the name eth0, with podnet's MAC, addresses and MTU: only the
    # peer check can tell
    sh("ip", "-n", pod, "link", "set", "eth0", "name", "old0")
    sh("ip", "-n", pod, "link", "add", "eth0", "address", eth0["mac"], "type", "veth", "peer", "name", "other0")
    sh("ip", "-n", pod, "link", "set", "eth0", "up")
    sh("ip", "-n", pod, "link", "set", "other0", "up")
    for ip in result["ips"]:
        sh("ip", "-n", pod, "addr", "add", ip["address"], "dev", "eth0", *(["nodad"] if ":" in ip["address"] else []))
    sh("ip", "-n", pod, "route", "replace", "default", "via", "169.254.1.1", "dev", "eth0", "onlink")
    sh("ip", "-n", pod, "-6", "route", "replace", "default", "via", "fe80::1", "dev", "eth0")
    code, details = check()
    assert code == 1 and details == f"115: eth0 in {netns} is not the veth peer of {host['name']}"
    assert plugin.exec("DEL", plugin.conf(), cid, netns).returncode == 0
    assert podnet_veths(node.name) == []


def test_two_pods_reach_each_other_and_the_node(plugin: Plugin, node: Node, make_pod: Callable[[str], str]) -> None:
    a, b = make_pod("a"), make_pod("b")
    res = {}
    for pod in (a, b):
        call = plugin.exec("ADD", plugin.conf(mtu=1400), f"c-{pod}", f"/run/netns/{pod}")
        assert call.returncode == 0, call.doc
        res[pod] = [ip["address"].split("/")[0] for ip in call.doc["ips"]]
    b4, b6 = res[b]
    a4, a6 = res[a]
    assert ping(a, b4) and ping(a, b6), "pod to pod"
    assert ping(b, a4) and ping(b, a6), "pod to pod, other way"
    assert ping(a, NODE_V4) and ping(a, NODE_V6), "pod to node"
    assert ping(node.name, b4) and ping(node.name, b6), "node to pod"
    mtus = {link["ifname"]: link["mtu"] for link in links(a)}
    assert mtus["eth0"] == 1400
    assert all(link["mtu"] == 1400 for link in links(node.name) if link["ifname"].startswith("pn"))
    for pod in (a, b):
        assert plugin.exec("DEL", plugin.conf(), f"c-{pod}", f"/run/netns/{pod}").returncode == 0
    assert podnet_veths(node.name) == []


def test_bad_inputs_answer_spec_errors_and_change_nothing(
    plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]
) -> None:
    pod = make_pod("bad")
    ns = f"/run/netns/{pod}"
    cases = [
        (plugin.exec("ADD", b"{not json", "c1", ns), 6, "JSON"),
        (plugin.exec("ADD", plugin.conf("0.2.0"), "c1", ns), 1, "0.2.0"),
        (plugin.exec("ADD", plugin.conf(mtu="big"), "c1", ns), 7, "mtu"),
        (plugin.exec("ADD", {**plugin.conf(), "name": ""}, "c1", ns), 7, "name"),
        (plugin.exec("ADD", plugin.conf(), "c1", ""), 4, "CNI_NETNS"),
        (plugin.exec("ADD", plugin.conf(), "c1", ns, ifname="way-too-long-ifname"), 4, "CNI_IFNAME"),
        (plugin.exec("ADD", plugin.conf(), "", ns), 4, "CNI_CONTAINERID"),
        (plugin.exec("ADD", plugin.conf(), "c1", "/run/netns/does-not-exist-pn"), 4, "CNI_NETNS"),
        (plugin.exec("FROB", plugin.conf(), "c1", ns), 4, "CNI_COMMAND"),
        (plugin.exec("GC", plugin.conf("1.0.0")), 1, "GC"),
    ]
    for call, code, needle in cases:
        assert call.returncode != 0
        assert call.doc["code"] == code, call.doc
        assert needle in call.doc["msg"], call.doc
        assert set(call.doc) >= {"cniVersion", "code", "msg"}
    # the node's own namespace is never a pod
    own = plugin.exec("ADD", plugin.conf(), "c1", f"/run/netns/{node.name}")
    assert own.returncode != 0 and own.doc["code"] == 4 and "own network namespace" in own.doc["msg"]
    # an interface that already exists in the pod
    sh("ip", "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
    exists = plugin.exec("ADD", plugin.conf(), "c1", ns)
    assert exists.returncode != 0 and exists.doc["code"] == 113 and "eth0" in exists.doc["msg"]
    assert podnet_veths(node.name) == []
    assert agent.allocations() == {}


def test_half_done_add_is_rolled_back(plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]) -> None:
    """IPv6 disabled in the pod: the veth, the IPv4 address and the allocation exist when ADD fails."""
    pod = make_pod("v4only")
    sh("ip", "netns", "exec", pod, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    call = plugin.exec("ADD", plugin.conf(), "c-half", f"/run/netns/{pod}")
    assert call.returncode != 0 and call.doc["code"] == 114, call.doc
    assert podnet_veths(node.name) == []
    assert [link["ifname"] for link in links(pod)] == ["lo"]
    assert agent.allocations() == {}
    assert sh("ip", "-n", node.name, "route", "show", "proto", "201").stdout == ""
    # and the pool is intact: the next pod gets the first address
    ok = make_pod("ok")
    call = plugin.exec("ADD", plugin.conf(), "c-ok", f"/run/netns/{ok}")
    assert call.doc["ips"][0]["address"].startswith("10.77.0.")


def test_del_is_idempotent_for_gone_things(
    plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]
) -> None:
    pod = make_pod("gone")
    assert plugin.exec("ADD", plugin.conf(), "c-gone", f"/run/netns/{pod}").returncode == 0
    netns_del(pod)  # the runtime removed the netns first: the veth died with it
    assert plugin.exec("DEL", plugin.conf(), "c-gone", f"/run/netns/{pod}").returncode == 0
    assert plugin.exec("DEL", plugin.conf(), "c-gone", "").returncode == 0
    assert plugin.exec("DEL", plugin.conf(), "never-seen", "").returncode == 0
    assert agent.allocations() == {} and podnet_veths(node.name) == []


def test_status_gc_and_version(plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]) -> None:
    assert plugin.exec("STATUS", plugin.conf("1.1.0")).returncode == 0
    version = plugin.exec("VERSION", b'{"cniVersion": "1.1.0"}')
    assert version.doc["supportedVersions"] == VERSIONS
    keep, drop = make_pod("keep"), make_pod("drop")
    for pod in (keep, drop):
        assert plugin.exec("ADD", plugin.conf("1.1.0"), f"c-{pod}", f"/run/netns/{pod}").returncode == 0
    valid = [{"containerID": f"c-{keep}", "ifname": "eth0"}]
    gc = plugin.exec("GC", plugin.conf("1.1.0", **{"cni.dev/valid-attachments": valid}))
    assert gc.returncode == 0, gc.doc
    assert list(agent.allocations()) == [f"c-{keep}/eth0"]
    assert len(podnet_veths(node.name)) == 1
    assert [link["ifname"] for link in links(drop)] == ["lo"]
    assert ping(keep, NODE_V4)
    assert agent.socket.stat().st_mode & 0o777 == 0o600
    status = agent.get("/v1/status")
    assert status["healthy"] and status["endpoints"] == 1
    assert [p["used"] for p in status["ipam"]] == [1, 1]
    # the CLI over the same socket
    cli = [sys.executable, "-m", "podnet.cli.main"]
    out = sh(*cli, "endpoints", "--socket", str(agent.socket), "-o", "json").stdout
    assert [e["container_id"] for e in json.loads(out)] == [f"c-{keep}"]
    table = sh(*cli, "endpoints", "--socket", str(agent.socket)).stdout.splitlines()
    assert table[0].split()[:3] == ["POD", "CONTAINER", "IFNAME"] and f"c-{keep}"[:12] in table[1]
    text = sh(*cli, "status", "--socket", str(agent.socket)).stdout
    assert "health:    ok" in text and "10.77.0.0/24  1/254 used" in text
    agent.stop()
    down = sh(*cli, "status", "--socket", str(agent.socket), check=False)
    assert down.returncode != 0 and "not reachable" in down.stderr


def test_agent_down_is_error_11(plugin: Plugin, agent: Agent, make_pod: Callable[[str], str]) -> None:
    agent.stop()
    pod = make_pod("down")
    call = plugin.exec("ADD", plugin.conf(), "c-down", f"/run/netns/{pod}")
    assert call.returncode != 0 and call.doc["code"] == 11
    assert plugin.exec("STATUS", plugin.conf("1.1.0")).doc["code"] == 50
