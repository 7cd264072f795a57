"""The real-process measurement harness: log stamps, one short kill trial, the tables, the command."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from hookmq.bench.cli import add_arguments
from hookmq.plugins.gossip.bench import cli
from hookmq.plugins.gossip.bench.load import KillReport, LoadRun, LoadSettings, _judge
from hookmq.plugins.gossip.bench.processes import parse_stamp
from hookmq.plugins.gossip.bench.report import load_table, processes_table
from hookmq.plugins.gossip.bench.trials import DetectionRun, TrialResult, hookmq_trial


def test_stamps_of_both_programs_are_read_to_the_microsecond() -> None:
    expected = datetime.datetime(2026, 12, 2, 0, 55, 9, 250000, datetime.UTC).timestamp()
    assert parse_stamp("2026-12-02T00:55:09.250+00:00") == expected  # hookmq's JSON log
    assert parse_stamp("2026-12-02T00:55:09.250000123Z") == expected  # mlnode's ts, nanoseconds
    assert parse_stamp("2026-12-02T00:55:09Z") == expected - 0.25


def test_a_two_node_kill_trial_over_real_processes(tmp_path: Path) -> None:
    # Two nodes expect no confirmation: the suspicion lasts its minimum (3 s), after a probe.
    result = hookmq_trial(tmp_path, 2, "kill", settle=0.5, wait=20.0)
    assert result.error == "" and result.wrong == []
    (delay,) = result.delays.values()
    assert delay is not None and 3.0 < delay < 18.0


def _run(size: int, implementation: str, mode: str, delays: list[list[float | None]]) -> DetectionRun:
    trials = [TrialResult(implementation, size, mode, "v", {f"s{i}": d for i, d in enumerate(row)})  # type: ignore[arg-type]
              for row in delays]
    return DetectionRun(implementation, size, mode, trials)  # type: ignore[arg-type]


def test_the_processes_table() -> None:
    runs = [
        _run(3, "memberlist", "kill", [[4.8, 4.9], [5.0, 6.0]]),
        _run(3, "hookmq", "kill", [[4.0, 4.1], [4.2, None]]),
        _run(3, "hookmq", "leave", [[0.05, 0.07]]),
    ]
    lines = processes_table(runs).splitlines()
    assert len(lines) == 4
    assert lines[2] == ("| 3 | hookmq | 2 | 4.00 / 4.10 / 4.20 / 4.20 (3) | 4.10 / 4.20 | 1 | 0 | 1 | 0.06 / 0.07 |")
    assert lines[3].startswith("| 3 | memberlist | 2 | 4.80 / 4.95 / 6.00 / 6.00 (4) | 4.90 / 5.00 | 0 | 0 | 0 | – |")


class _Log:
    def __init__(self, name: str, records: list[tuple[float, str]]) -> None:
        self.name = name
        self._records = records

    def records(self) -> list[tuple[float, str]]:
        return self._records


def test_only_live_nodes_count_as_falsely_accused() -> None:
    run = LoadRun("loop", LoadSettings(), kills=[KillReport("C1", 100.0, {"A": 4.0, "B": 4.1})])
    a = _Log("A", [
        (50.0, "Suspect B has failed, no acks received"),   # B is alive: a false suspicion
        (99.0, "Suspect C1 has failed, no acks received"),  # C1 still alive: false too
        (101.0, "Suspect C1 has failed, no acks received"),  # after its kill: true
        (104.0, "Marking C1 as failed, suspect timeout reached (1 peer confirmations)"),
        (104.0, "A node has failed: C1"),
    ])
    b = _Log("B", [(60.0, "Refuting a suspect message (from: A)"), (70.0, "A node has failed: A"), (104.1, "A node has failed: C1")])
    _judge(run, [a, b])  # type: ignore[list-item]
    assert run.false_failures == ["B: A node has failed: A"]
    assert run.false_suspicions == 2 and run.refutations == 1


def test_the_load_table() -> None:
    run = LoadRun("thread", LoadSettings(), kills=[KillReport("C1", 0.0, {"A": 4.0, "B": None})],
                  rounds=3, messages=600_000, rates=[20_000.0, 21_000.0, 19_000.0], seconds=130.0)
    lines = load_table([run]).splitlines()
    assert lines[2] == "| its own thread (`thread`) | 130 | 3, 600,000, 20,000 | 1 | 4.00 / 4.00 | 1 | 0 | 0 | 0 |"


def test_the_command_runs_the_parts_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["--part", "simulation", "--sim-sizes", "3", "--sim-losses", "0", "--sim-trials", "1",
                       "--out", str(tmp_path)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "## Simulation" in printed and "## Real processes" not in printed and "| 3 | 0% | memberlist |" in printed
    (written,) = tmp_path.glob("gossip-*.md")
    assert written.read_text().strip() in printed


def test_hookmq_bench_knows_the_gossip_action() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["gossip", "--sizes", "3", "--trials", "2", "--runners", "thread"])
    assert (args.action, args.sizes, args.trials, args.runners) == ("gossip", [3], 2, "thread")
