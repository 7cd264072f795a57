"""``hookmq bench compare``: the same workloads against hookmq, mosquitto and amqtt in one run.

Each broker is started fresh for each workload (so memory is measured from a clean process and
no state leaks between workloads), and the order of the brokers rotates from one workload (and
round) to the next so that none always runs first on a cold machine. A workload with several
rounds runs the brokers alternately, round after round; amqtt, by far the slowest, joins only
the first ``amqtt_rounds`` of them, and the device workloads (30–60 s each for amqtt) only
when ``amqtt_device`` is set.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import report
from .brokers import AMQTT_VERSION, BrokerUnavailable, start_broker
from .runner import RunOptions, run_workload
from .sysinfo import machine
from .workloads import Workload, WorkloadResult


@dataclass(slots=True)
class Comparison:
    """What a comparison run produced."""

    results: list[WorkloadResult] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def rotated(brokers: Sequence[str], turn: int) -> list[str]:
    """``brokers`` starting at position ``turn`` (wrapping)."""
    shift = turn % len(brokers)
    return [*brokers[shift:], *brokers[:shift]]


def run_comparison(
    brokers: Sequence[str],
    workloads: Sequence[Workload],
    options: RunOptions,
    amqtt_version: str = AMQTT_VERSION,
    rounds: int | None = None,
    amqtt_rounds: int = 1,
    amqtt_device: bool = False,
) -> Comparison:
    """Run every workload against every broker; a broker that cannot start is skipped from then on.

    ``rounds`` overrides each workload's own number of rounds.
    """
    comparison = Comparison()
    turn = 0
    with tempfile.TemporaryDirectory(prefix="hookmq-bench-") as scratch:
        for workload in workloads:
            for round_index in range(rounds or workload.rounds):
                for name in rotated(brokers, turn):
                    if name in comparison.unavailable or (
                        name == "amqtt" and (round_index >= amqtt_rounds or (workload.per_packet and not amqtt_device))
                    ):
                        continue
                    result = _measure(name, workload, options, Path(scratch), amqtt_version, comparison)
                    if result is not None:
                        result.round = round_index
                        comparison.results.append(result)
                        _say(f"{name:10} {workload.name:32} {_headline(result)}")
                turn += 1
    return comparison


def _measure(
    name: str,
    workload: Workload,
    options: RunOptions,
    scratch: Path,
    amqtt_version: str,
    comparison: Comparison,
) -> WorkloadResult | None:
    try:
        broker = start_broker(name, scratch, amqtt_version)
    except BrokerUnavailable as error:
        comparison.unavailable[name] = str(error)
        _say(f"{name}: skipped for the rest of the run: {error}")
        return None
    comparison.versions[name] = broker.version
    if broker.settle > options.settle:
        options = dataclasses.replace(options, settle=broker.settle)
    try:
        return run_workload(workload, broker.target, options, broker.place)
    finally:
        broker.stop()


def _headline(result: WorkloadResult) -> str:
    figures = report.HEADLINES[result.kind]
    shown = ", ".join(f"{report.format_number(result.metrics.get(h.key))} {h.label}" for h in figures)
    broker, loadgen = result.metrics.get("broker_cpu_share"), result.metrics.get("loadgen_cpu_share")
    if broker is not None and loadgen is not None and result.kind != "connections":
        shown += f" (cores busy: broker {broker:.2f}, load generator {loadgen:.2f}"
        waited = result.metrics.get("broker_wait_s")
        if isinstance(waited, float):
            shown += f"; broker waited {waited:.2f} s for a CPU"
        sleeps, preempted = result.metrics.get("broker_sleeps"), result.metrics.get("broker_preemptions")
        if sleeps is not None and preempted is not None:
            shown += f", slept {sleeps:.0f} times, was preempted {preempted:.0f} times"
        shown += ")"
    if result.round:
        shown += f" [round {result.round + 1}]"
    return shown if result.complete else f"{shown} {report.INCOMPLETE} ({result.received}/{result.expected})"


def write_outputs(comparison: Comparison, brokers: Sequence[str], out_dir: Path, meta: dict[str, object]) -> str:
    """Write ``compare-<time>.md/.json/.png`` into ``out_dir``; return the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / time.strftime("compare-%Y%m%d-%H%M%S")
    measured = [b for b in brokers if b not in comparison.unavailable] or list(brokers)
    table = report.markdown_table(comparison.results, brokers)
    footnotes = report.notes(comparison.results, comparison.unavailable)
    versions = ", ".join(f"{name} {version}" for name, version in comparison.versions.items())
    markdown = f"{table}\n{footnotes}\nVersions: {versions}.\n"
    Path(f"{stem}.md").write_text(
        markdown
        + "\n### Per-client rates (msg/s, first round)\n\n"
        + report.client_rates_table(comparison.results)
        + "\n### CPU in the timed phase (medians over the rounds)\n\n"
        + report.cpu_table(comparison.results)
    )
    report.write_json(
        Path(f"{stem}.json"),
        comparison.results,
        {**meta, "machine": machine(), "versions": comparison.versions, "unavailable": comparison.unavailable},
    )
    problem = report.write_chart(Path(f"{stem}.png"), comparison.results, measured)
    _say(f"wrote {stem}.md, {stem}.json" + (f" ({problem})" if problem else f", {stem}.png"))
    return markdown


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
