"""``hookmq bench cluster``: the report from known rows, and the quick run over real processes (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hookmq.plugins.gossip.bench.cluster import ClusterBench, ClusterSettings, Figure, split_plans
from hookmq.plugins.gossip.bench.cluster_report import markdown, targets, write_chart

MACHINE = {"cpus": 2}


def _bench() -> ClusterBench:
    bench = ClusterBench(ClusterSettings.quick(), cores=2)
    for index, (one, cross) in enumerate([(10_000.0, 8_000.0), (12_000.0, 6_000.0)]):
        bench.rows.append(Figure("throughput q0", "one node", index, {"msg_per_s": one}))
        bench.rows.append(Figure("throughput q0", "cross-node", index,
                                 {"msg_per_s": cross, "received": 90.0 + index * 10, "expected": 100.0}))
    bench.rows.append(Figure("latency q0", "one node", 0, {"p50_ms": 1.0, "p99_ms": 4.0}))
    bench.rows.append(Figure("latency q0", "cross-node", 0, {"p50_ms": 2.0, "p99_ms": 10.0}, False, "timed out"))
    bench.rows.append(Figure("scale-out", "1 node", 0, {"msg_per_s": 100.0}))
    bench.rows.append(Figure("scale-out", "2 nodes", 0, {"msg_per_s": 120.0}))
    bench.rows.append(Figure("takeover", "one node", 0, {"median_ms": 1.0, "max_ms": 2.0}))
    bench.rows.append(Figure("takeover", "cross-node", 0, {"median_ms": 3.0, "max_ms": 5.0}))
    bench.rows.append(Figure("join", "200 filters", 0, {"mqtt_listening_s": 2.0, "joined_s": 2.1, "routable_s": 2.5}))
    return bench


def test_ratios_are_per_round_and_the_targets_judge_their_median() -> None:
    bench = _bench()
    assert bench.ratios("throughput q0", "cross-node", "one node", "msg_per_s") == [0.8, 0.5]
    verdicts = {target.label: (value, met) for target, value, met in targets(bench)}
    assert verdicts["cross-node throughput q0 ≥ 0.7 × one node"] == (pytest.approx(0.65), False)
    assert verdicts["cross-node p99 latency q0 ≤ 2 × one node"] == (pytest.approx(2.5), False)
    assert verdicts["cross-node throughput q1 ≥ 0.7 × one node"] == (None, None)  # not measured


def test_the_report_has_every_table_the_targets_and_marks_incomplete_rows() -> None:
    text = markdown(_bench(), "hookmq bench cluster --quick", MACHINE)
    assert "Command: `hookmq bench cluster --quick`" in text
    for heading in ("### Cross-node throughput", "### Cross-node latency", "### Scale-out", "### Join",
                    "### Takeover", "### Issue 16's targets"):
        assert heading in text
    assert "| 0 | 11,000 | 7,000 | 0.65 (0.50–0.80) | 95.0 % |" in text
    assert "| 0 | 1.00 / 4.00 | 2.00 / 10.00 † | 2.00 | 2.50 |" in text
    assert "| two-node scale-out ≥ 1.5 × one node (where the cores allow) | 1.20 | missed (2 cores shared" in text
    assert "† latency q0, cross-node, round 1: timed out" in text


def test_the_chart_is_an_svg_with_a_panel_per_part(tmp_path: Path) -> None:
    path = tmp_path / "cluster.svg"
    assert write_chart(path, _bench()) is None
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for title in ("throughput, msg/s", "p99 latency, ms", "scale-out, aggregate msg/s", "takeover, median CONNACK ms"):
        assert title in svg


def test_split_plans_put_publishers_on_one_port_and_their_subscribers_on_the_other() -> None:
    plans = split_plans("r1", 3, 10, publish_port=1001, subscribe_port=1002)
    publishers = [p for p in plans if p.role == "publisher"]
    subscribers = [p for p in plans if p.role == "subscriber"]
    assert {p.port for p in publishers} == {1001} and {p.port for p in subscribers} == {1002}
    assert sorted(p.publish_topic or "" for p in publishers) == sorted(s.subscriptions[0] for s in subscribers)
    assert sum(s.expected for s in subscribers) == sum(p.publish_count for p in publishers) == 30


@pytest.mark.slow
def test_the_quick_run_over_real_processes(tmp_path: Path) -> None:
    # About 75 s on 2 shared cores: 8 node processes, 10 load runs, one join, 2 x 3 reconnects.
    done = subprocess.run([sys.executable, "-m", "hookmq", "bench", "cluster", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = tmp_path.glob("cluster-*.json")
    report = json.loads(found.read_text())
    rows = report["rows"]
    parts = {(row["part"], row["case"]) for row in rows}
    for part in ("throughput q0", "throughput q1", "latency q0", "latency q1", "takeover"):
        assert {(part, "one node"), (part, "cross-node")} <= parts
    assert {("scale-out", "1 node"), ("scale-out", "2 nodes"), ("join", "200 filters")} <= parts
    for row in rows:
        assert row["complete"], row
        assert all(value > 0 for value in row["figures"].values()), row
        if "expected" in row["figures"]:
            assert row["figures"]["received"] == row["figures"]["expected"]
    takeovers = [row for row in rows if row["part"] == "takeover"]
    assert all(row["figures"]["session_present"] == row["figures"]["trials"] == 3 for row in takeovers)
    for row in rows:
        if row["part"].startswith("latency"):
            assert row["figures"]["p50_ms"] <= row["figures"]["p99_ms"] <= row["figures"]["p999_ms"]
    (text,) = tmp_path.glob("cluster-*.md")
    assert "### Issue 16's targets" in text.read_text() and "Command: `hookmq bench cluster --quick" in text.read_text()
    assert next(tmp_path.glob("cluster-*.svg")).read_text().count("<svg") == 1
    assert done.stdout.count("|") > 20
