"""The small behaviours of the model objects."""

from __future__ import annotations

import ipaddress

from podnet.k8s.model import AdminPeer, ContainerPort, IPBlock, Peer, Pod, PortSpec
from podnet.k8s.selectors import EVERYTHING, LabelSelector

net = ipaddress.ip_network
addr = ipaddress.ip_address


def test_ip_block_contains_its_cidr_minus_its_excepts_and_nothing_of_the_other_family() -> None:
    block = IPBlock(net("10.0.0.0/8"), (net("10.1.0.0/16"),))
    assert block.contains(addr("10.0.0.1"))
    assert not block.contains(addr("10.1.2.3"))
    assert not block.contains(addr("11.0.0.1"))
    assert not block.contains(addr("::ffff:10.0.0.1"))
    assert IPBlock(net("::/0")).contains(addr("fd00::1")) and not IPBlock(net("::/0")).contains(addr("10.0.0.1"))
    assert block.describe() == "10.0.0.0/8 except 10.1.0.0/16"
    assert IPBlock(net("0.0.0.0/0")).describe() == "0.0.0.0/0"


def test_port_spec_describe() -> None:
    assert PortSpec("TCP", 80).describe() == "TCP/80"
    assert PortSpec("UDP", 1000, 2000).describe() == "UDP/1000-2000"
    assert PortSpec("TCP", 80, 80).describe() == "TCP/80"
    assert PortSpec("SCTP").describe() == "SCTP/*"
    assert PortSpec(None, name="http").describe() == "any/http"
    assert PortSpec("TCP", name="http").describe() == "TCP/http"


def test_named_ports_resolve_by_name_and_protocol() -> None:
    pod = Pod(
        "ns",
        "p",
        {},
        (ContainerPort(53, "UDP", "dns"), ContainerPort(53, "TCP", "dns"), ContainerPort(80, "TCP", "http")),
    )
    assert pod.ref == "ns/p"
    assert pod.named_port("dns", None) == [("UDP", 53), ("TCP", 53)]
    assert pod.named_port("dns", "UDP") == [("UDP", 53)]
    assert pod.named_port("http", "SCTP") == []
    assert pod.named_port("nope", None) == []


def test_peer_describe() -> None:
    app = LabelSelector(frozenset({("app", "web")}))
    assert Peer(pod_selector=app).describe() == "podSelector app=web"
    assert Peer(app, EVERYTHING).describe() == "namespaceSelector {} (everything) and podSelector app=web"
    assert Peer(ip_block=IPBlock(net("10.0.0.0/8"))).describe() == "ipBlock 10.0.0.0/8"
    assert AdminPeer(EVERYTHING).describe() == "namespaces {} (everything)"
    assert AdminPeer(EVERYTHING, app).describe() == "pods app=web in namespaces {} (everything)"
    assert AdminPeer(networks=(net("10.0.0.0/8"), net("fd00::/8"))).describe() == "networks 10.0.0.0/8, fd00::/8"
