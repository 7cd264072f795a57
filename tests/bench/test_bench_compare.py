"""``hookmq bench compare`` end to end with real broker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookmq.bench.brokers import BrokerUnavailable, start_broker
from hookmq.bench.compare import rotated, run_comparison, write_outputs
from hookmq.bench.runner import RunOptions
from hookmq.bench.workloads import Workload

OPTIONS = RunOptions(workers=1, setup_timeout=30, run_timeout=30, progress=False)


def test_rotation_changes_who_goes_first() -> None:
    brokers = ["hookmq", "mosquitto", "amqtt"]

    assert [rotated(brokers, turn)[0] for turn in range(4)] == ["hookmq", "mosquitto", "amqtt", "hookmq"]


def test_compare_hookmq_with_mosquitto_writes_table_json_and_chart(tmp_path: Path) -> None:
    workloads = [Workload("pairs", clients=3, messages=20, qos=1), Workload("connections", clients=30)]

    comparison = run_comparison(["hookmq", "mosquitto"], workloads, OPTIONS)
    markdown = write_outputs(comparison, ["hookmq", "mosquitto"], tmp_path, {"command": "test"})

    assert comparison.unavailable == {}
    assert sorted((r.broker, r.workload, r.received) for r in comparison.results) == [
        ("hookmq", "connections 30", 30),
        ("hookmq", "pairs q1 3x20", 60),
        ("mosquitto", "connections 30", 30),
        ("mosquitto", "pairs q1 3x20", 60),
    ]
    assert "| workload | figure | hookmq | mosquitto | hookmq/mosquitto |" in markdown
    (json_file,) = tmp_path.glob("compare-*.json")
    document = json.loads(json_file.read_text())
    assert set(document["versions"]) == {"hookmq", "mosquitto"}
    assert document["machine"]["cpus"] >= 1
    assert len(list(tmp_path.glob("compare-*.md"))) == 1


def test_unknown_broker_is_unavailable_and_the_run_goes_on(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnavailable, match="unknown broker"):
        start_broker("nanomq", tmp_path)

    comparison = run_comparison(["nanomq", "mosquitto"], [Workload("pairs", clients=2, messages=5)], OPTIONS)

    assert "nanomq" in comparison.unavailable
    assert [(r.broker, r.received) for r in comparison.results] == [("mosquitto", 10)]


@pytest.mark.slow
def test_compare_includes_amqtt_installed_on_first_use() -> None:
    comparison = run_comparison(["amqtt"], [Workload("pairs", clients=3, messages=20, qos=1)], OPTIONS)

    assert comparison.unavailable == {}
    (result,) = comparison.results
    assert (result.broker, result.received, result.complete) == ("amqtt", 60, True)


def test_compare_with_a_cross_node_cluster_delivers_every_message(tmp_path: Path) -> None:
    brokers = ["hookmq", "hookmq:x2"]

    comparison = run_comparison(brokers, [Workload("pairs", clients=3, messages=20, qos=1)], OPTIONS)
    markdown = write_outputs(comparison, brokers, tmp_path, {"command": "test"})

    assert comparison.unavailable == {}
    assert sorted((r.broker, r.received, r.complete) for r in comparison.results) == [
        ("hookmq", 60, True), ("hookmq:x2", 60, True)]
    (cluster,) = (r for r in comparison.results if r.broker == "hookmq:x2")
    assert cluster.metrics["broker_cpu_s"] is not None
    assert "| hookmq:x2/hookmq |" in markdown.splitlines()[0]


@pytest.mark.slow
def test_compare_with_both_cluster_layouts_delivers_every_message_across_the_nodes(tmp_path: Path) -> None:
    brokers = ["hookmq", "hookmq:x2", "hookmq:n2"]
    workloads = [Workload("pairs", clients=3, messages=20, qos=1), Workload("fanout", clients=2, messages=10)]

    comparison = run_comparison(brokers, workloads, OPTIONS)
    markdown = write_outputs(comparison, brokers, tmp_path, {"command": "test"})

    assert comparison.unavailable == {}
    assert sorted((r.broker, r.workload, r.received, r.complete) for r in comparison.results) == [
        ("hookmq", "fanout q0 1->2 x10", 20, True),
        ("hookmq", "pairs q1 3x20", 60, True),
        ("hookmq:n2", "fanout q0 1->2 x10", 20, True),
        ("hookmq:n2", "pairs q1 3x20", 60, True),
        ("hookmq:x2", "fanout q0 1->2 x10", 20, True),
        ("hookmq:x2", "pairs q1 3x20", 60, True),
    ]
    assert "| hookmq:x2/hookmq | hookmq:n2/hookmq |" in markdown.splitlines()[0]
    assert "2 nodes" in comparison.versions["hookmq:x2"]

