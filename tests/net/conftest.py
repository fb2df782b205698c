"""Privileged fixtures: a node namespace running a real agent, pod namespaces, the installed plugin.

These tests need root and a kernel with netns and veth. They FAIL (never skip) without root, so a
CI run that lost its privileges cannot pass by doing nothing. Every name carries a random suffix and
only what a test created is removed, so two runs can share the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.helpers import Agent, Node, Plugin, netns_add, netns_del, new_suffix


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/net/" in str(item.fspath):
            item.add_marker(pytest.mark.root)


@pytest.fixture(autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("tests/net needs root (real network namespaces, veths and routes); run `make test` as root")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node.create(new_suffix(), tmp_path)
    try:
        yield n
    finally:
        n.destroy()


@pytest.fixture
def agent(node: Node) -> Iterator[Agent]:
    a = Agent(node, ["10.77.0.0/24", "fd77::/120"])
    a.start()
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture
def plugin(node: Node, agent: Agent) -> Plugin:
    return Plugin.install(node.dir / "cni", agent.socket, node.name)


@pytest.fixture
def pods(node: Node) -> Iterator[list[str]]:
    """Factory list: append-only names of pod namespaces created through :func:`make_pod`."""
    created: list[str] = []
    yield created
    for name in created:
        netns_del(name)


@pytest.fixture
def make_pod(node: Node, pods: list[str]) -> object:
    def make(label: str) -> str:
        name = f"{node.name}-{label}"
        netns_add(name)
        pods.append(name)
        return name

    return make
