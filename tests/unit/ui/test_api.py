"""The UI's JSON API over the real analyzer, through FastAPI's TestClient (no browser, no lab)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from podnet.ui.app import create_app
from podnet.ui.lab import LabLink

REPO = Path(__file__).resolve().parents[3]
SHOP = REPO / "examples" / "shop"
INVALID = REPO / "examples" / "invalid"


def _files(*paths: Path) -> list[dict[str, str]]:
    return [{"name": p.name, "text": p.read_text()} for p in paths]


SHOP_FILES = _files(*sorted(SHOP.glob("*.yaml")))


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    # a kubeconfig that does not exist: the lab is unavailable, never the machine's real labs
    return TestClient(create_app(LabLink(kubeconfig=str(tmp_path / "none")), static_dir=tmp_path / "static"))


def _cli(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "podnet.cli.main", *args], capture_output=True, text=True, cwd=REPO, check=False
    )
    return out.stdout


def _cells(body: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(c["from"], c["to"]): c["connections"] for c in body["matrix"]["cells"]}


def test_analyze_shop_matrix_is_the_cli_matrix(client: TestClient) -> None:
    r = client.post("/api/analyze", json={"files": SHOP_FILES})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is True and body["errors"] == [] and body["lint"] == []
    import json

    cli = json.loads(_cli("policy", "matrix", "-f", str(SHOP), "-o", "json"))
    assert _cells(body) == {(c["from"], c["to"]): c["connections"] for c in cli}
    assert _cells(body)[("web/frontend", "api/backend")] == "TCP 9000"
    refs = [e["ref"] for e in body["matrix"]["endpoints"]]
    assert refs[:5] == ["api/backend", "data/postgres", "kube-system/coredns", "monitoring/prometheus", "web/frontend"]
    assert {e["kind"] for e in body["matrix"]["endpoints"]} == {"Deployment", "StatefulSet", "cidr", "world"}
    assert {w["ref"] for w in body["workloads"]} >= {"web/frontend", "api/backend"}
    assert next(n for n in body["namespaces"] if n["name"] == "web")["labels"]["team"] == "storefront"


def test_policy_graph_of_backend(client: TestClient) -> None:
    body = client.post("/api/analyze", json={"files": SHOP_FILES}).json()
    graphs = {g["ref"]: g for g in body["policies"]}
    assert list(graphs) == ["platform-guardrails", "default", "web/frontend", "api/backend", "data/postgres"]
    g = graphs["api/backend"]
    assert (g["file"], g["doc"]) == ("policies.yaml", 3)
    assert g["subject"]["selects"] == ["api/backend (Deployment)"]
    assert g["isolation"] == {"ingress": True, "egress": True}
    ingress = g["peers"]["ingress"]
    assert [(p["scope"], p["path"], p["selects"]) for p in ingress] == [
        ("cluster", "spec.ingress[0].from[0]", ["web/frontend (Deployment)"])
    ]
    egress = g["peers"]["egress"]
    assert [(p["scope"], p["label"]) for p in egress] == [
        ("cluster", "namespaces kubernetes.io/metadata.name=data"),
        ("cidr", "203.0.113.0/24 except 203.0.113.128/25"),
    ]
    assert [(e["direction"], e["path"], e["ports"]) for e in g["edges"]] == [
        ("ingress", "spec.ingress[0]", "TCP/http"),
        ("egress", "spec.egress[0]", "TCP/5432"),
        ("egress", "spec.egress[1]", "TCP/443"),
    ]
    frontend = graphs["web/frontend"]
    assert [(p["scope"], p["path"]) for p in frontend["peers"]["ingress"]] == [("any", "spec.ingress[0]")]
    anp = graphs["platform-guardrails"]
    assert anp["kind"] == "AdminNetworkPolicy" and anp["priority"] == 10
    assert [(e["action"], e["name"]) for e in anp["edges"]] == [
        ("Allow", "monitoring-scrapes-metrics"),
        ("Allow", "dns-is-always-allowed"),
    ]
    assert anp["subject"]["selects"] == ["api/backend (Deployment)", "web/frontend (Deployment)"]


def test_in_namespace_peer_scope(client: TestClient) -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: web}
spec:
  podSelector: {matchLabels: {app: frontend}}
  ingress:
    - from: [{podSelector: {matchLabels: {tier: web}}}]
"""
    body = client.post("/api/analyze", json={"files": [*SHOP_FILES, {"name": "p.yaml", "text": text}]}).json()
    g = next(g for g in body["policies"] if g["ref"] == "web/p")
    peer = g["peers"]["ingress"][0]
    assert (peer["scope"], peer["selects"]) == ("namespace", ["web/frontend (Deployment)"])
    assert g["edges"][0]["ports"] == "all ports"


