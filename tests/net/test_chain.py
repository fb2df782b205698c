"""podnet first in a chain with the reference tuning, portmap and bandwidth plugins (ADD, CHECK, DEL).

Debian's plugins speak CNI up to 1.0.0, so the chain runs at 1.0.0, on a dual-stack pod.

portmap CHECK: Debian's portmap 1.1.1 fails its own CHECK whenever ip6tables is usable
(containernetworking/plugins#819): ``checkPorts(conf, ContIPv4)`` looks for the IPv4 DNAT rules in
*both* iptables and ip6tables, so on a dual-stack pod it reports "could not check ipv6 dnat: rule
[... <pod IPv4> ...] not found". The test accepts exactly that answer and then shows it is portmap's:
the IPv4 rules are in the IPv4 nat table and the IPv6 rules in the IPv6 one, where they belong.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.net.helpers import NODE_V4, NODE_V6, Agent, Node, Plugin, links, podnet_veths, sh, tcp_get, tcp_server

TUNED_MAC = "0a:58:0a:4d:00:99"


def chain(host_port: int) -> list[dict[str, object]]:
    return [
        {"type": "podnet"},
        {"type": "tuning", "mac": TUNED_MAC, "sysctl": {"net.core.somaxconn": "512"}},
        {
            "type": "portmap",
            "capabilities": {"portMappings": True},
            "snat": True,
            "runtimeConfig": {"portMappings": [{"hostPort": host_port, "containerPort": 8080, "protocol": "tcp"}]},
        },
        {
            "type": "bandwidth",
            "capabilities": {"bandwidth": True},
            "runtimeConfig": {
                "bandwidth": {
                    "ingressRate": 8000000,
                    "ingressBurst": 80000,
                    "egressRate": 8000000,
                    "egressBurst": 80000,
                }
            },
        },
    ]


def test_chain_add_check_del(plugin: Plugin, agent: Agent, node: Node, make_pod: Callable[[str], str]) -> None:
    web, client = make_pod("web"), make_pod("client")
    plugins = chain(18080)
    for p in plugins:
        if p["type"] == "podnet":
            p["agentSocket"] = str(plugin.socket)
    cid = f"c-{web}"
    result = plugin.chain_add(plugins, "1.0.0", cid, f"/run/netns/{web}")
    assert [ip["address"].split("/")[1] for ip in result["ips"]] == ["32", "128"]
    web4, web6 = (ip["address"].split("/")[0] for ip in result["ips"])
    host_veth = result["interfaces"][0]["name"]

    # tuning changed the pod's MAC and a namespaced sysctl
    eth0 = next(link for link in links(web) if link["ifname"] == "eth0")
    assert eth0["address"] == TUNED_MAC
    assert sh("ip", "netns", "exec", web, "sysctl", "-n", "net.core.somaxconn").stdout.strip() == "512"
    # bandwidth shaped the host veth (ingress) and redirected its egress through an ifb device
    assert "tbf" in sh("ip", "netns", "exec", node.name, "tc", "qdisc", "show", "dev", host_veth).stdout
    assert any(link["ifname"].startswith("bwp") for link in links(node.name))

    # portmap: the node's port 18080 reaches the pod's 8080, over IPv4 and IPv6, from another pod
    assert plugin.exec("ADD", plugin.conf(), f"c-{client}", f"/run/netns/{client}").returncode == 0
    server = tcp_server(web, 8080, "web")
    try:
        assert tcp_get(client, web4, 8080).startswith("web "), "pod to pod, direct"
        assert tcp_get(client, NODE_V4, 18080).startswith("web "), "through portmap, IPv4"
        assert tcp_get(client, NODE_V6, 18080).startswith("web "), "through portmap, IPv6"
        assert tcp_get(client, web6, 8080).startswith("web ")
        # the node talks to pods from its own address, never from the link-local gateway
        assert tcp_get(node.name, web4, 8080).endswith(NODE_V4)
    finally:
        server.kill()
        server.wait()

    # CHECK down the chain, each plugin with the final result
    for p in plugins:
        conf = {"cniVersion": "1.0.0", "name": "podnet-test", **p, "prevResult": result}
        check = plugin.exec("CHECK", conf, cid, f"/run/netns/{web}", plugin=str(p["type"]))
        if p["type"] == "portmap" and check.returncode != 0:
            msg = check.doc["msg"]
            assert msg.startswith("could not check ipv6 dnat: rule") and f"{web4}:8080" in msg, msg
            v4 = sh("ip", "netns", "exec", node.name, "iptables-save", "-t", "nat").stdout
            v6 = sh("ip", "netns", "exec", node.name, "ip6tables-save", "-t", "nat").stdout
            assert f"--to-destination {web4}:8080" in v4 and f"{web4}:8080" not in v6
            assert f"--to-destination [{web6}]:8080" in v6
            continue
        assert check.returncode == 0, (p["type"], check.doc)

    plugin.chain("DEL", plugins, "1.0.0", cid, f"/run/netns/{web}", result)
    assert podnet_veths(node.name) == [p for p in podnet_veths(node.name) if p != host_veth]
    assert not any(link["ifname"].startswith("bwp") for link in links(node.name))
    rules = sh("ip", "netns", "exec", node.name, "iptables-save").stdout
    assert "18080" not in rules
    assert list(agent.allocations()) == [f"c-{client}/eth0"]
    # a second DEL of the whole chain is fine too
    plugin.chain("DEL", plugins, "1.0.0", cid, f"/run/netns/{web}", result)
