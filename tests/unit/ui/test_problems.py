"""Problem lines of the analyzer split into their parts (podnet.ui.problems), and warnings through the API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from podnet.ui.app import create_app
from podnet.ui.lab import LabLink
from podnet.ui.problems import parse_problem


def test_problem_in_a_list_item() -> None:
    p = parse_problem("l.yaml[doc 2].items[1].items[0]: NetworkPolicy web/x: spec.ingress[0].from[0]: Required value")
    assert (p.file, p.doc, p.items, p.kind, p.object) == ("l.yaml", 2, (1, 0), "NetworkPolicy", "web/x")
    assert (p.path, p.message) == ("spec.ingress[0].from[0]", "Required value")


def test_problem_without_object_or_path() -> None:
    p = parse_problem("a.yaml[doc 0]: kind: Required value: kind must be set")
    assert (p.kind, p.object, p.path, p.message) == (None, None, "kind", "Required value: kind must be set")
    p = parse_problem("a.yaml[doc 1]: expected an object, got list")
    assert (p.doc, p.path, p.message) == (1, None, "expected an object, got list")
    p = parse_problem("something else entirely")
    assert (p.file, p.message, p.text) == (None, "something else entirely", "something else entirely")


def test_json_syntax_error_is_located() -> None:
    p = parse_problem("x.json[doc 0]: invalid JSON: Expecting value: line 2 column 3 (char 5)")
    assert (p.file, p.doc) == ("x.json", 0)
    assert p.message.startswith("invalid JSON")


def test_warnings_are_reported_beside_a_valid_analysis(tmp_path: Path) -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: web}
spec:
  podSelector: {}
  egress:
    - to: [{ipBlock: {cidr: 10.0.0.1/16}}]
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g}
"""
    client = TestClient(create_app(LabLink(kubeconfig=str(tmp_path / "none")), static_dir=tmp_path))
    body = client.post("/api/analyze", json={"files": [{"name": "w.yaml", "text": text}]}).json()
    assert body["valid"] is True
    texts = [w["text"] for w in body["warnings"]]
    assert any("ignoring unsupported kind Gadget" in t for t in texts), texts
    assert all(w["file"] == "w.yaml" for w in body["warnings"])
    graph = body["policies"][0]
    assert graph["peers"]["egress"][0]["scope"] == "cidr"
    assert graph["isolation"] == {"ingress": True, "egress": True}
