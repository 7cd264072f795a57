"""Render benchmark results: a Markdown table with hookmq ratios, JSON, and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
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


def _cell(result: WorkloadResult | None, key: str) -> str:
    if result is None:
        return "n/a"
    text = format_number(result.metrics.get(key))
    return text if result.complete else f"{text} {INCOMPLETE}"


def _ratio(ours: WorkloadResult | None, theirs: WorkloadResult | None, key: str) -> str:
    mine = ours.metrics.get(key) if ours else None
    other = theirs.metrics.get(key) if theirs else None
    if not mine or not other:
        return "-"
    return f"{mine / other:.2f}"


def markdown_table(results: Sequence[WorkloadResult], brokers: Sequence[str]) -> str:
    """One row per workload figure; a ``hookmq/<peer>`` ratio column per peer broker."""
    peers = [b for b in brokers if b != "hookmq"] if "hookmq" in brokers else []
    header = ["workload", "figure", *brokers, *(f"hookmq/{peer}" for peer in peers)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_key = {(r.workload, r.broker): r for r in results}
    for workload, kind in _workloads_in_order(results):
        for headline in HEADLINES[kind]:
            arrow = "↑" if headline.higher_is_better else "↓"
            row = [workload, f"{headline.label} {arrow}"]
            row += [_cell(by_key.get((workload, broker)), headline.key) for broker in brokers]
            ours = by_key.get((workload, "hookmq"))
            row += [_ratio(ours, by_key.get((workload, peer)), headline.key) for peer in peers]
            lines.append("| " + " | ".join(row) + " |")
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
            lines.append(
                f"- {INCOMPLETE} {result.broker}, {result.workload}: {result.received} of {result.expected} "
                f"({why}); the figure is computed from what arrived"
            )
    return "\n".join(lines) + ("\n" if lines else "")


def client_rates_table(results: Sequence[WorkloadResult]) -> str:
    """mqtt-stresser style per-client publish/receive rates (fastest, median, slowest)."""
    header = "| broker | workload | publish fastest | median | slowest | receive fastest | median | slowest |"
    lines = [header, "|" + "---|" * 8]
    keys = ("publish_fastest", "publish_median", "publish_slowest", "receive_fastest", "receive_median", "receive_slowest")
    for result in results:
        if "publish_median" in result.metrics:
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
    by_key = {(r.workload, r.broker): r for r in results}
    columns = 4
    count = max(1, len(rows))
    figure, axes = plt.subplots(
        -(-count // columns), columns, figsize=(4 * columns, 2.6 * -(-count // columns)), squeeze=False
    )
    for axis, (workload, headline) in zip(axes.flat, rows, strict=False):
        values = [_value(by_key.get((workload, b)), headline.key) for b in brokers]
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


def _value(result: WorkloadResult | None, key: str) -> float:
    value = result.metrics.get(key) if result else None
    return float(value) if value else 0.0
