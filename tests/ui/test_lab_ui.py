"""Load from a lab, add a template, see the what-if, apply to the lab: in Chromium, against a lab API server."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from podnet.kube.client import api_client
from podnet.kube.objects import ObjectClient
from podnet.ui.analysis import ManifestFile
from podnet.ui.lab import LabLink
from tests.e2e import labserver
from tests.ui.conftest import REPO, Shots


def test_load_from_lab_template_and_apply(page: Page, shots: Shots, lab_api: labserver.Server) -> None:
    files = [ManifestFile(p.name, p.read_text()) for p in sorted((REPO / "examples" / "shop").glob("*.yaml"))]
    LabLink(kubeconfig=str(lab_api.kubeconfig)).apply(files)  # the lab runs the shop
    page.reload()  # the page asks for the lab's status when it opens

    page.get_by_test_id("load-lab").click()
    expect(page.get_by_test_id("tab-lab-policies.yaml")).to_have_class("on")
    expect(page.get_by_test_id("policy-list").locator("li")).to_have_count(5)
    cell = page.get_by_test_id("cell-monitoring/prometheus|api/backend")
    expect(cell).to_have_text("TCP 9100")

    page.get_by_test_id("template-namespace").fill("monitoring")
    expect(page.get_by_test_id("template-select").locator("option")).to_have_count(5)
    page.get_by_test_id("template-select").select_option("default-deny")
    expect(page.get_by_test_id("tab-new-policies.yaml")).to_have_class("on")
    expect(page.get_by_test_id("yaml")).to_have_value(re.compile(r"name: default-deny\n  namespace: monitoring"))
    expect(cell).to_contain_text("none")
    expect(cell).to_have_attribute("data-changed", "yes")
    expect(page.get_by_test_id("policy-monitoring/default-deny")).to_be_visible()

    client = ObjectClient(api_client(str(lab_api.kubeconfig)))
    assert not [p for p in client.list("NetworkPolicy", "monitoring") if p["metadata"]["name"] == "default-deny"]
    page.get_by_test_id("apply-lab").click()
    expect(page.get_by_test_id("message")).to_contain_text("networkpolicy/default-deny created")
    expect(page.get_by_test_id("message")).to_contain_text("networkpolicy/frontend unchanged")
    created = client.get("NetworkPolicy", "default-deny", "monitoring")
    assert created["spec"]["policyTypes"] == ["Ingress", "Egress"]
    shots(page, "lab")
