"""The comparison table: ratio columns, incomplete markers, and the JSON/PNG outputs."""

from __future__ import annotations

import json
from pathlib import Path

from hookmq.bench import report
from hookmq.bench.workloads import WorkloadResult, percentile


def _result(broker: str, rate: float | None, complete: bool = True) -> WorkloadResult:
    return WorkloadResult(
        "pairs q0 2x2", "pairs", broker, complete, 4, 4 if complete else 3, 0.5,
        metrics={"msg_per_s": rate, "publish_median": 10.0, "receive_median": 8.0},
        errors=[] if complete else ["1 client(s) failed, e.g. c1: connection lost"],
    )


def test_ratio_columns_divide_hookmq_by_each_peer() -> None:
    results = [_result("hookmq", 3000.0), _result("mosquitto", 1500.0), _result("amqtt", 300.0)]

    table = report.markdown_table(results, ["hookmq", "mosquitto", "amqtt"])

    header, _, row = table.splitlines()
    assert header == "| workload | figure | hookmq | mosquitto | amqtt | hookmq/mosquitto | hookmq/amqtt |"
    assert row == "| pairs q0 2x2 | msg/s ↑ | 3,000 | 1,500 | 300 | 2.00 | 10.00 |"


def test_hookmq_with_workers_gets_its_own_ratio_to_mosquitto() -> None:
    results = [_result("hookmq", 3000.0), _result("hookmq:w2", 4500.0), _result("mosquitto", 1500.0)]

    table = report.markdown_table(results, ["hookmq", "hookmq:w2", "mosquitto"])

    header, _, row = table.splitlines()
    assert header == ("| workload | figure | hookmq | hookmq:w2 | mosquitto | hookmq/mosquitto | hookmq:w2/hookmq "
                      "| hookmq:w2/mosquitto |")
    assert row == "| pairs q0 2x2 | msg/s ↑ | 3,000 | 4,500 | 1,500 | 2.00 | 1.50 | 3.00 |"


def test_missing_broker_and_incomplete_run_are_marked() -> None:
    results = [_result("hookmq", 3000.0), _result("amqtt", 20.0, complete=False)]

    table = report.markdown_table(results, ["hookmq", "mosquitto", "amqtt"])
    footnotes = report.notes(results, {"mosquitto": "mosquitto is not installed"})

    row = table.splitlines()[2]
    assert "| n/a |" in row
    assert f"20.0 {report.INCOMPLETE}" in row
    assert "mosquitto: not measured: mosquitto is not installed" in footnotes
    assert "amqtt, pairs q0 2x2: 3 of 4" in footnotes


def test_without_hookmq_there_are_no_ratio_columns() -> None:
    table = report.markdown_table([_result("mosquitto", 5.0)], ["mosquitto"])

    assert table.splitlines()[0] == "| workload | figure | mosquitto |"


def test_latency_rows_say_lower_is_better() -> None:
    result = WorkloadResult(
        "latency q0 10/s 1s", "latency", "hookmq", True, 10, 10, 1.0,
        metrics={"p50_ms": 0.5, "p99_ms": 1.5, "p999_ms": 2.5},
    )

    rows = report.markdown_table([result], ["hookmq"]).splitlines()[2:]

    assert [row.split(" | ")[1] for row in rows] == ["p50 ms ↓", "p99 ms ↓", "p99.9 ms ↓"]


def test_number_formatting() -> None:
    assert [report.format_number(v) for v in (None, 123456.7, 42.42, 0.1234)] == ["-", "123,457", "42.4", "0.12"]


def test_nearest_rank_percentile() -> None:
    values = list(range(1, 1001))

    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 0.999)) == (500, 990, 999)
    assert percentile([7], 0.999) == 7


def test_json_and_chart_are_written(tmp_path: Path) -> None:
    results = [_result("hookmq", 3000.0), _result("mosquitto", 1500.0)]

    report.write_json(tmp_path / "r.json", results, {"machine": {"cpus": 2}})
    problem = report.write_chart(tmp_path / "r.png", results, ["hookmq", "mosquitto"])

    document = json.loads((tmp_path / "r.json").read_text())
    assert document["machine"] == {"cpus": 2}
    assert [r["broker"] for r in document["results"]] == ["hookmq", "mosquitto"]
    if problem is None:
        assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    else:
        assert "matplotlib" in problem


def test_cluster_variants_get_ratios_to_hookmq_and_mosquitto() -> None:
    brokers = ["hookmq", "hookmq:x2", "hookmq:n2", "mosquitto"]
    results = [_result("hookmq", 3000.0), _result("hookmq:x2", 2400.0), _result("hookmq:n2", 4500.0),
               _result("mosquitto", 1500.0)]

    header, _, row = report.markdown_table(results, brokers).splitlines()

    assert header == ("| workload | figure | hookmq | hookmq:x2 | hookmq:n2 | mosquitto | hookmq/mosquitto "
                      "| hookmq:x2/hookmq | hookmq:n2/hookmq | hookmq:x2/mosquitto | hookmq:n2/mosquitto |")
    assert row == "| pairs q0 2x2 | msg/s ↑ | 3,000 | 2,400 | 4,500 | 1,500 | 2.00 | 0.80 | 1.50 | 1.60 | 3.00 |"


def test_without_hookmq_alone_a_variant_is_only_compared_with_the_other_brokers() -> None:
    assert report.ratio_columns(["hookmq:x2", "mosquitto", "amqtt"]) == [("hookmq:x2", "mosquitto"),
                                                                         ("hookmq:x2", "amqtt")]
