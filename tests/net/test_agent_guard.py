"""One agent per state dir and per socket, with real agent processes in a real node namespace.

A second agent must refuse to start, say why, and leave the first one's pods, socket and state
alone; a SIGKILLed agent's leftovers (socket file, lock files) must not block its restart.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.net.helpers import ROOT, Agent, Node, Plugin, podnet_veths


def run_agent(node: Node, socket_path: Path, state_dir: Path) -> subprocess.CompletedProcess[str]:
    """Start an agent that is expected to refuse; return how it ended (it must end by itself)."""
    cmd = ["ip", "netns", "exec", node.name, sys.executable, "-m", "podnet.cli.main", "agent"]
    cmd += ["--node-name", node.name, "--socket", str(socket_path), "--state-dir", str(state_dir)]
    cmd += ["--pod-cidr", "10.78.0.0/24"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)


def wired_pod(plugin: Plugin, make_pod: Callable[[str], str]) -> tuple[str, str]:
    pod = make_pod("p")
    add = plugin.exec("ADD", plugin.conf(), f"c-{pod}", f"/run/netns/{pod}")
    assert add.returncode == 0, add.doc
    return pod, add.doc["interfaces"][0]["name"]


def assert_first_agent_untouched(agent: Agent, node: Node, host_veth: str) -> None:
    assert agent.proc is not None and agent.proc.poll() is None, "the first agent must keep running"
    assert agent.socket.is_socket()
    assert [e["host_veth"] for e in agent.get("/v1/endpoints")] == [host_veth]
    assert podnet_veths(node.name) == [host_veth]


def test_second_agent_on_the_same_state_dir_refuses(
    agent: Agent, plugin: Plugin, node: Node, make_pod: Callable[[str], str]
) -> None:
    _, host_veth = wired_pod(plugin, make_pod)
    second = run_agent(node, node.dir / "other.sock", agent.state_dir)
    assert second.returncode == 2, second.stderr
    assert agent.proc is not None
    assert f"another podnet agent (pid {agent.proc.pid}) holds state dir {agent.state_dir}" in second.stderr
    assert not (node.dir / "other.sock").exists()
    assert_first_agent_untouched(agent, node, host_veth)


def test_second_agent_on_the_same_socket_refuses_before_touching_anything(
    agent: Agent, plugin: Plugin, node: Node, make_pod: Callable[[str], str]
) -> None:
    # its own (empty) state dir: were it to reconcile, it would remove the first agent's veth
    _, host_veth = wired_pod(plugin, make_pod)
    second = run_agent(node, agent.socket, node.dir / "other-state")
    assert second.returncode == 2, second.stderr
    assert agent.proc is not None
    assert f"another podnet agent (pid {agent.proc.pid}) holds socket {agent.socket}" in second.stderr
    assert not (node.dir / "other-state" / "ipam.json").exists()
    assert_first_agent_untouched(agent, node, host_veth)


def test_live_socket_of_another_process_or_a_plain_file_is_never_removed(node: Node) -> None:
    path = node.dir / "taken.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(4)
    try:
        refused = run_agent(node, path, node.dir / "s1")
        assert refused.returncode == 2
        assert f"a process already answers on --socket {path}; podnet will not remove it" in refused.stderr
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # still the listener's socket
    finally:
        listener.close()
    plain = node.dir / "plain.sock"
    plain.write_text("not a socket\n")
    refused = run_agent(node, plain, node.dir / "s2")
    assert refused.returncode == 2
    assert f"--socket {plain} exists and is not a socket; podnet will not remove it" in refused.stderr
    assert plain.read_text() == "not a socket\n"


def test_sigkilled_agent_leftovers_do_not_block_a_restart(
    agent: Agent, plugin: Plugin, node: Node, make_pod: Callable[[str], str]
) -> None:
    pod, host_veth = wired_pod(plugin, make_pod)
    before = agent.get("/v1/endpoints")
    agent.kill()
    assert agent.socket.is_socket(), "a killed agent leaves its socket file behind"
    assert (agent.state_dir / "agent.lock").exists()
    assert Path(str(agent.socket) + ".lock").exists()
    agent.start()
    assert agent.get("/v1/endpoints") == before
    assert podnet_veths(node.name) == [host_veth]
    # and the restarted agent serves CNI calls
    assert plugin.exec("DEL", plugin.conf(), f"c-{pod}", f"/run/netns/{pod}").returncode == 0
    assert podnet_veths(node.name) == [] and agent.get("/v1/endpoints") == []
    # a clean stop removes the socket it bound
    agent.stop()
    assert not agent.socket.exists()
