"""``hookmq bench crosscheck``: the device workloads driven by two independent load generators.

For each device workload and round, each broker is started afresh and driven twice, by the
bench's own client and by paho-mqtt (separate processes of a few clients each), the order of
brokers and of drivers alternating from one round to the next. The table gives
hookmq/mosquitto for each driver side by side, so a figure never rests on one client alone.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import report
from .brokers import BrokerUnavailable, start_broker
from .compare import rotated
from .paho_driver import CLIENTS_PER_PROCESS, run_paho_workload
from .placement import split_cluster
from .runner import RunOptions, Target, run_workload
from .workloads import Workload, WorkloadResult

DRIVERS = ("bench", "paho")
Driver = Callable[[Workload, Target, RunOptions], WorkloadResult]


@dataclass(slots=True)
class CrossCheck:
    """Results per driver, and the brokers that could not run."""

    results: dict[str, list[WorkloadResult]] = field(default_factory=lambda: {d: [] for d in DRIVERS})
    unavailable: dict[str, str] = field(default_factory=dict)


def run_crosscheck(
    brokers: Sequence[str],
    workloads: Sequence[Workload],
    options: RunOptions,
    rounds: int,
    per_process: int = CLIENTS_PER_PROCESS,
    nodelay: bool = True,
) -> CrossCheck:
    """Run every device workload with both drivers against every broker, ``rounds`` times."""
    drivers: dict[str, Driver] = {
        "bench": run_workload,
        "paho": lambda w, t, o: run_paho_workload(w, t, o, per_process, nodelay),
    }
    check = CrossCheck()
    turn = 0
    with tempfile.TemporaryDirectory(prefix="hookmq-crosscheck-") as scratch:
        for workload in workloads:
            for round_index in range(rounds):
                for name in rotated(brokers, turn):
                    if name in check.unavailable:
                        continue
                    if split_cluster(name) is not None:
                        # paho's driver connects every client to one port: the placement would be lost.
                        check.unavailable[name] = "a cluster is measured by compare, not crosscheck (one port only)"
                        continue
                    try:
                        broker = start_broker(name, Path(scratch))
                    except BrokerUnavailable as error:
                        check.unavailable[name] = str(error)
                        continue
                    try:
                        for driver in rotated(DRIVERS, turn):
                            result = drivers[driver](workload, broker.target, options)
                            result.round = round_index
                            check.results[driver].append(result)
                            _say(f"{name:10} {driver:6} {workload.name:24} {_line(result)}")
                    finally:
                        broker.stop()
                turn += 1
    return check


def _line(result: WorkloadResult) -> str:
    text = f"{result.wall_s:.3f} s"
    broker, loadgen = result.metrics.get("broker_cpu_share"), result.metrics.get("loadgen_cpu_share")
    if broker is not None and loadgen is not None:
        text += f" (cores busy: broker {broker:.2f}, load generator {loadgen:.2f})"
    if result.round:
        text += f" [round {result.round + 1}]"
    return text if result.complete else f"{text} {report.INCOMPLETE} ({result.received}/{result.expected})"


def crosscheck_table(check: CrossCheck, peer: str = "mosquitto") -> str:
    """hookmq/peer wall time and broker CPU per driver: medians of per-round ratios, with ranges."""
    header = (
        f"| workload | wall hookmq/{peer}, bench client | wall hookmq/{peer}, paho-mqtt "
        f"| broker CPU hookmq/{peer}, bench client | broker CPU hookmq/{peer}, paho-mqtt "
        f"| wall s hookmq / {peer} (bench) | wall s hookmq / {peer} (paho) |"
    )
    lines = [header, "|" + "---|" * 7]
    grouped = {driver: report.group_runs(check.results[driver]) for driver in DRIVERS}
    names = list(dict.fromkeys(r.workload for driver in DRIVERS for r in check.results[driver]))
    for name in names:
        cells = [name]
        for key in ("wall_s", "broker_cpu_s"):
            for driver in DRIVERS:
                ours = grouped[driver].get((name, "hookmq"), [])
                theirs = grouped[driver].get((name, peer), [])
                cells.append(report.format_ratios(report.round_ratios(ours, theirs, key)))
        for driver in DRIVERS:
            walls = [
                report.format_number(report.median_of(grouped[driver].get((name, broker), []), "wall_s"))
                for broker in ("hookmq", peer)
            ]
            cells.append(" / ".join(walls))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def crosscheck_markdown(check: CrossCheck) -> str:
    """The side-by-side table, the CPU table of each driver, and the notes."""
    every = [r for driver in DRIVERS for r in check.results[driver]]
    parts = [crosscheck_table(check)]
    for driver in DRIVERS:
        parts.append(f"\nCPU in the timed phase, {driver} driver (medians over the rounds):\n")
        parts.append(report.cpu_table(check.results[driver]))
    parts.append(report.notes(every, check.unavailable))
    return "".join(parts)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
