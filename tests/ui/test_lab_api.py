"""The UI's lab endpoints against a real lab API server process (``podnet lab apiserver``), no root needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from podnet.ui.app import create_app
from podnet.ui.lab import LabLink
from tests.e2e import labserver

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "shop"
SHOP_FILES = [{"name": p.name, "text": p.read_text()} for p in sorted(SHOP.glob("*.yaml"))]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[labserver.Server]:
    srv = labserver.start(tmp_path / "api")
    try:
        yield srv
    finally:
        srv.stop()


def test_apply_then_load_round_trip(server: labserver.Server, tmp_path: Path) -> None:
    client = TestClient(create_app(LabLink(kubeconfig=str(server.kubeconfig)), static_dir=tmp_path))
    assert client.get("/api/lab").json()["available"] is True

    r = client.post("/api/lab/apply", json={"files": SHOP_FILES})
    assert r.status_code == 200, r.text
    applied = r.json()["applied"]
    assert applied[0]["object"].startswith("namespace/")
    assert {a["result"] for a in applied} == {"created"}
    assert {"networkpolicy/frontend", "adminnetworkpolicy/platform-guardrails"} <= {a["object"] for a in applied}
    r = client.post("/api/lab/apply", json={"files": SHOP_FILES, "policies_only": True})
    again = r.json()["applied"]
    assert sorted(a["object"] for a in again) == [
        "adminnetworkpolicy/platform-guardrails",
        "baselineadminnetworkpolicy/default",
        "networkpolicy/backend",
        "networkpolicy/frontend",
        "networkpolicy/postgres",
    ]
    assert "created" not in {a["result"] for a in again}  # (defaults the server added may count as a change)

    files = client.get("/api/lab/objects").json()["files"]
    assert [f["name"] for f in files] == ["lab-cluster.yaml", "lab-policies.yaml"]
    policies = [d for d in yaml.safe_load_all(files[1]["text"]) if d]
    assert sorted(f"{d['kind']}/{d['metadata']['name']}" for d in policies) == [
        "AdminNetworkPolicy/platform-guardrails",
        "BaselineAdminNetworkPolicy/default",
        "NetworkPolicy/backend",
        "NetworkPolicy/frontend",
        "NetworkPolicy/postgres",
    ]
    assert all("resourceVersion" not in d["metadata"] and "status" not in d for d in policies)
    # what came from the lab analyzes to the same matrix as the files it was applied from
    from_lab = client.post("/api/analyze", json={"files": files}).json()
    from_files = client.post("/api/analyze", json={"files": SHOP_FILES}).json()
    assert from_lab["valid"], from_lab["errors"]
    assert from_lab["matrix"]["cells"] == from_files["matrix"]["cells"]


def test_invalid_apply_changes_nothing(server: labserver.Server, tmp_path: Path) -> None:
    client = TestClient(create_app(LabLink(kubeconfig=str(server.kubeconfig)), static_dir=tmp_path))
    before = client.get("/api/lab/objects").json()["files"]
    bad = [*SHOP_FILES, {"name": "ports.yaml", "text": (REPO / "examples/invalid/ports.yaml").read_text()}]
    r = client.post("/api/lab/apply", json={"files": bad})
    assert r.status_code == 400
    assert r.json()["problems"][0]["file"] == "ports.yaml"
    assert client.get("/api/lab/objects").json()["files"] == before
    assert "web" not in before[0]["text"]


def test_no_lab_running_is_an_error_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODNET_LAB_ROOT", str(tmp_path / "labs"))
    client = TestClient(create_app(LabLink(), static_dir=tmp_path))
    status = client.get("/api/lab").json()
    assert status == {"available": False, "name": None, "error": "no lab is running: start one with `podnet lab up`"}
    r = client.get("/api/lab/objects")
    assert r.status_code == 400
    assert r.json()["error"].startswith("no lab is running")
