"""The flows views in real headless Chromium: the live service map, the flow table, policy links, suggest.

Flows come from a JSON-lines file recorded from a lab (examples/flows/shop.jsonl); a flow appended to the
file reaches the open page through the server-sent event stream.
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.ui.conftest import REPO, Shots

SHOP = sorted((REPO / "examples" / "shop").glob("*.yaml"))


def _dropped_flow(flows_file: Path, port: int) -> str:
    """A copy of the recorded frontend → postgres drop, to another port and a later time."""
    for line in flows_file.read_text().splitlines():
        doc = json.loads(line)
        flow = doc["flow"]
        if flow["verdict"] == "DROPPED" and flow["destination"]["namespace"] == "data":
            flow["l4"]["TCP"]["destination_port"] = port
            flow["time"] = "2026-11-26T07:50:00.000000000Z"
            return json.dumps(doc)
    raise AssertionError("no recorded drop to data/postgres")


def test_service_map_updates_live_and_links_to_policies(page: Page, shots: Shots, flows_file: Path) -> None:
    page.get_by_test_id("open-files").set_input_files([str(p) for p in SHOP])
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    page.get_by_test_id("nav-flows").click()
    expect(page.get_by_test_id("map-state")).to_have_text("live")
    smap = page.get_by_test_id("service-map")
    for node in ("web/frontend", "api/backend", "data/postgres", "kube-system/coredns", "monitoring/prometheus"):
        expect(smap.get_by_test_id(f"mapnode-{node}")).to_be_visible()
    expect(smap.get_by_test_id("mapedge-api/backend->data/postgres:TCP/5432")).to_have_attribute(
        "data-verdict", "FORWARDED"
    )
    expect(smap.get_by_test_id("mapedge-web/frontend->data/postgres:TCP/5432")).to_have_attribute(
        "data-verdict", "DROPPED"
    )
    expect(smap.get_by_test_id("mapedge-data/postgres->api/backend:TCP/9000")).to_have_attribute(
        "data-verdict", "MIXED"
    )
    rows = page.get_by_test_id("flow-row")
    expect(rows).to_have_count(15)

    # a new drop arrives: the map shows its edge without a reload
    new_edge = smap.get_by_test_id("mapedge-web/frontend->data/postgres:TCP/5433")
    expect(new_edge).to_have_count(0)
    with flows_file.open("a") as f:
        f.write(_dropped_flow(flows_file, 5433) + "\n")
    expect(new_edge).to_have_attribute("data-verdict", "DROPPED", timeout=15_000)
    expect(rows).to_have_count(16)  # the table follows new flows too
    expect(rows.last).to_contain_text("TCP/5433")
    new_edge.locator("text").click()  # its label
    info = page.get_by_test_id("edge-info")
    expect(info).to_contain_text("web/frontend → data/postgres TCP/5433: DROPPED (1 dropped)")
    expect(info).to_contain_text("default deny (egress isolated by web/frontend)")
    shots(page, "flows")

    # the table with podnet observe's filters
    page.get_by_test_id("flow-filter").fill("verdict=DROPPED")
    page.get_by_test_id("flow-refresh").click()
    expect(rows).to_have_count(4)
    for i in range(4):
        expect(rows.nth(i)).to_have_attribute("data-verdict", "DROPPED")
    page.get_by_test_id("flow-filter").fill("verdict=DROPPED to-pod=api/backend-0 port=9090")
    page.get_by_test_id("flow-refresh").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("monitoring/prometheus-0")
    page.get_by_test_id("flow-filter").fill("verdict=NOPE")
    page.get_by_test_id("flow-refresh").click()
    expect(page.get_by_test_id("flow-error")).to_contain_text("NOPE")

    # a dropped flow opens the policy that dropped it in the editor
    page.get_by_test_id("flow-filter").fill("verdict=DROPPED to-pod=api/backend-0 port=9090")
    page.get_by_test_id("flow-refresh").click()
    rows.first.get_by_test_id("flow-policy").click()
    expect(page.get_by_test_id("policy-graph")).to_be_visible()
    expect(page.locator("section.center h2")).to_contain_text("NetworkPolicy api/backend")
    expect(page.get_by_test_id("policy-api/backend")).to_have_class("on")


def test_suggest_policy_from_selected_flows(page: Page, shots: Shots) -> None:
    page.get_by_test_id("nav-flows").click()
    page.get_by_test_id("flow-filter").fill("from-pod=web/frontend-0 to-pod=api/backend-0")
    page.get_by_test_id("flow-refresh").click()
    rows = page.get_by_test_id("flow-row")
    expect(rows).to_have_count(2)
    page.get_by_test_id("pick-0").check()
    page.get_by_test_id("pick-1").check()
    page.get_by_test_id("suggest").click()
    suggestion = page.get_by_test_id("suggestion")
    expect(suggestion).to_contain_text("kind: NetworkPolicy")
    text = page.get_by_test_id("suggestion-yaml").inner_text()
    assert "port: 9000" in text and "app: frontend" in text
    shots(page, "suggest")
    page.get_by_test_id("suggestion-open").click()
    expect(page.get_by_test_id("tab-suggested.yaml")).to_have_class("on")
    expect(page.get_by_test_id("yaml")).to_have_value(text if text.endswith("\n") else text + "\n")
    # only the policies are loaded here, no workloads: valid, with lint advice (they select no pod yet)
    expect(page.get_by_test_id("validity")).to_contain_text("valid, ")
    expect(page.get_by_test_id("lint").first).to_contain_text("selects-nothing")
    expect(page.get_by_test_id("policy-list").locator("li").first).to_be_visible()
