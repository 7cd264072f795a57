"""``hookmq bench`` argument handling, and one real end-to-end run of the command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hookmq.bench import cli
from hookmq.bench.runner import Target
from hookmq.bench.workloads import Workload


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_default_action_is_run_over_the_whole_suite() -> None:
    args = _parse()

    assert args.action == "run"
    assert {w.kind for w in cli.selected_workloads(args)} == {
        "pairs", "device", "fanout", "fanin", "filters", "connections", "latency"
    }


def test_size_flags_override_and_deduplicate() -> None:
    args = _parse("--workload", "pairs", "--clients", "3", "--messages", "7", "--qos", "1", "--quick")

    assert cli.selected_workloads(args) == [Workload("pairs", clients=3, messages=7, qos=1)]


def test_connections_flag_only_sizes_the_connections_workload() -> None:
    args = _parse("--workload", "connections", "--workload", "fanout", "--connections", "9", "--clients", "4")

    chosen = cli.selected_workloads(args)

    assert Workload("connections", clients=9) in chosen
    assert all(w.clients == 4 for w in chosen if w.kind == "fanout")


def test_compare_rejects_unknown_brokers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(_parse("compare", "--brokers", "mosquitto,nanomq", "--quick", "--workload", "pairs")) == 2
    assert "nanomq" in capsys.readouterr().err


def test_url_parsing() -> None:
    assert Target.from_url("mqtt://10.0.0.2:1884") == Target("10.0.0.2", "10.0.0.2", 1884)
    assert Target.from_url("127.0.0.1").port == 1883
    with pytest.raises(ValueError, match="scheme"):
        Target.from_url("ws://127.0.0.1:8080")


def test_python_m_hookmq_bench_runs_against_mosquitto(mosquitto_target: Target, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    command = [
        sys.executable, "-m", "hookmq.bench", "--url", f"mqtt://127.0.0.1:{mosquitto_target.port}",
        "--workload", "fanin", "--clients", "3", "--messages", "10", "--qos", "1", "--quick",
        "--no-progress", "--json", str(out),
    ]

    done = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "| fanin q1 3->1 x10 | msg/s ↑ |" in done.stdout
    (result,) = json.loads(out.read_text())["results"]
    assert (result["expected"], result["received"], result["complete"]) == (30, 30, True)
