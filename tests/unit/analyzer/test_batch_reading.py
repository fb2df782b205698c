"""Batch verdicts read well-formed queries with orjson and every other line with the standard library:
both readings give the same answers and the same errors."""

from __future__ import annotations

import json

import orjson
import pytest

from tests.unit.analyzer.conftest import SHOP, Podnet

REFS = ["api/backend", "web/frontend", "data/postgres", "kube-system/coredns", "ip:203.0.113.9", "web/missing"]
PORTS: list[object] = [53, 80, 5432, 8080, 9000, "8080", "http", "pg", "metrics", 0, 65536, True, None, 1.5]

# Lines the two parsers read differently, or only one of them reads.
ODD = [
    '{"from": "web/frontend", "to": "api/backend", "port": NaN}',
    '{"from": "web/frontend", "to": "api/backend", "port": 123456789012345678901234567890}',
    '{"from": "web/frontend", "to": "api/backend", "port": -123456789012345678901234567890}',
    '{"from": "web/\\ud800", "to": "api/backend", "port": 80}',
    '{"from": "web/frontend", "to": "api/backend", "port": 80, "port": 9000}',
    '{"from": "web/frontend", "to": "api/backend", "port": Infinity}',
    "[1, 2]",
    '"web/frontend"',
    "{not json",
]


def queries() -> list[str]:
    lines = list(ODD)
    for src in REFS:
        for dst in REFS:
            for port in PORTS:
                for proto in ("TCP", "udp", "SCTP", None, 6, True, ["TCP"]):
                    q: dict[str, object] = {"from": src, "to": dst, "port": port}
                    if proto is not None:
                        q["protocol"] = proto
                    lines.append(json.dumps(q))
    lines.append(json.dumps({"from": 5, "to": "api/backend", "port": 80}))
    lines.append(json.dumps({"to": "api/backend", "port": 80}))
    return lines


def test_both_readings_answer_alike(podnet: Podnet, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = "\n".join(queries()) + "\n"
    fast = podnet("policy", "verdict", "-f", SHOP, "--queries", "-", "-o", "jsonl", stdin=stdin)

    def refuse(text: str) -> object:
        raise orjson.JSONDecodeError("refused", text, 0)

    monkeypatch.setattr(orjson, "loads", refuse)  # every line takes the standard library's reading
    slow = podnet("policy", "verdict", "-f", SHOP, "--queries", "-", "-o", "jsonl", stdin=stdin)
    assert fast.code == slow.code == 0
    assert fast.out.splitlines() == slow.out.splitlines()
    out = [json.loads(line) for line in fast.out.splitlines()]
    assert len(out) == len(queries())
    verdicts = [o.get("verdict", "error") for o in out]
    assert verdicts.count("allowed") > 50 and verdicts.count("denied") > 50 and verdicts.count("error") > 50


def test_odd_lines_get_the_standard_librarys_reading(podnet: Podnet) -> None:
    r = podnet("policy", "verdict", "-f", SHOP, "--queries", "-", "-o", "jsonl", stdin="\n".join(ODD) + "\n")
    out = [json.loads(line) for line in r.out.splitlines()]
    assert [o.get("error") for o in out[:3]] == [
        "port NaN: must be a number or a port name",
        "port 123456789012345678901234567890: must be between 1 and 65535",
        "port -123456789012345678901234567890: must be between 1 and 65535",
    ]
    assert "no Pod or workload web/\ud800" in out[3]["error"]
    assert out[4]["verdict"] == "allowed" and out[4]["port"] == 9000  # the last of two equal keys wins
    assert out[5]["error"] == "port Infinity: must be a number or a port name"
    assert out[6]["error"] == out[7]["error"] == "each query must be a JSON object"
    assert out[8]["error"].startswith("Expecting property name")