def test_invalid_manifests_report_file_doc_and_field(client: TestClient) -> None:
    files = [*SHOP_FILES, *_files(INVALID / "ports.yaml", INVALID / "selectors.yaml")]
    body = client.post("/api/analyze", json={"files": files}).json()
    assert body["valid"] is False and body["matrix"] is None and body["lint"] is None
    assert len(body["errors"]) == 9
    first = body["errors"][0]
    assert first == {
        "text": "ports.yaml[doc 0]: NetworkPolicy web/web-ports: spec.ingress[0].ports[0].endPort: "
        "Invalid value: 8000: must be >= port (8080)",
        "file": "ports.yaml",
        "doc": 0,
        "items": [],
        "kind": "NetworkPolicy",
        "object": "web/web-ports",
        "path": "spec.ingress[0].ports[0].endPort",
        "message": "Invalid value: 8000: must be >= port (8080)",
        "line": None,
        "column": None,
    }
    last = body["errors"][-1]
    assert (last["file"], last["doc"], last["kind"], last["object"], last["path"]) == (
        "selectors.yaml",
        1,
        "AdminNetworkPolicy",
        "too-low",
        "spec.priority",
    )
    # the valid documents are still drawn
    assert [g["ref"] for g in body["policies"]] == [
        "platform-guardrails",
        "default",
        "web/frontend",
        "api/backend",
        "data/postgres",
    ]


def test_yaml_syntax_error_has_line_and_column(client: TestClient) -> None:
    body = client.post("/api/analyze", json={"files": [{"name": "x.yaml", "text": "a: [1,\nb: 2\n"}]}).json()
    (err,) = body["errors"]
    assert (err["file"], err["doc"], err["line"]) == ("x.yaml", 0, 3)
    assert err["message"].startswith("invalid YAML: line 3")


def test_lint_advice(client: TestClient) -> None:
    deny = yaml.safe_dump(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-egress", "namespace": "data"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
        }
    )
    body = client.post("/api/analyze", json={"files": [*SHOP_FILES, {"name": "d.yaml", "text": deny}]}).json()
    assert body["valid"] is True
    assert [(f["code"], f["policy"]) for f in body["lint"]] == [
        ("egress-without-dns", "NetworkPolicy data/deny-egress")
    ]
    assert "kube-dns" in body["lint"][0]["fix"]


def test_explain_cell_is_the_cli_explain(client: TestClient) -> None:
    r = client.post(
        "/api/explain", json={"files": SHOP_FILES, "from": "web/frontend", "to": "data/postgres", "port": 5432}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["verdict"] == "denied" and body["port"] == 5432
    cli = _cli(
        "policy", "explain", "-f", str(SHOP), "--from", "web/frontend", "--to", "data/postgres", "--port", "5432"
    )
    assert body["text"] == cli.rstrip("\n")
    assert [s["direction"] for s in body["sides"]] == ["egress", "ingress"]


def test_explain_picks_the_first_allowed_port(client: TestClient) -> None:
    body = client.post("/api/explain", json={"files": SHOP_FILES, "from": "web/frontend", "to": "api/backend"}).json()
    assert (body["protocol"], body["port"], body["verdict"]) == ("TCP", 9000, "allowed")
    body = client.post(
        "/api/explain", json={"files": SHOP_FILES, "from": "api/backend", "to": "web/frontend", "port": "http"}
    ).json()
    assert (body["port"], body["verdict"]) == (8080, "denied")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"from": "web/nothing", "to": "api/backend"}, "'web/nothing': no Pod or workload web/nothing"),
        ({"from": "web/frontend", "to": "api/backend", "protocol": "ICMP"}, "protocol 'ICMP': must be TCP, UDP"),
        ({"from": "web/frontend", "to": "api/backend", "port": 70000}, "port 70000: must be between 1 and 65535"),
        ({"from": "web/frontend", "to": "api/backend", "port": "nope"}, "named port 'nope'"),
    ],
)
def test_explain_bad_input_names_the_field(client: TestClient, extra: dict[str, Any], message: str) -> None:
    r = client.post("/api/explain", json={"files": SHOP_FILES, **extra})
    assert r.status_code == 400
    assert r.json()["error"].startswith(message)


