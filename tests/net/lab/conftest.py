"""Lab tests need root: they make real namespaces, links and routes. Without root they fail, loudly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.lab import manager
from tests.net.lab.helpers import podnet


@pytest.fixture(autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (real network namespaces); run `make test` as root")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[manager.Lab]:
    """A 2-node lab brought up with the CLI, in a private lab root; always taken down.

    Its agents' datapath is ``ebpf`` unless the test parametrizes the fixture
    (``@pytest.mark.parametrize("lab", ["ebpf", "nft"], indirect=True)``)."""
    monkeypatch.setenv("PODNET_LAB_ROOT", str(tmp_path / "labs"))
    name = f"t{secrets.token_hex(3)}"
    datapath = str(getattr(request, "param", "ebpf"))
    try:
        podnet("lab", "up", "--name", name, "--nodes", "2", "--pod-cidr", "10.246.0.0/16", "--datapath", datapath)
        yield manager.load(name)
    finally:
        manager.down(name, say=lambda _m: None)
