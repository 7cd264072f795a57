"""Render benchmark results: a Markdown table with hookmq ratios, JSON, and a PNG chart.

A workload measured in several rounds (alternating brokers) shows each broker's median, and
the ratio column shows the median of the per-round ratios with their range: ``2.41 (2.30–2.62)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

from .workloads import WorkloadResult


@dataclass(frozen=True, slots=True)
class Headline:
    """A figure shown in the comparison table for one kind of workload."""

    key: str
    label: str
    higher_is_better: bool


HEADLINES: dict[str, tuple[Headline, ...]] = {
    "pairs": (Headline("msg_per_s", "msg/s", True),),
    # Broker CPU seconds for the same messages: the ratio that holds on a busy machine too.
    "device": (Headline("wall_s", "wall s", False), Headline("broker_cpu_s", "broker CPU s", False)),
    "fanout": (Headline("msg_per_s", "msg/s", True),),
    "fanin": (Headline("msg_per_s", "msg/s", True),),
    "filters": (Headline("msg_per_s", "msg/s", True),),
    "connections": (
        Headline("connect_per_s", "connections/s", True),
        Headline("rss_per_conn_kib", "KiB RSS per idle connection", False),
    ),
    "latency": (
        Headline("p50_ms", "p50 ms", False),
        Headline("p99_ms", "p99 ms", False),
        Headline("p999_ms", "p99.9 ms", False),
    ),
}
INCOMPLETE = "†"


def format_number(value: float | None) -> str:
    """Three significant figures, thousands separated; ``-`` when missing."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


Runs = list[WorkloadResult]


def median_of(runs: Runs, key: str) -> float | None:
    """The median of a figure over the rounds that have it."""
    values = [value for run in runs if (value := run.metrics.get(key)) is not None]
    return median(values) if values else None


def _cell(runs: Runs, key: str) -> str:
    if not runs:
        return "n/a"
    text = format_number(median_of(runs, key))
    return text if all(run.complete for run in runs) else f"{text} {INCOMPLETE}"


def round_ratios(ours: Runs, theirs: Runs, key: str) -> list[float]:
    """hookmq's figure over the peer's, one per round both measured (same round = minutes apart)."""
    peer = {run.round: run.metrics.get(key) for run in theirs}
    ratios = []
    for run in ours:
        mine, other = run.metrics.get(key), peer.get(run.round)
        if mine and other:
            ratios.append(mine / other)
    return ratios


def format_ratios(ratios: Sequence[float]) -> str:
    """``1.67`` for one round; ``1.67 (1.53–1.78)``: median and range, for several."""
    if not ratios:
        return "-"
    if len(ratios) == 1:
        return f"{ratios[0]:.2f}"
    return f"{median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


def _ratio(ours: Runs, theirs: Runs, key: str) -> str:
    return format_ratios(round_ratios(ours, theirs, key))


def group_runs(results: Sequence[WorkloadResult]) -> dict[tuple[str, str], Runs]:
    """The rounds of each (workload, broker), in the order they ran."""
    grouped: dict[tuple[str, str], Runs] = {}
    for result in results:
        grouped.setdefault((result.workload, result.broker), []).append(result)
    return grouped


#: hookmq run another way (``hookmq:w2`` workers, ``hookmq:x2``/``hookmq:n2`` a cluster).
VARIANT_PREFIX = "hookmq:"
OTHER_BROKERS = ("mosquitto", "amqtt")


def ratio_columns(brokers: Sequence[str]) -> list[tuple[str, str]]:
    """The (ours, theirs) ratio columns: ``hookmq/<peer>`` for every other broker or build, then each variant
    (``hookmq:w2``, ``hookmq:x2`` …) over ``hookmq``, then each variant over mosquitto and amqtt."""
    variants = [b for b in brokers if b.startswith(VARIANT_PREFIX)]
    single = "hookmq" in brokers
    columns = [("hookmq", peer) for peer in brokers if single and peer != "hookmq" and peer not in variants]
    columns += [(variant, "hookmq") for variant in variants if single]
    columns += [(variant, peer) for variant in variants for peer in brokers if peer in OTHER_BROKERS]
    return columns


