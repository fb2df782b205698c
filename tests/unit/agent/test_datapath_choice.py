"""`podnet agent --datapath` picks the policy datapath where the agent builds it (no kernel touched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.agent.nftpath import NftPolicyDatapath, nflog_group, table_name
from podnet.agent.server import AgentConfig, make_policy_datapath
from podnet.cli.main import build_parser
from podnet.errors import UsageError


def config(datapath: str, **kw: object) -> AgentConfig:
    return AgentConfig("node-7", ["10.0.0.0/24"], Path("/x.sock"), Path("/x"), datapath=datapath, **kw)  # type: ignore[arg-type]


def test_nft_gets_the_nodes_own_table_and_group() -> None:
    dp = make_policy_datapath(config("nft"))
    assert isinstance(dp, NftPolicyDatapath)
    assert (dp.dp.table, dp.dp.log_group) == ("podnet_node_7", nflog_group("node-7"))
    assert table_name("node-7") == "podnet_node_7"
    chosen = make_policy_datapath(config("nft", nflog_group=42))
    assert isinstance(chosen, NftPolicyDatapath) and chosen.dp.log_group == 42
    quiet = make_policy_datapath(config("nft", flows_buffer=0))
    assert isinstance(quiet, NftPolicyDatapath) and quiet.dp.log_group is None  # no flows kept: nothing logged


def test_an_unknown_datapath_is_refused_by_name() -> None:
    with pytest.raises(UsageError, match="--datapath"):
        make_policy_datapath(config("iptables"))


def test_the_cli_takes_nft_and_the_lab_passes_it_on() -> None:
    parser = build_parser()
    args = parser.parse_args(["agent", "--node-name", "n", "--pod-cidr", "10.0.0.0/24", "--datapath", "nft"])
    assert (args.datapath, args.nflog_group) == ("nft", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["agent", "--node-name", "n", "--datapath", "iptables"])
    up = parser.parse_args(["lab", "up", "--datapath", "nft"])
    assert up.datapath == "nft"
    assert parser.parse_args(["lab", "up"]).datapath == "ebpf"


def test_uplinks_are_found_unless_named_and_none_means_none() -> None:
    from podnet.cli.agent import uplink_devices

    parser = build_parser()
    base = ["agent", "--node-name", "n", "--pod-cidr", "10.0.0.0/24"]
    assert uplink_devices(parser.parse_args(base).uplink) is None  # found at start
    named = parser.parse_args([*base, "--uplink", "eth0", "--uplink", "vxlan0"]).uplink
    assert uplink_devices(named) == ("eth0", "vxlan0")
    assert uplink_devices(parser.parse_args([*base, "--uplink", "none"]).uplink) == ()
    with pytest.raises(UsageError, match="--uplink none"):
        uplink_devices(["none", "eth0"])
