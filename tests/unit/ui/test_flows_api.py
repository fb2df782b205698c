"""The UI's flow routes over a flows file and over a real agent API on a unix socket (no root needed)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from podnet.agent.api import create_app
from podnet.cli.main import main
from podnet.flows.export import read_jsonl
from podnet.flows.model import Flow, to_line
from podnet.flows.query import FlowQuery
from podnet.flows.servicemap import ServiceMap
from podnet.flows.source import FileSource, Follower, LabSource, SocketSource, SourceEnded, make_source
from podnet.flows.store import FlowStore
from podnet.ui.flows import flows_router
from tests.unit.flows.helpers import dropped, flow, pod
from tests.unit.ui.helpers import events, serve

REPO = Path(__file__).resolve().parents[3]
SHOP = REPO / "examples" / "flows" / "shop.jsonl"


def app_over(source: Any) -> FastAPI:
    app = FastAPI()
    app.include_router(flows_router(source))
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(app_over(FileSource(SHOP)))


def observe(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["observe", "--input-file", str(SHOP), "-o", "json", *args]) == 0
    return [json.loads(line)["flow"] for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize(
    ("params", "flags"),
    [
        ("verdict=DROPPED", ["--verdict", "DROPPED"]),
        ("to-pod=api/backend-0&type=policy-verdict&not-from-pod=postgres-0",
         ["--to-pod", "api/backend-0", "--type", "policy-verdict", "--not", "--from-pod", "postgres-0"]),
        ("protocol=udp&last=1", ["--protocol", "udp", "--last", "1"]),
        ("port=9000&port=5432&namespace=web", ["--port", "9000", "--port", "5432", "--namespace", "web"]),
        ("since=2026-11-26T07:48:30Z", ["--since", "2026-11-26T07:48:30Z"]),
    ],
)  # fmt: skip
def test_api_flows_filters_like_observe(
    client: TestClient, capsys: pytest.CaptureFixture[str], params: str, flags: list[str]
) -> None:
    got = client.get(f"/api/flows?{params}")
    assert got.status_code == 200
    want = observe(capsys, *flags)
    assert want and got.json() == {"source": f"file {SHOP}", "count": len(want), "flows": want}


def test_api_flows_defaults_to_the_newest_20_and_rejects_bad_filters(client: TestClient) -> None:
    assert client.get("/api/flows").json()["count"] == 15  # the whole file: fewer than 20
    bad = client.get("/api/flows?verdict=MAYBE")
    assert bad.status_code == 400 and "--verdict" in bad.json()["error"] and "FORWARDED" in bad.json()["error"]
    assert client.get("/api/flows?last=x").status_code == 400
    missing = TestClient(app_over(FileSource(Path("/nonexistent/flows.jsonl")))).get("/api/flows")
    assert missing.status_code == 502 and "/nonexistent/flows.jsonl" in missing.json()["error"]


def test_api_servicemap_is_the_model_over_the_matching_flows(client: TestClient) -> None:
    with open(SHOP, encoding="utf-8") as fh:
        flows = read_jsonl(fh)
    doc = client.get("/api/servicemap").json()
    assert doc == {"source": f"file {SHOP}", **ServiceMap(sorted(flows, key=lambda f: f.time_ns)).to_json()}
    drops = client.get("/api/servicemap?verdict=DROPPED").json()
    assert drops["flows"] == 3 and {e["verdict"] for e in drops["edges"]} == {"DROPPED"}
    edge = next(e for e in drops["edges"] if e["target"] == "data/postgres")
    assert edge["denied_by"][0]["rule"]["isolated_by"] == ["web/frontend"]


def test_api_suggest_from_selected_flows(client: TestClient) -> None:
    # Drops included: a connection one side of which was dropped is left out.
    selected = client.get("/api/flows?namespace=api").json()["flows"]
    got = client.post("/api/suggest", json={"flows": selected, "namespace": "api"})
    assert got.status_code == 200
    answer = got.json()
    assert [p["metadata"]["name"] for p in answer["policies"]] == ["backend-ingress", "backend-egress"]
    assert list(yaml.safe_load_all(answer["yaml"])) == answer["policies"]
    assert answer["check"]["ok"] and answer["check"]["observed"] == answer["check"]["observed_allowed"] == 4
    assert answer["notes"] == ["left out 2 connection(s) with a DROPPED or AUDIT flow"]
    # The GetFlowsResponse form ({"flow": …}) is taken too.
    wrapped = client.post("/api/suggest", json={"flows": [{"flow": f} for f in selected], "namespace": "api"})
    assert wrapped.json()["policies"] == answer["policies"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"flows": "all"}, "flows: must be a list"),
        ({"flows": [{"verdict": "FORWARDED"}]}, "flows[0]: missing field 'time'"),
        ({"flows": [], "cidr_prefix": 33}, "cidr_prefix: must be a number from 0 to 32"),
        ({"flows": [], "namespace": 3}, "namespace: must be a non-empty string"),
        ({"flows": [], "color": "red"}, "color: unknown field"),
        ([], "body: must be a JSON object"),
    ],
)
def test_api_suggest_bad_body_names_the_field(client: TestClient, body: Any, field: str) -> None:
    got = client.post("/api/suggest", json=body)
    assert got.status_code == 400 and got.json()["error"].startswith(field)


# ---- live streams, served for real ----------------------------------------------------------------------------------


class Counting:
    """A source that records its followers closing: the server must close them when the client goes."""

    def __init__(self, inner: FileSource) -> None:
        self.inner = inner
        self.closed = 0

    def describe(self) -> str:
        return self.inner.describe()

    def history(self, query: FlowQuery) -> list[Flow]:
        return self.inner.history(query)

    def follow(self, query: FlowQuery) -> Follower:
        follower = self.inner.follow(query)
        outer = self

        class Wrapped:
            def poll(self, timeout: float) -> list[Flow]:
                return follower.poll(timeout)

            def close(self) -> None:
                outer.closed += 1
                follower.close()

        return Wrapped()


def append(path: Path, *flows: Flow) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(to_line(f) + "\n" for f in flows))


def test_flow_stream_sends_history_then_new_matching_flows(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    append(path, flow(0), dropped(1))
    source = Counting(FileSource(path))
    with serve(app_over(source)) as (url, _server), httpx.Client(timeout=10) as http:
        with http.stream("GET", f"{url}/api/flows/stream?verdict=DROPPED&last=5") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            it = events(r)
            first = next(it)
            assert first.event == "flow" and first.data == dropped(1).to_json()  # history first
            append(path, flow(2), dropped(3, destination_port=6379))
            second = next(it)
            assert second.data["l4"]["TCP"]["destination_port"] == 6379  # the FORWARDED one was filtered out
        deadline = time.monotonic() + 10
        while source.closed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.closed >= 1  # the client went: the server closed its follower (close is idempotent)
        bad = http.get(f"{url}/api/flows/stream?port=0")
        assert bad.status_code == 400 and "--port" in bad.json()["error"]


def test_servicemap_stream_sends_a_snapshot_then_updates(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    shutil.copy(SHOP, path)
    with (
        serve(app_over(FileSource(path))) as (url, _server),
        httpx.Client(timeout=10) as http,
        http.stream("GET", f"{url}/api/servicemap/stream") as r,
    ):
        it = events(r)
        snap = next(it)
        assert snap.event == "snapshot" and snap.data["flows"] == 15
        assert snap.data == http.get(f"{url}/api/servicemap").json()
        append(path, dropped(100))  # web/frontend -> data/postgres TCP/5432: an edge the shop has
        known = next(it)
        assert known.event == "update" and not known.data["edge_new"] and known.data["nodes"] == []
        assert known.data["edge"]["id"] == "web/frontend->data/postgres:TCP/5432"
        assert known.data["edge"]["verdicts"]["DROPPED"] == 2
        append(path, dropped(101, destination=pod("cache", "redis-0", 400, app="redis"), destination_port=6379))
        new = next(it)
        assert new.data["edge_new"] and new.data["edge"]["id"] == "web/frontend->cache/redis:TCP/6379"
        assert [n["id"] for n in new.data["nodes"]] == ["namespace:cache", "cache/redis"]


def test_socket_source_reads_a_real_agent_api(tmp_path: Path) -> None:
    """The agent's own API app, served on a unix socket: history merged, follow streams, the router on top."""
    store = FlowStore(100)
    for f in [flow(0), dropped(1), flow(2, verdict="AUDIT", allowed_by=())]:
        store.add(f)
    sock = str(tmp_path / "agent.sock")
    agent = create_app(cast(Any, None), store)
    with serve(agent, uds=sock) as (_url, server):
        agent.state.stopping = lambda: server.should_exit  # as the agent's server does
        source = SocketSource([sock])
        every = source.history(FlowQuery.make([], None))
        assert [f.verdict for f in every] == ["FORWARDED", "DROPPED", "AUDIT"]
        follower = source.follow(FlowQuery.make(FlowQuery.from_params([("verdict", "DROPPED")]).terms, 0))
        try:
            assert follower.poll(0.3) == []
            store.add(dropped(5))
            store.add(flow(6))
            got: list[Flow] = []
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                got = follower.poll(0.5)
            assert got == [dropped(5)]
        finally:
            follower.close()
        ui = TestClient(app_over(source))
        assert [f["verdict"] for f in ui.get("/api/flows?not-verdict=FORWARDED").json()["flows"]] == [
            "DROPPED",
            "AUDIT",
            "DROPPED",
        ]
        # The agent stopping ends a follow with SourceEnded.
        follower = source.follow(FlowQuery.make([], 0))
        server.should_exit = True
        with pytest.raises(SourceEnded):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                follower.poll(0.5)
        follower.close()
    gone = TestClient(app_over(SocketSource([sock]))).get("/api/flows")
    assert gone.status_code == 502 and "not reachable" in gone.json()["error"]