def test_explain_of_invalid_manifests_lists_problems(client: TestClient) -> None:
    files = _files(INVALID / "ports.yaml")
    r = client.post("/api/explain", json={"files": files, "from": "web/a", "to": "web/b"})
    assert r.status_code == 400
    assert len(r.json()["problems"]) == 4
    assert r.json()["problems"][0]["path"] == "spec.ingress[0].ports[0].endPort"


def test_templates_are_valid_and_do_what_they_say(client: TestClient) -> None:
    r = client.get("/api/templates", params={"namespace": "monitoring", "ingress_namespace": "data"})
    assert r.status_code == 200
    found = {t["id"]: t for t in r.json()}
    assert list(found) == ["default-deny", "allow-same-namespace", "allow-dns-egress", "allow-from-ingress-namespace"]
    for t in found.values():
        assert yaml.safe_load(t["yaml"])["metadata"]["namespace"] == "monitoring"

    def matrix_with(tid: str) -> dict[tuple[str, str], str]:
        files = [*SHOP_FILES, {"name": "t.yaml", "text": found[tid]["yaml"]}]
        body = client.post("/api/analyze", json={"files": files}).json()
        assert body["valid"], body["errors"]
        return _cells(body)

    before = _cells(client.post("/api/analyze", json={"files": SHOP_FILES}).json())
    assert before[("monitoring/prometheus", "api/backend")] == "TCP 9100"
    assert before[("data/postgres", "monitoring/prometheus")] == "No Connections"  # the baseline's deny
    assert before[("monitoring/prometheus", "monitoring/prometheus")] == "All Connections"
    deny = matrix_with("default-deny")
    assert deny[("monitoring/prometheus", "api/backend")] == "No Connections"
    assert deny[("monitoring/prometheus", "monitoring/prometheus")] == "No Connections"
    ingress = matrix_with("allow-from-ingress-namespace")
    assert ingress[("data/postgres", "monitoring/prometheus")] == "All Connections"
    assert ingress[("monitoring/prometheus", "monitoring/prometheus")] == "No Connections"
    same = matrix_with("allow-same-namespace")
    assert same[("monitoring/prometheus", "monitoring/prometheus")] == "All Connections"
    assert same[("data/postgres", "monitoring/prometheus")] == "No Connections"
    dns = matrix_with("allow-dns-egress")
    assert dns[("monitoring/prometheus", "kube-system/coredns")] == "TCP 53,UDP 53"
    assert dns[("monitoring/prometheus", "api/backend")] == "No Connections"


def test_template_with_bad_namespace_is_refused(client: TestClient) -> None:
    r = client.get("/api/templates", params={"namespace": "Bad_NS"})
    assert r.status_code == 400
    assert r.json()["problems"][0]["path"] == "metadata.namespace"


def test_bad_request_body_is_422(client: TestClient) -> None:
    assert client.post("/api/analyze", json={"files": [{"name": "", "text": "x"}]}).status_code == 422
    assert client.post("/api/explain", json={"files": []}).status_code == 422


def test_lab_unavailable_is_reported(client: TestClient) -> None:
    status = client.get("/api/lab").json()
    assert status["available"] is True  # a kubeconfig was given; whether it works shows on use
    r = client.get("/api/lab/objects")
    assert r.status_code in (400, 502)
    assert "error" in r.json()


def test_front_end_missing_says_how_to_build(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 503
    assert "make setup" in r.text


def test_front_end_served(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>podnet</title>")
    (static / "assets" / "a.js").write_text("console.log(1)")
    c = TestClient(create_app(LabLink(kubeconfig=str(tmp_path / "none")), static_dir=static))
    assert c.get("/").text.startswith("<!doctype html>")
    assert c.get("/assets/a.js").text == "console.log(1)"
