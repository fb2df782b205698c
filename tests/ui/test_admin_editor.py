"""Editing AdminNetworkPolicy and BaselineAdminNetworkPolicy through the forms, in real headless Chromium."""

from __future__ import annotations

import re
import time
from typing import Any

import yaml
from playwright.sync_api import Page, expect

from tests.ui.conftest import REPO, Shots
from tests.ui.test_editor import SHOP, cell, contains, open_files, yaml_text

BANP_COMMENT = "# In the teams' namespaces"


def now(text: str) -> re.Pattern[str]:
    """A cell's text: its connections, then what they were when they changed."""
    return re.compile(rf"^{re.escape(text)}(was .*)?$")


def policy_doc(page: Page, kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = next(d for d in yaml.safe_load_all(yaml_text(page)) if d and d["kind"] == kind)
    return doc


def spec_field_once_rendered(page: Page, kind: str, field: str, want: object, timeout: float = 5.0) -> object:
    """``spec[field]`` of the ``kind`` document in the YAML pane, read again until it equals ``want`` or
    ``timeout`` passes (a form's edit reaches the pane on a later render; nothing else waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        got = policy_doc(page, kind)["spec"].get(field)
        if got == want or time.monotonic() > deadline:
            return got
        page.wait_for_timeout(50)


def test_edit_admin_policy_subject_peer_and_port(page: Page, shots: Shots) -> None:
    open_files(page, SHOP)
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    expect(cell(page, "web/frontend", "kube-system/coredns")).to_have_text("TCP 53,UDP 53")
    expect(cell(page, "monitoring/prometheus", "api/backend")).to_have_text("TCP 9100")
    expect(cell(page, "data/postgres", "api/backend")).to_have_text("none")
    page.get_by_test_id("policy-platform-guardrails").click()
    graph = page.get_by_test_id("policy-graph")

    # the subject: from every pod of the storefront namespaces to the backend's pods only
    graph.get_by_test_id("subject").click()
    subject = page.get_by_test_id("subject-form")
    expect(subject.get_by_test_id("subject-kind-namespaces")).to_be_checked()
    expect(subject.get_by_test_id("subject-ns-labels")).to_have_value("team=storefront")
    expect(subject.get_by_test_id("priority")).to_have_value("10")
    subject.get_by_test_id("subject-kind-pods").check()
    subject.get_by_test_id("subject-pod-labels").fill("app=backend")
    expect(page.get_by_test_id("yaml")).to_have_value(contains("app: backend\n  ingress:"))
    assert policy_doc(page, "AdminNetworkPolicy")["spec"]["subject"] == {
        "pods": {
            "namespaceSelector": {"matchLabels": {"team": "storefront"}},
            "podSelector": {"matchLabels": {"app": "backend"}},
        }
    }
    expect(graph.get_by_test_id("subject")).to_contain_text("api/backend")
    # the frontend lost the ANP's DNS egress: its own NetworkPolicy allows only the backend
    expect(cell(page, "web/frontend", "kube-system/coredns")).to_have_text(now("none"))
    expect(cell(page, "web/frontend", "kube-system/coredns")).to_have_attribute("data-changed", "yes")
    expect(cell(page, "api/backend", "kube-system/coredns")).to_have_attribute("data-changed", "no")
    subject.get_by_test_id("priority").fill("20")
    expect(page.get_by_test_id("policy-graph").locator("xpath=..").locator("h2")).to_contain_text("(priority 20)")

    # a peer: the metrics scrapes come from the data namespace instead of monitoring
    graph.get_by_test_id("peer-spec.ingress[0].from[0]").click()
    peer = page.get_by_test_id("peer-form")
    expect(peer.get_by_test_id("peer-kind-namespaces")).to_be_checked()
    expect(peer.get_by_test_id("peer-kind-networks")).to_have_count(0)  # networks are egress peers only
    peer.get_by_test_id("peer-ns-labels").fill("kubernetes.io/metadata.name=data")
    ingress = policy_doc(page, "AdminNetworkPolicy")["spec"]["ingress"][0]
    assert ingress["from"] == [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "data"}}}]
    expect(cell(page, "data/postgres", "api/backend")).to_have_text(now("TCP 9100"))
    expect(cell(page, "data/postgres", "api/backend")).to_have_attribute("data-changed", "yes")
    expect(cell(page, "monitoring/prometheus", "api/backend")).to_have_text(now("none"))
    expect(graph.get_by_test_id("peer-spec.ingress[0].from[0]")).to_contain_text("selects data/postgres")

    # the rule's port: the named port becomes a range, the action stays Allow
    graph.get_by_test_id("edge-spec.ingress[0].from[0]").click()
    rule = page.get_by_test_id("rule-form")
    expect(rule.get_by_test_id("rule-name")).to_have_value("monitoring-scrapes-metrics")
    expect(rule.get_by_test_id("rule-action")).to_have_value("Allow")
    expect(rule.get_by_test_id("rule-action").locator("option")).to_have_text(["Allow", "Deny", "Pass"])
    expect(rule.get_by_test_id("port-type-0")).to_have_value("namedPort")
    expect(rule.get_by_test_id("port-0")).to_have_value("metrics")
    rule.get_by_test_id("port-type-0").select_option("portRange")
    rule.get_by_test_id("port-protocol-0").select_option("TCP")
    rule.get_by_test_id("port-0").fill("9000")
    rule.get_by_test_id("endport-0").fill("9100")
    expect(page.get_by_test_id("yaml")).to_have_value(contains("end: 9100"))
    expect(page.get_by_test_id("validity")).to_have_text(re.compile("^valid"))
    expect(cell(page, "data/postgres", "api/backend")).to_have_text(now("TCP 9000-9100"))
    expect(graph.get_by_test_id("edge-spec.ingress[0].from[0]")).to_contain_text("TCP/9000-9100")
    shots(page, "edit-admin")

    # the action: Deny from data; the backend's own policy then has the last word for nobody
    rule.get_by_test_id("rule-action").select_option("Deny")
    expect(cell(page, "data/postgres", "api/backend")).to_have_text(now("none"))
    spec = policy_doc(page, "AdminNetworkPolicy")["spec"]
    assert spec["priority"] == 20
    assert spec["ingress"][0] == {
        "name": "monitoring-scrapes-metrics",
        "action": "Deny",
        "from": [{"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "data"}}}],
        "ports": [{"portRange": {"protocol": "TCP", "start": 9000, "end": 9100}}],
    }
    # only the edited document was rewritten: the others keep their exact text, comments included
    original = (REPO / "examples/shop/policies.yaml").read_text()
    assert yaml_text(page).split(BANP_COMMENT)[1] == original.split(BANP_COMMENT)[1]


def test_admin_rules_and_peers_added_and_deleted(page: Page) -> None:
    open_files(page, SHOP)
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    expect(cell(page, "api/backend", "203.0.113.128/25")).to_have_text("none")
    page.get_by_test_id("policy-platform-guardrails").click()
    graph = page.get_by_test_id("policy-graph")
    graph.get_by_test_id("subject").click()

    # a new egress rule, its peer made a network: the backend may reach the excepted half of the CIDR
    page.get_by_test_id("subject-form").get_by_test_id("add-egress-rule").click()
    expect(page.get_by_test_id("rule-form")).to_contain_text("spec.egress[1]")
    expect(graph.get_by_test_id("edge-spec.egress[1].to[0]")).to_contain_text("TCP/80")
    page.get_by_test_id("rule-form").get_by_test_id("port-0").fill("443")
    graph.get_by_test_id("peer-spec.egress[1].to[0]").click()
    peer = page.get_by_test_id("peer-form")
    peer.get_by_test_id("peer-kind-networks").check()
    peer.get_by_test_id("peer-networks").fill("203.0.113.128/25")
    expect(graph.get_by_test_id("peer-spec.egress[1].to[0]")).to_contain_text("networks 203.0.113.128/25")
    expect(cell(page, "api/backend", "203.0.113.128/25")).to_have_text(now("TCP 443"))
    egress = policy_doc(page, "AdminNetworkPolicy")["spec"]["egress"][1]
    assert egress == {
        "name": "egress-rule-1",
        "action": "Allow",
        "to": [{"networks": ["203.0.113.128/25"]}],
        "ports": [{"portNumber": {"protocol": "TCP", "port": 443}}],
    }

    # nodes are offered for egress and written as a selector; they select nothing offline
    peer.get_by_test_id("add-peer").click()
    peer = page.get_by_test_id("peer-form")
    expect(peer).to_contain_text("spec.egress[1].to[1]")
    peer.get_by_test_id("peer-kind-nodes").check()
    peer.get_by_test_id("peer-node-labels").fill("node-role.kubernetes.io/control-plane=")
    expect(graph.get_by_test_id("peer-spec.egress[1].to[1]")).to_contain_text("nodes")
    assert policy_doc(page, "AdminNetworkPolicy")["spec"]["egress"][1]["to"][1] == {
        "nodes": {"matchLabels": {"node-role.kubernetes.io/control-plane": ""}}
    }
    # deleting the last peer of a rule deletes the rule (a rule needs a peer)
    peer.get_by_test_id("delete-peer").click()
    graph.get_by_test_id("peer-spec.egress[1].to[0]").click()
    page.get_by_test_id("peer-form").get_by_test_id("delete-peer").click()
    expect(graph.get_by_test_id("peer-spec.egress[1].to[0]")).to_have_count(0)
    expect(cell(page, "api/backend", "203.0.113.128/25")).to_have_text(now("none"))
    assert len(policy_doc(page, "AdminNetworkPolicy")["spec"]["egress"]) == 1

    # the baseline: no Pass; its subject's matchExpressions are kept when labels are added
    page.get_by_test_id("policy-default").click()
    graph.get_by_test_id("edge-spec.ingress[0].from[0]").click()
    action = page.get_by_test_id("rule-form").get_by_test_id("rule-action")
    expect(action.locator("option")).to_have_text(["Allow", "Deny"])
    graph.get_by_test_id("subject").click()
    subject = page.get_by_test_id("subject-form")
    expect(subject).to_contain_text("also matchExpressions (1)")
    expect(subject.get_by_test_id("priority")).to_have_count(0)
    subject.get_by_test_id("subject-ns-labels").fill("team=platform")
    want = {
        "namespaces": {"matchExpressions": [{"key": "team", "operator": "Exists"}], "matchLabels": {"team": "platform"}}
    }
    assert spec_field_once_rendered(page, "BaselineAdminNetworkPolicy", "subject", want) == want
    expect(page.get_by_test_id("validity")).to_have_text(re.compile("^valid"))
