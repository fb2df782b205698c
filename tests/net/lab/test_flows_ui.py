"""The UI's flow routes over a real lab: a packet the kernel drops shows up in /api/flows, the service map and
the live stream; policies suggested from the lab's flows, applied to the lab, let through what was observed and
nothing else."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from podnet.flows.source import LabSource
from podnet.lab import manager
from podnet.ui.flows import flows_router
from tests.net.lab.helpers import podnet, wait_for
from tests.unit.ui.helpers import events, serve


def probe(lab: manager.Lab, src: str, dst: str, port: int) -> bool:
    out = podnet("lab", "probe", "--name", lab.name, "--from", src, "--to", dst, "--port", str(port), "-o", "json",
                 "--timeout", "1", check=False)  # fmt: skip
    return bool(json.loads(out.stdout)["reachable"])


def test_a_dropped_flow_reaches_the_ui_routes_and_suggested_policies_hold_in_the_kernel(
    lab: manager.Lab, tmp_path: Path
) -> None:
    podnet("apply", "-f", "examples/shop", "--name", lab.name)

    def running() -> bool:
        items = json.loads(podnet("get", "pods", "-A", "-o", "json", "--name", lab.name).stdout)["items"]
        return len(items) == 6 and all((p.get("status") or {}).get("phase") == "Running" for p in items)

    wait_for(running, "6 running pods")
    app = FastAPI()
    app.include_router(flows_router(LabSource(lab.name)))
    client = TestClient(app)
    assert client.get("/api/flows?verdict=DROPPED").json()["flows"] == []

    assert probe(lab, "web/frontend-0", "api/backend-0", 9000)
    assert not probe(lab, "web/frontend-0", "data/postgres-0", 5432)

    drops: list[dict[str, Any]] = []

    def dropped() -> bool:
        drops[:] = client.get("/api/flows?verdict=DROPPED&to-pod=data/postgres-0").json()["flows"]
        return bool(drops)

    wait_for(dropped, "the dropped flow in /api/flows", timeout=20)
    drop = drops[0]
    assert drop["source"]["pod_name"] == "frontend-0" and drop["drop_reason_desc"] == "POLICY_DENIED"
    assert drop["denied_by"][0]["isolated_by"] == ["web/frontend"]
    assert drop["l4"]["TCP"]["destination_port"] == 5432

    smap = client.get("/api/servicemap").json()
    assert smap["source"] == f"lab {lab.name}"
    edges = {e["id"]: e for e in smap["edges"]}
    denied = edges["web/frontend->data/postgres:TCP/5432"]
    assert denied["verdict"] == "DROPPED" and denied["verdicts"]["DROPPED"] >= 1
    assert denied["denied_by"][0]["rule"]["isolated_by"] == ["web/frontend"]
    allowed = edges["web/frontend->api/backend:TCP/9000"]
    assert allowed["verdict"] == "FORWARDED" and allowed["verdicts"]["FORWARDED"] == 2  # both veths
    assert {r["text"] for r in allowed["allowed_by"]} == {
        "NetworkPolicy web/frontend egress[0]",
        "NetworkPolicy api/backend ingress[0]",
    }
    assert {"web/frontend", "api/backend", "data/postgres", "namespace:web"} <= {n["id"] for n in smap["nodes"]}

    # Live: a new drop arrives on the SSE stream from the node that saw it.
    stream = "/api/flows/stream?verdict=DROPPED&from-pod=web/frontend-1"
    with serve(app) as (url, _server), httpx.Client(timeout=20) as http, http.stream("GET", url + stream) as r:
        it = events(r)
        time.sleep(1.0)
        assert not probe(lab, "web/frontend-1", "data/postgres-0", 5432)
        live = next(it)
        assert live.event == "flow" and live.data["source"]["pod_name"] == "frontend-1"
        assert live.data["destination"]["pod_name"] == "postgres-0" and live.data["verdict"] == "DROPPED"

    # Suggest from every flow the lab recorded, replace the shop's policies by the suggestion.
    everything = client.get("/api/flows?last=100000").json()["flows"]
    answer = client.post("/api/suggest", json={"flows": everything}).json()
    assert answer["check"]["ok"] and answer["check"]["observed"] >= 1, answer
    suggested = tmp_path / "suggested.yaml"
    suggested.write_text(answer["yaml"])
    podnet("delete", "-f", "examples/shop/policies.yaml", "--name", lab.name)
    podnet("apply", "-f", str(suggested), "--name", lab.name)

    # What was observed passes; what was dropped, and what was never tried, is now denied by the kernel.
    closed = [
        ("api/backend-0", "data/postgres-0", 5432),  # the shop allowed it, but it never happened
        ("web/frontend-0", "data/postgres-0", 5432),  # dropped when observed
        ("monitoring/prometheus-0", "api/backend-0", 9100),  # the shop's ANP allowed it; never happened
    ]
    # Each node enforces its pods' side as soon as it has the new policies: wait for every side.
    wait_for(lambda: not any(probe(lab, *c) for c in closed), "the suggestion enforced on every node", 40)
    assert probe(lab, "web/frontend-0", "api/backend-0", 9000)
    assert probe(lab, "web/frontend-1", "api/backend-0", 9000)
