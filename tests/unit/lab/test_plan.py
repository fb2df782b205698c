from __future__ import annotations

import ipaddress

import pytest

from podnet.errors import UsageError
from podnet.lab.plan import make_plan


def test_nodes_get_disjoint_pod_cidrs_inside_the_cluster_cidr_and_prefixed_names() -> None:
    plan = make_plan("demo", 3, "10.244.0.0/16", "direct")
    cidrs = [n.pod_cidr for n in plan.nodes]
    assert cidrs == [ipaddress.ip_network(c) for c in ("10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24")]
    assert [n.netns for n in plan.nodes] == ["pnl-demo-n0", "pnl-demo-n1", "pnl-demo-n2"]
    assert plan.fabric_netns == "pnl-demo-fabric"
    assert len({n.underlay_ip for n in plan.nodes}) == 3
    assert plan.pod_netns("shop", "web").startswith("pnl-demo-p")
    assert plan.pod_netns("shop", "web") != plan.pod_netns("shop", "web2")


def test_small_cluster_cidrs_are_split_further() -> None:
    plan = make_plan("x", 4, "10.1.0.0/24", "vxlan")
    assert [str(n.pod_cidr) for n in plan.nodes] == ["10.1.0.0/26", "10.1.0.64/26", "10.1.0.128/26", "10.1.0.192/26"]


@pytest.mark.parametrize(
    ("name", "nodes", "cidr", "message"),
    [
        ("Bad_Name", 2, "10.0.0.0/16", "lab name"),
        ("ok", 0, "10.0.0.0/16", "1 to 16 nodes"),
        ("ok", 2, "10.0.0.0/33", "not a CIDR"),
        ("ok", 2, "fd00::/64", "IPv4"),
        ("ok", 16, "10.0.0.0/28", "too small"),
    ],
)
def test_bad_plans_are_refused_with_the_reason(name: str, nodes: int, cidr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_plan(name, nodes, cidr, "direct")