def test_make_source_takes_one_of_lab_sockets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_source(file=str(SHOP)), FileSource)
    assert isinstance(make_source(sockets=["/x.sock"]), SocketSource)
    assert isinstance(make_source(), LabSource)
    with pytest.raises(Exception, match="one source"):
        make_source(lab="a", file="b")
    monkeypatch.setenv("PODNET_LAB_ROOT", str(tmp_path / "labs"))
    no_lab = TestClient(app_over(LabSource())).get("/api/flows")
    assert no_lab.status_code == 502 and "no lab is running" in no_lab.json()["error"]


def test_file_follower_waits_for_whole_lines_and_starts_over_on_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    append(path, flow(0))
    follower = FileSource(path).follow(FlowQuery.make([], 0))
    try:
        assert follower.poll(0.2) == []  # last=0: no history
        line = to_line(dropped(1))
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line[:40])  # a writer half-way through a line
        assert follower.poll(0.3) == []
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line[40:] + "\n")
        assert follower.poll(1.0) == [dropped(1)]
        path.write_text(to_line(flow(7)) + "\n")  # rotated: a new, shorter file
        assert follower.poll(1.0) == [flow(7)]
    finally:
        follower.close()
    path.write_text("not json\n")
    broken = TestClient(app_over(FileSource(path))).get("/api/flows")
    assert broken.status_code == 502 and "line 1: not a flow" in broken.json()["error"]


def test_streams_end_when_the_server_stops(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    append(path, flow(0))
    stop = threading.Event()
    app = FastAPI()
    app.include_router(flows_router(FileSource(path), stopping=stop.is_set))
    with (
        serve(app) as (url, _server),
        httpx.Client(timeout=10) as http,
        http.stream("GET", f"{url}/api/flows/stream") as r,
    ):
        started = time.monotonic()
        stop.set()
        assert list(events(r)) == []  # the response ends (no flow came)
        assert time.monotonic() - started < 5
