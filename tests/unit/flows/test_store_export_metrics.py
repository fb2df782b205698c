from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from podnet.flows.export import JsonlExporter, read_jsonl
from podnet.flows.filters import FilterTerm, build
from podnet.flows.metrics import FlowMetrics
from podnet.flows.model import to_line_bytes
from podnet.flows.store import FlowStore

from .helpers import dropped, flow, sample


def test_store_keeps_the_newest_and_counts_overwrites() -> None:
    store = FlowStore(4)
    for f in sample():
        store.add(f)
    got, seq = store.query()
    assert got == sample()[2:] and len(store) == 4 and seq == 6 and store.overwritten == 2


def test_store_query_last_since_filter_and_after() -> None:
    store = FlowStore(100)
    flows = sample()
    for f in flows:
        store.add(f)
    drops = build([FilterTerm("verdict", "DROPPED")])
    assert store.query(drops)[0] == [flows[1], flows[3]]
    assert store.query(drops, last=1)[0] == [flows[3]]
    assert store.query(last=0)[0] == []
    assert store.query(since_ns=flows[3].time_ns)[0] == flows[3:]
    _, seq = store.query()
    store.add(flow(9))
    assert store.query(after_seq=seq) == ([flow(9)], seq + 1)


def test_store_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError):
        FlowStore(0)


def test_export_writes_json_lines_and_rotates_by_size(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    exp = JsonlExporter(path, max_bytes=10_000, backups=2)
    exp.write(flow(0))
    exp.flush()
    line_size = path.stat().st_size
    exp.close()
    path.unlink()
    exp = JsonlExporter(path, max_bytes=line_size * 3, backups=2)
    written = [flow(i) for i in range(10)]
    for f in written:
        exp.write(f)
    exp.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["flows.jsonl", "flows.jsonl.1", "flows.jsonl.2"]  # the oldest rotation is gone
    for name in files:
        assert path.with_name(name).stat().st_size <= line_size * 3
    kept = []
    for name in ("flows.jsonl.2", "flows.jsonl.1", "flows.jsonl"):
        with open(tmp_path / name) as fh:
            kept.extend(read_jsonl(fh))
    assert kept == written[-len(kept) :] and len(kept) >= 7
    first = json.loads((tmp_path / "flows.jsonl").read_text().splitlines()[0])
    assert set(first) == {"flow", "node_name", "time"}


def test_export_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    for i in range(2):
        exp = JsonlExporter(path)
        exp.write(flow(i))
        exp.close()
    with open(path) as fh:
        assert read_jsonl(fh) == [flow(0), flow(1)]


def sample_value(m: FlowMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_metrics_count_flows_drops_and_lost_events() -> None:
    m = FlowMetrics()
    for f in sample():
        m.observe(f)
    m.observe(dropped(7, drop_reason_desc="INVALID_SOURCE_IP"))
    assert sample_value(m, "podnet_flows_processed_total", verdict="FORWARDED", type="policy-verdict",
                        direction="INGRESS") == 3  # fmt: skip
    assert sample_value(m, "podnet_flows_processed_total", verdict="DROPPED", type="drop", direction="INGRESS") == 3
    assert sample_value(m, "podnet_drop_total", reason="POLICY_DENIED") == 5  # 1 + an aggregated record of 4
    assert sample_value(m, "podnet_drop_total", reason="INVALID_SOURCE_IP") == 1
    m.set_lost(3)
    m.set_lost(3)
    m.set_lost(10)
    assert sample_value(m, "podnet_events_lost_total") == 10
    m.policy_entries.set(42)
    m.endpoints.set(6)
    text = m.text().decode()
    assert "podnet_policy_map_entries 42.0" in text and "podnet_endpoints 6.0" in text


def test_metrics_serve_on_loopback_only() -> None:
    m = FlowMetrics()
    with pytest.raises(ValueError, match="loopback"):
        m.serve("0.0.0.0:0")
    host, port = m.serve("127.0.0.1:0")
    try:
        m.observe(flow(0))
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert 'podnet_flows_processed_total{direction="INGRESS",type="policy-verdict",verdict="FORWARDED"} 1.0' in body
    finally:
        m.close()


def test_store_add_all_is_add_for_each() -> None:
    one, batch = FlowStore(4), FlowStore(4)
    for f in sample():
        one.add(f)
    batch.add_all(sample()[:1])
    batch.add_all(sample()[1:])
    batch.add_all([])
    assert batch.query() == one.query() and batch.overwritten == one.overwritten == 2


def test_export_batch_rotates_inside_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "flows.jsonl"
    written = [flow(i) for i in range(10)]
    line_size = len(to_line_bytes(written[0])) + 1
    exp = JsonlExporter(path, max_bytes=line_size * 3, backups=5)
    exp.write_all(written[:8])
    exp.write_all(written[8:])
    exp.close()
    kept = []
    for name in ("flows.jsonl.3", "flows.jsonl.2", "flows.jsonl.1", "flows.jsonl"):
        assert (tmp_path / name).stat().st_size <= line_size * 3
        with open(tmp_path / name) as fh:
            kept.extend(read_jsonl(fh))
    assert kept == written


def test_metrics_of_a_batch_are_the_sum_of_its_flows() -> None:
    one, batch = FlowMetrics(), FlowMetrics()
    flows = [*sample(), dropped(7, drop_reason_desc=""), dropped(8, count=4)]
    for f in flows:
        one.observe(f)
    batch.observe_all(flows[:2])
    batch.observe_all(flows[2:])

    def samples(m: FlowMetrics) -> list[tuple[str, dict[str, str], float]]:
        found = [(s.name, s.labels, s.value) for f in m.registry.collect() for s in f.samples]
        return [s for s in found if "_created" not in s[0]]

    assert samples(one) == samples(batch) and len(samples(one)) > 4
    assert sample_value(batch, "podnet_drop_total", reason="UNKNOWN") == 1
