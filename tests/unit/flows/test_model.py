from __future__ import annotations

import datetime as dt
import json

import orjson

from podnet.flows.model import Flow, FlowEndpoint, from_line, parse_time, to_line, to_line_bytes

from .helpers import T0, dropped, flow, sample


def test_json_uses_hubble_field_names() -> None:
    doc = flow(0).to_json()
    assert doc["verdict"] == "FORWARDED"
    assert doc["IP"] == {"source": "10.246.0.2", "destination": "10.246.1.3", "ipVersion": "IPv4"}
    assert doc["l4"] == {"TCP": {"source_port": 40000, "destination_port": 9000, "flags": {"SYN": True}}}
    assert doc["source"]["pod_name"] == "frontend-0" and doc["source"]["namespace"] == "web"
    assert doc["source"]["identity"] == 262 and "k8s:app=frontend" in doc["source"]["labels"]
    assert doc["source"]["workloads"] == [{"name": "frontend", "kind": "Deployment"}]
    assert doc["Type"] == "L3_L4" and doc["traffic_direction"] == "INGRESS" and doc["is_reply"] is False
    assert doc["Summary"] == "TCP Flags: SYN" and doc["node_name"] == "n1"
    assert doc["event_type"] == {"type": 5}
    assert doc["allowed_by"] == [
        {"kind": "NetworkPolicy", "namespace": "api", "name": "backend", "direction": "ingress", "rule": 0}
    ]
    assert doc["time"].endswith("Z") and parse_time(doc["time"]) == T0


def test_drop_carries_reason_and_denying_rule() -> None:
    doc = dropped(1, count=3).to_json()
    assert doc["verdict"] == "DROPPED" and doc["drop_reason_desc"] == "POLICY_DENIED"
    assert doc["event_type"] == {"type": 1} and doc["count"] == 3
    assert doc["denied_by"][0]["isolated_by"] == ["data/postgres"] and "allowed_by" not in doc


def test_round_trip_through_json_lines() -> None:
    for f in sample():
        line = to_line(f)
        assert json.loads(line)["flow"]["verdict"] == f.verdict
        assert from_line(line) == f
        assert Flow.from_json(f.to_json()) == f  # a bare flow object reads too


def test_parse_time_keeps_nanoseconds_and_offsets() -> None:
    assert parse_time("1970-01-01T00:00:01.000000007Z") == 1_000_000_007
    assert parse_time("1970-01-01T01:00:01+01:00") == 1_000_000_000
    assert parse_time("1970-01-01T00:00:02.5Z") == 2_500_000_000


def test_json_lines_are_the_standard_librarys_compact_json() -> None:
    for f in [*sample(), dropped(9, count=3), flow(1, protocol="ICMPv4", tcp_flags=())]:
        doc = {"flow": f.to_json(), "node_name": f.node_name, "time": f.time_text}
        assert to_line(f) == json.dumps(doc, separators=(",", ":"))
        assert to_line_bytes(f) == to_line(f).encode()


def test_time_text_of_many_seconds() -> None:
    for secs in (0, 1, 59, 86_399, 1_795_000_000, *range(1_795_000_000, 1_795_000_200)):  # past the cache's size
        f = flow(0, time_ns=secs * 1_000_000_000 + 7)
        assert f.time_text == dt.datetime.fromtimestamp(secs, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000000007Z")


def test_an_endpoints_serialized_form_is_kept_and_is_not_part_of_its_value() -> None:
    f = flow(0)
    fresh = FlowEndpoint.from_json(f.source.to_json())
    assert f.source.json_fragment() is f.source.json_fragment()  # made once
    assert fresh == f.source and hash(fresh) == hash(f.source) and "_fragment" not in repr(f.source)
    assert orjson.loads(orjson.dumps({"x": fresh.json_fragment()})) == {"x": f.source.to_json()}