def markdown_table(results: Sequence[WorkloadResult], brokers: Sequence[str]) -> str:
    """One row per workload figure; a ratio column per pair of :func:`ratio_columns`."""
    extra = ratio_columns(brokers)
    header = ["workload", "figure", *brokers, *(f"{a}/{b}" for a, b in extra)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_key = group_runs(results)
    for workload, kind in _workloads_in_order(results):
        for headline in HEADLINES[kind]:
            arrow = "↑" if headline.higher_is_better else "↓"
            row = [workload, f"{headline.label} {arrow}"]
            row += [_cell(by_key.get((workload, broker), []), headline.key) for broker in brokers]
            row += [_ratio(by_key.get((workload, a), []), by_key.get((workload, b), []), headline.key) for a, b in extra]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def cpu_table(results: Sequence[WorkloadResult]) -> str:
    """Per workload and broker: CPU seconds of the broker and of the load generator in the timed phase.

    Shares are of the wall time, in cores: a broker near 1.00 is what limits the run (both
    brokers are single-threaded); a load generator near the cores the broker leaves it would
    be the limit instead. Medians over the rounds.
    """
    lines = [
        "| workload | broker | rounds | wall s | broker CPU s | broker cores | load generator CPU s | load generator cores |",
        "|" + "---|" * 8,
    ]
    for (workload, broker), runs in group_runs(results).items():
        if median_of(runs, "loadgen_cpu_s") is None:
            continue
        cells = [
            format_number(median_of(runs, key))
            for key in ("wall_s", "broker_cpu_s", "broker_cpu_share", "loadgen_cpu_s", "loadgen_cpu_share")
        ]
        lines.append(f"| {workload} | {broker} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _workloads_in_order(results: Sequence[WorkloadResult]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for result in results:
        seen.setdefault(result.workload, result.kind)
    return list(seen.items())


def notes(results: Sequence[WorkloadResult], unavailable: dict[str, str]) -> str:
    """Footnotes: incomplete runs with their first error, and brokers that could not run."""
    lines = [f"- {name}: not measured: {reason}" for name, reason in unavailable.items()]
    for result in results:
        if not result.complete:
            why = result.errors[0] if result.errors else "timed out"
            which = f" (round {result.round + 1})" if result.round else ""
            lines.append(
                f"- {INCOMPLETE} {result.broker}, {result.workload}{which}: {result.received} of {result.expected} "
                f"({why}); the figure is computed from what arrived"
            )
    return "\n".join(lines) + ("\n" if lines else "")


def client_rates_table(results: Sequence[WorkloadResult]) -> str:
    """mqtt-stresser style per-client publish/receive rates (fastest, median, slowest)."""
    header = "| broker | workload | publish fastest | median | slowest | receive fastest | median | slowest |"
    lines = [header, "|" + "---|" * 8]
    keys = ("publish_fastest", "publish_median", "publish_slowest", "receive_fastest", "receive_median", "receive_slowest")
    for result in results:
        if "publish_median" in result.metrics and result.round == 0:
            cells = [format_number(result.metrics.get(key)) for key in keys]
            lines.append(f"| {result.broker} | {result.workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_json(path: Path, results: Sequence[WorkloadResult], meta: dict[str, Any]) -> None:
    """Everything measured, with the machine and the options, as JSON."""
    document = {**meta, "results": [asdict(result) for result in results]}
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_chart(path: Path, results: Sequence[WorkloadResult], brokers: Sequence[str]) -> str | None:
    """A PNG with one small bar chart per table row; returns why not if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        return f"no chart: matplotlib is not installed ({error}); pip install matplotlib"
    rows = [
        (workload, headline)
        for workload, kind in _workloads_in_order(results)
        for headline in HEADLINES[kind]
    ]
    by_key = group_runs(results)
    columns = 4
    count = max(1, len(rows))
    figure, axes = plt.subplots(
        -(-count // columns), columns, figsize=(4 * columns, 2.6 * -(-count // columns)), squeeze=False
    )
    for axis, (workload, headline) in zip(axes.flat, rows, strict=False):
        values = [_value(by_key.get((workload, b), []), headline.key) for b in brokers]
        axis.bar(brokers, values, color=["#2a9d8f", "#e9c46a", "#e76f51", "#264653"][: len(brokers)])
        arrow = "higher is better" if headline.higher_is_better else "lower is better"
        axis.set_title(f"{workload}\n{headline.label} ({arrow})", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(rows) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def _value(runs: Runs, key: str) -> float:
    value = median_of(runs, key)
    return float(value) if value else 0.0
