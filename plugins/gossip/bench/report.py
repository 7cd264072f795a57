"""Markdown tables of the gossip measurements, as docs/cluster.md shows them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .load import LoadRun
from .trials import DetectionRun

__all__ = ["load_table", "processes_table"]


def _figures(values: Sequence[float]) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{ordered[0]:.2f} / {statistics.median(ordered):.2f} / {p90:.2f} / {ordered[-1]:.2f}"


def processes_table(runs: Sequence[DetectionRun]) -> str:
    """Kill and graceful-stop trials: one row per implementation and cluster size."""
    rows = [
        "| nodes | implementation | kill -9 trials | failure reports: min / median / p90 / max (s) | first survivor: median / max (s) "
        "| missing | wrong kind | graceful stops | leave reports: median / max (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(run.size, run.implementation) for run in runs}, key=lambda key: (key[0], key[1] != "hookmq"))
    for size, implementation in keys:
        kills = [r for r in runs if (r.size, r.implementation, r.mode) == (size, implementation, "kill")]
        leaves = [r for r in runs if (r.size, r.implementation, r.mode) == (size, implementation, "leave")]
        kill_delays = [d for r in kills for d in r.delays()]
        firsts = [d for r in kills for d in r.firsts()]
        leave_delays = [d for r in leaves for d in r.delays()]
        first = f"{statistics.median(firsts):.2f} / {max(firsts):.2f}" if firsts else "–"
        leave = f"{statistics.median(leave_delays):.2f} / {max(leave_delays):.2f}" if leave_delays else "–"
        rows.append(
            f"| {size} | {implementation} | {sum(len(r.trials) for r in kills)} | {_figures(kill_delays)} ({len(kill_delays)}) "
            f"| {first} | {sum(r.missing() for r in kills + leaves)} | {sum(r.wrong() for r in kills + leaves)} "
            f"| {sum(len(r.trials) for r in leaves)} | {leave} |"
        )
    return "\n".join(rows)


def load_table(runs: Sequence[LoadRun]) -> str:
    """One row per runner: the load achieved, the kills' reports, and every live node accused."""
    rows = [
        "| membership runs in | seconds | MQTT load on A: rounds, messages, median msg/s | kills of C | "
        "reports by A and B: median / max (s) | missing | live nodes declared failed | failed probes of live nodes "
        "| refutations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        delays = run.delays()
        figures = f"{statistics.median(delays):.2f} / {max(delays):.2f}" if delays else "–"
        rate = f"{statistics.median(run.rates):,.0f}" if run.rates else "–"
        where = "its own thread" if run.runner == "thread" else "the broker's loop"
        rows.append(
            f"| {where} (`{run.runner}`) | {run.seconds:.0f} | {run.rounds}, {run.messages:,}, {rate} | {len(run.kills)} "
            f"| {figures} | {run.missing()} | {len(run.false_failures)} | {run.false_suspicions} | {run.refutations} |"
        )
    return "\n".join(rows)
