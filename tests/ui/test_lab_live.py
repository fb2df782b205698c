"""A dropped flow appears on the service map after real traffic in a lab (root: real namespaces and eBPF)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from podnet.lab import manager
from tests.net.lab.helpers import podnet, wait_for
from tests.ui.conftest import Shots, UiServer

pytestmark = pytest.mark.root


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[manager.Lab]:
    """A 2-node lab running the shop, in a private lab root; always taken down."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (a real lab of network namespaces); run `make test` as root")
    monkeypatch.setenv("PODNET_LAB_ROOT", str(tmp_path / "labs"))
    name = f"ui{secrets.token_hex(3)}"
    try:
        podnet("lab", "up", "--name", name, "--nodes", "2", "--pod-cidr", "10.246.0.0/16")
        podnet("apply", "-f", "examples/shop", "--name", name)

        def running() -> bool:
            items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", name).stdout)["items"]
            return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

        wait_for(running, "6 running pods", timeout=120)
        yield manager.load(name)
    finally:
        manager.down(name, say=lambda _m: None)


def test_dropped_flow_appears_live_and_opens_its_policy(
    lab: manager.Lab, browser: BrowserContext, shots: Shots
) -> None:
    server = UiServer("--lab", lab.name)
    page = browser.new_page()
    try:
        page.goto(server.url)
        page.get_by_test_id("nav-flows").click()
        expect(page.get_by_test_id("map-state")).to_have_text("live", timeout=30_000)
        edge = page.get_by_test_id("mapedge-web/frontend->data/postgres:TCP/5432")
        expect(edge).to_have_count(0)

        out = podnet("lab", "probe", "--name", lab.name, "--from", "web/frontend-0", "--to", "data/postgres-0",
                     "--port", "5432", "-o", "json", "--timeout", "1", check=False)  # fmt: skip
        assert json.loads(out.stdout)["reachable"] is False

        expect(edge).to_have_attribute("data-verdict", "DROPPED", timeout=30_000)
        edge.locator("text").click()
        info = page.get_by_test_id("edge-info")
        expect(info).to_contain_text("web/frontend → data/postgres TCP/5432: DROPPED")
        expect(info).to_contain_text("default deny (egress isolated by web/frontend)")
        shots(page, "lab-flows")

        # the policy that dropped it opens in the editor, loaded from the lab
        info.get_by_test_id("edge-policy").first.click()
        expect(page.get_by_test_id("tab-lab-policies.yaml")).to_have_class("on", timeout=30_000)
        expect(page.get_by_test_id("policy-web/frontend")).to_have_class("on")
        expect(page.locator("section.center h2")).to_contain_text("NetworkPolicy web/frontend")
    finally:
        page.close()
        server.stop()
