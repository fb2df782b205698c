from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from podnet.agent.api import create_app
from podnet.cli.main import main
from podnet.errors import UsageError
from podnet.flows.filters import FilterTerm
from podnet.flows.model import from_line, to_line
from podnet.flows.query import FlowQuery, parse_since
from podnet.flows.store import FlowStore

from .helpers import T0, sample


def test_query_params_round_trip() -> None:
    q = FlowQuery.make([FilterTerm("verdict", "DROPPED"), FilterTerm("port", "53", True)], last=3, since_ns=T0 + 7)
    back = FlowQuery.from_params(__import__("urllib.parse").parse.parse_qsl(q.params()))
    assert back.terms == q.terms and back.last == 3 and back.since_ns == T0 + 7 and not back.follow
    assert back.select(sample()) == q.select(sample())


def test_since_takes_durations_and_times() -> None:
    assert parse_since("5m", now_ns=10**12) == 10**12 - 300 * 10**9
    assert parse_since("1970-01-01T00:00:03Z") == 3 * 10**9
    with pytest.raises(UsageError):
        parse_since("yesterday")


@pytest.fixture
def client() -> TestClient:
    store = FlowStore(100)
    for f in sample():
        store.add(f)
    return TestClient(create_app(cast(Any, None), store))


def test_api_serves_filtered_json_lines(client: TestClient) -> None:
    r = client.get("/v1/flows", params=[("verdict", "DROPPED")])
    assert r.status_code == 200
    assert [from_line(x) for x in r.text.splitlines()] == [sample()[1], sample()[3]]
    r = client.get("/v1/flows", params=[("not-port", "9000"), ("last", "1")])
    assert [from_line(x) for x in r.text.splitlines()] == [sample()[4]]
    assert client.get("/v1/flows", params=[("port", "x")]).status_code == 400


def test_api_without_flows_is_404() -> None:
    assert TestClient(create_app(cast(Any, None))).get("/v1/flows").status_code == 404


def write_sample(path: Path) -> Path:
    path.write_text("".join(to_line(f) + "\n" for f in reversed(sample())))  # out of order: observe sorts
    return path


def observe(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["observe", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_observe_input_file_filters_like_the_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = str(write_sample(tmp_path / "flows.jsonl"))
    lines = observe(capsys, "--input-file", f, "-o", "json", "--verdict", "DROPPED")
    assert [from_line(x) for x in lines] == [sample()[1], sample()[3]]
    lines = observe(capsys, "--input-file", f, "-o", "json", "--to-pod", "api/backend-0", "--not", "--port", "53")
    assert [from_line(x) for x in lines] == [sample()[0], sample()[2], sample()[5]]
    lines = observe(capsys, "--input-file", f, "-o", "json", "--last", "2")
    assert [from_line(x) for x in lines] == sample()[4:]


def test_observe_compact_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = str(write_sample(tmp_path / "flows.jsonl"))
    lines = observe(capsys, "--input-file", f, "--port", "40000")
    assert lines == [
        "Nov 18 11:06:40.000: web/frontend-0:40000 (ID:262) -> api/backend-0:9000 (ID:259) "
        "policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN) by NetworkPolicy api/backend ingress[0]"
    ]
    lines = observe(capsys, "--input-file", f, "--type", "drop", "--last", "1")
    assert lines == [
        "Nov 18 11:06:40.003: web/frontend-0:40003 (ID:262) -> data/postgres-0:5432 (ID:300) "
        "POLICY_DENIED INGRESS DROPPED (TCP Flags: SYN) x4 by default deny (ingress isolated by NetworkPolicy "
        "data/postgres)"
    ]
    table = observe(capsys, "--input-file", f, "-o", "table", "--verdict", "DROPPED")
    assert table[0].split() == ["TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY", "POLICY"]
    assert len(table) == 3 and all("DROPPED" in row for row in table[1:])


def test_observe_dangling_not_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = str(write_sample(tmp_path / "flows.jsonl"))
    assert main(["observe", "--input-file", f, "--not"]) == 2
    assert "--not must be followed by a filter" in capsys.readouterr().err


def test_agent_flags_build_store_export_and_metrics(tmp_path: Path) -> None:
    import urllib.request

    from podnet.agent.server import AgentConfig, build_flows
    from podnet.cli.main import build_parser

    args = build_parser().parse_args(
        ["agent", "--node-name", "n1", "--pod-cidr", "10.0.0.0/24", "--kubeconfig", str(tmp_path / "kc"),
         "--flows-buffer", "7", "--flows-export", str(tmp_path / "f.jsonl"), "--flows-export-max-mb", "0.5",
         "--metrics-addr", "127.0.0.1:0"]
    )  # fmt: skip
    config = AgentConfig(
        args.node_name, args.pod_cidr, Path("/nonexistent.sock"), tmp_path, kubeconfig=args.kubeconfig,
        flows_buffer=args.flows_buffer, flows_export=args.flows_export,
        flows_export_max_bytes=int(args.flows_export_max_mb * 1024 * 1024), metrics_addr=args.metrics_addr,
    )  # fmt: skip
    col = build_flows(config)
    assert col is not None and col.exporter is not None and col.metrics is not None
    try:
        assert col.store.capacity == 7 and col.exporter.max_bytes == 512 * 1024
        host, port = col.metrics._server.server_address[:2]
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert "podnet_events_lost_total 0.0" in body
    finally:
        col.close()
    assert build_flows(AgentConfig("n", ["10.0.0.0/24"], Path("/x"), tmp_path)) is None  # no policy: no flows
    with pytest.raises(UsageError, match="loopback"):
        build_flows(
            AgentConfig("n", ["10.0.0.0/24"], Path("/x"), tmp_path, kubeconfig=Path("k"), metrics_addr="0.0.0.0:0")
        )
