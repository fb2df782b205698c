"""The Table kubectl asks for: columns per kind, ages, row objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from podnet.lab.apiserver.api import Api, Reply
from podnet.lab.apiserver.store import Store
from podnet.lab.apiserver.tables import human_age, wants_table

KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (119, "119s"), (192, "3m12s"), (600, "10m"), (95 * 60, "95m"), (5 * 3600 + 180, "5h3m"),
     (30 * 3600, "30h"), (3 * 86400 + 4 * 3600, "3d4h"), (120 * 86400, "120d"), (760 * 86400, "2y30d")],
)  # fmt: skip
def test_human_age(seconds: int, text: str) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert human_age(created, now) == text


def test_kubectl_accept_header_asks_for_a_table() -> None:
    assert wants_table(KUBECTL_ACCEPT)
    assert not wants_table("application/json")


def test_pod_table_has_wide_columns_and_partial_metadata_rows() -> None:
    api = Api(Store(None))
    pod = {
        "metadata": {"name": "p"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]},
    }
    api.handle("POST", "/api/v1/namespaces/default/pods", {}, json.dumps(pod).encode())
    reply = api.handle("GET", "/api/v1/namespaces/default/pods", {}, accept=KUBECTL_ACCEPT)
    assert isinstance(reply, Reply) and isinstance(reply.body, dict)
    table = reply.body
    assert table["kind"] == "Table"
    cols = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert cols == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1)]
    row = table["rows"][0]
    assert row["cells"][:4] == ["p", "0/1", "Pending", "0"] and row["cells"][5:] == ["<none>", "node-1"]
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == "p"
    single = api.handle("GET", "/api/v1/namespaces/default/pods/p", {"includeObject": "Object"}, accept=KUBECTL_ACCEPT)
    assert isinstance(single, Reply) and isinstance(single.body, dict)
    assert single.body["rows"][0]["object"]["kind"] == "Pod"


def test_watch_events_carry_one_row_tables_when_kubectl_asks() -> None:
    api = Api(Store(None))
    start = api.store.resource_version
    plan = api.handle("GET", "/api/v1/pods", {"watch": "true", "resourceVersion": str(start)}, accept=KUBECTL_ACCEPT)
    assert not isinstance(plan, Reply)
    watcher = api.watcher(plan)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    api.handle("POST", "/api/v1/namespaces/default/pods", {}, json.dumps(pod).encode())
    events = watcher.poll()
    assert [e["type"] for e in events] == ["ADDED"]
    assert events[0]["object"]["kind"] == "Table" and events[0]["object"]["rows"][0]["cells"][0] == "p"
