"""The policy editor in real headless Chromium: load, draw, edit through the form, fix from an error, explain."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from playwright.sync_api import Locator, Page, expect

from tests.ui.conftest import REPO, Shots

SHOP = sorted((REPO / "examples" / "shop").glob("*.yaml"))
INVALID_PORTS = REPO / "examples" / "invalid" / "ports.yaml"


def contains(fragment: str) -> re.Pattern[str]:
    return re.compile(re.escape(fragment))


def open_files(page: Page, paths: list[Path]) -> None:
    page.get_by_test_id("open-files").set_input_files([str(p) for p in paths])


def cell(page: Page, src: str, dst: str) -> Locator:
    return page.get_by_test_id(f"cell-{src}|{dst}")


def yaml_text(page: Page) -> str:
    return page.get_by_test_id("yaml").input_value()


def test_load_shop_draws_policies_and_matrix(page: Page, shots: Shots) -> None:
    open_files(page, SHOP)
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    items = page.get_by_test_id("policy-list").locator("li")
    expect(items).to_have_count(5)
    page.get_by_test_id("policy-api/backend").click()
    graph = page.get_by_test_id("policy-graph")
    expect(graph.locator("[data-testid='subject']")).to_contain_text("pods app=backend in api")
    peer = graph.locator("[data-testid='peer-spec.ingress[0].from[0]']")
    expect(peer).to_contain_text("selects web/frontend (Deployment)")
    expect(graph.locator("[data-testid='peer-spec.egress[1].to[0]']")).to_contain_text("203.0.113.0/24")
    expect(graph.locator("[data-testid='edge-spec.egress[0].to[0]']")).to_contain_text("TCP/5432")
    # ingress peers on the left of the selected pods, egress peers on the right
    left = peer.bounding_box()
    mid = graph.locator("[data-testid='subject']").bounding_box()
    right = graph.locator("[data-testid='peer-spec.egress[0].to[0]']").bounding_box()
    assert left and mid and right and left["x"] < mid["x"] < right["x"]
    expect(cell(page, "web/frontend", "api/backend")).to_have_text("TCP 9000")
    expect(cell(page, "web/frontend", "data/postgres")).to_have_text("none")
    expect(page.get_by_test_id("tab-policies.yaml")).to_have_class("on")
    shots(page, "editor")


def test_edit_peer_and_ports_through_the_form(page: Page, shots: Shots) -> None:
    open_files(page, SHOP)
    expect(cell(page, "api/backend", "data/postgres")).to_have_text("TCP 5432")
    page.get_by_test_id("policy-data/postgres").click()
    page.locator("[data-testid='peer-spec.ingress[0].from[0]']").click()
    form = page.get_by_test_id("peer-form")
    expect(form.get_by_test_id("peer-kind-namespaces")).to_be_checked()
    form.get_by_test_id("peer-ns-labels").fill("kubernetes.io/metadata.name=monitoring")
    form.get_by_test_id("peer-pod-labels").fill("app=prometheus")
    # the YAML follows the form...
    expect(page.get_by_test_id("yaml")).to_have_value(contains("app: prometheus"))
    doc = next(d for d in yaml.safe_load_all(yaml_text(page)) if d and d["metadata"]["name"] == "postgres")
    assert doc["spec"]["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app": "prometheus"}},
        }
    ]
    # ...the other documents keep their exact text...
    original = (REPO / "examples/shop/policies.yaml").read_text()
    assert yaml_text(page).split("# data: only the backend")[0] == original.split("# data: only the backend")[0]
    # ...and the matrix is recomputed, the changed cells marked
    expect(cell(page, "monitoring/prometheus", "data/postgres")).to_contain_text("TCP 5432")
    expect(cell(page, "monitoring/prometheus", "data/postgres")).to_have_attribute("data-changed", "yes")
    expect(cell(page, "api/backend", "data/postgres")).to_contain_text("none")
    expect(cell(page, "api/backend", "data/postgres")).to_have_attribute("data-changed", "yes")
    expect(cell(page, "web/frontend", "api/backend")).to_have_attribute("data-changed", "no")
    expect(page.locator("[data-testid='peer-spec.ingress[0].from[0]']")).to_contain_text(
        "selects monitoring/prometheus (Deployment)"
    )

    # the rule's ports: a range through the edge's form
    page.locator("[data-testid='edge-spec.ingress[0].from[0]']").click()
    rule = page.get_by_test_id("rule-form")
    expect(rule.get_by_test_id("port-0")).to_have_value("pg")
    rule.get_by_test_id("port-0").fill("5400")
    rule.get_by_test_id("endport-0").fill("5499")
    expect(page.get_by_test_id("yaml")).to_have_value(contains("endPort: 5499"))
    expect(cell(page, "monitoring/prometheus", "data/postgres")).to_contain_text("TCP 5400-5499")
    shots(page, "edit")

    # editing the YAML redraws the graph
    text = yaml_text(page).replace("app: prometheus", "app: nothing-has-this")
    page.get_by_test_id("yaml").fill(text)
    expect(page.locator("[data-testid='peer-spec.ingress[0].from[0]']")).to_contain_text("selects no pod")
    expect(cell(page, "monitoring/prometheus", "data/postgres")).to_contain_text("none")

    with page.expect_download() as download:
        page.get_by_test_id("download").click()
    saved = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == "policies.yaml"
    assert saved == yaml_text(page)


SELECTED = """want => {
  const t = document.querySelector("[data-testid=yaml]");
  return t.value.slice(t.selectionStart, t.selectionEnd) === want;
}"""


def test_fix_invalid_policy_from_its_errors(page: Page, shots: Shots) -> None:
    open_files(page, SHOP)
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    page.get_by_test_id("paste").click()
    page.get_by_test_id("paste-text").fill(INVALID_PORTS.read_text())
    page.get_by_test_id("paste-add").click()
    expect(page.get_by_test_id("validity")).to_have_text("4 errors")
    errors = page.get_by_test_id("error")
    expect(errors.first).to_contain_text("spec.ingress[0].ports[0].endPort")
    expect(errors.first).to_contain_text("must be >= port (8080)")
    expect(errors.first).to_contain_text("pasted.yaml doc 0 · NetworkPolicy web/web-ports")
    expect(page.get_by_test_id("matrix")).to_contain_text("this is the last valid matrix")
    expect(page.get_by_test_id("broken-web/web-ports")).to_be_visible()
    shots(page, "errors")
    fixes = [
        ("endPort: 8000", "endPort: 8090"),
        ("endPort: 8090", ""),  # endPort with a named port: the fix is a numeric port
        ("protocol: ICMP", "protocol: UDP"),
        ("port: 70000", "port: 7000"),
    ]
    yaml_box = page.get_by_test_id("yaml")
    for count, (selected, replacement) in enumerate(fixes):
        errors.first.click()  # selects the field the error names, in the file it names
        expect(page.get_by_test_id("tab-pasted.yaml")).to_have_class("on")
        page.wait_for_function(SELECTED, arg=selected)
        if count == 1:  # ports[1] is {port: http, endPort: 8090}: make the port numeric instead
            page.keyboard.press("ArrowRight")
            text = yaml_text(page).replace("port: http, endPort: 8090", "port: 8085, endPort: 8090")
            yaml_box.fill(text)
        else:
            page.keyboard.type(replacement)
        remaining = len(fixes) - count - 1
        word = "valid" if remaining == 0 else "1 error" if remaining == 1 else f"{remaining} errors"
        expect(page.get_by_test_id("validity")).to_have_text(word)
    expect(page.get_by_test_id("policy-web/web-ports")).to_be_visible()
    expect(cell(page, "monitoring/prometheus", "web/frontend")).to_be_visible()
    shots(page, "fixed")


def test_explain_a_cell(page: Page, shots: Shots) -> None:
    open_files(page, SHOP)
    cell(page, "web/frontend", "data/postgres").click()
    verdict = page.get_by_test_id("explain-verdict")
    expect(verdict).to_have_text("DENIED: web/frontend → data/postgres TCP/5432")
    explain = page.get_by_test_id("explain")
    expect(explain).to_contain_text("NetworkPolicy web/frontend egress[0] [allow]: no match: peer")
    expect(explain).to_contain_text("verdict: DENIED")
    cell(page, "web/frontend", "api/backend").click()
    expect(verdict).to_have_text("ALLOWED: web/frontend → api/backend TCP/9000")
    page.get_by_test_id("explain-port").fill("9100")
    page.get_by_test_id("explain-go").click()
    expect(verdict).to_have_text("DENIED: web/frontend → api/backend TCP/9100")
    page.get_by_test_id("explain-port").fill("70000")
    page.get_by_test_id("explain-go").click()
    expect(page.get_by_test_id("explain-error")).to_contain_text("port 70000: must be between 1 and 65535")
    page.get_by_test_id("explain-port").fill("9000")
    page.get_by_test_id("explain-go").click()
    expect(verdict).to_have_text("ALLOWED: web/frontend → api/backend TCP/9000")
    explain.locator("summary").click()
    shots(page, "explain")
    # a rule named in the explanation opens in the editor, its edge selected and its form open
    explain.get_by_test_id("explain-rule").filter(has_text="NetworkPolicy web/frontend egress[0]").click()
    expect(page.get_by_test_id("policy-web/frontend")).to_have_class("on")
    expect(page.get_by_test_id("rule-form")).to_contain_text("Ports of rule spec.egress[0]")
    expect(page.get_by_test_id("port-0")).to_have_value("http")
    page.wait_for_function(
        """() => {
          const t = document.querySelector("[data-testid=yaml]");
          const chosen = t.value.slice(t.selectionStart, t.selectionEnd);
          return chosen.startsWith("to:") && chosen.includes("matchLabels: {app: backend}");
        }"""
    )
