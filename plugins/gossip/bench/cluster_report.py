"""The tables, the targets and the chart of ``hookmq bench cluster`` (see :mod:`.cluster`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from .cluster import ClusterBench

__all__ = ["TARGETS", "Target", "markdown", "targets", "write_chart"]


@dataclass(frozen=True, slots=True)
class Target:
    """One of issue 16's targets: a ratio of a cluster case to its baseline, and the bound it must meet."""

    label: str
    part: str
    case: str
    baseline: str
    key: str
    bound: float
    at_least: bool

    def check(self, bench: ClusterBench) -> tuple[float | None, bool | None]:
        """The median ratio over the rounds and whether it meets the bound (None, None: not measured)."""
        ratios = bench.ratios(self.part, self.case, self.baseline, self.key)
        if not ratios:
            return None, None
        value = median(ratios)
        return value, value >= self.bound if self.at_least else value <= self.bound


TARGETS = (
    Target("cross-node throughput q0 ≥ 0.7 × one node", "throughput q0", "cross-node", "one node", "msg_per_s", 0.7, True),
    Target("cross-node throughput q1 ≥ 0.7 × one node", "throughput q1", "cross-node", "one node", "msg_per_s", 0.7, True),
    Target("cross-node p99 latency q0 ≤ 2 × one node", "latency q0", "cross-node", "one node", "p99_ms", 2.0, False),
    Target("cross-node p99 latency q1 ≤ 2 × one node", "latency q1", "cross-node", "one node", "p99_ms", 2.0, False),
    Target("two-node scale-out ≥ 1.5 × one node (where the cores allow)", "scale-out", "2 nodes", "1 node",
           "msg_per_s", 1.5, True),
)


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio_cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def _parts(bench: ClusterBench, prefix: str) -> list[str]:
    seen: list[str] = []
    for row in bench.rows:
        if row.part.startswith(prefix) and row.part not in seen:
            seen.append(row.part)
    return seen


def _incomplete(bench: ClusterBench, part: str, case: str) -> str:
    rows = [r for r in bench.rows if r.part == part and r.case == case]
    return " †" if any(not r.complete for r in rows) else ""


def _delivered(bench: ClusterBench, part: str, case: str) -> str:
    """Messages received of those sent, over every round (QoS 0 beyond a link's send buffer is dropped)."""
    rows = [r for r in bench.rows if r.part == part and r.case == case and r.figures.get("expected")]
    if not rows:
        return "-"
    received = sum(r.figures.get("received", 0.0) for r in rows)
    expected = sum(r.figures["expected"] for r in rows)
    return f"{100 * received / expected:.1f} %"


def targets(bench: ClusterBench) -> list[tuple[Target, float | None, bool | None]]:
    """Every target with its measured ratio and verdict."""
    return [(target, *target.check(bench)) for target in TARGETS]


def markdown(bench: ClusterBench, command: str, machine: Mapping[str, object]) -> str:
    """The whole report: settings, one table per part, the targets, footnotes."""
    s = bench.settings
    described = ", ".join(f"{key} {value}" for key, value in machine.items())
    lines = [
        f"Command: `{command}`", "",
        f"Machine: {described}; {bench.cores} cores available to the run. Every node a hookmq process on 127.0.0.1 "
        f"(membership in its own thread); load from {s.workers} bench worker process(es) on the same cores. "
        f"Medians over {s.rounds} round(s), the cases alternating; ratios are per round, median (range).", "",
        f"### Cross-node throughput ({s.clients} publishers on node 1 → {s.clients} subscribers on node 2, "
        f"{s.messages} messages each, 64-byte payloads; one node: the same clients on a lone node)", "",
        "| QoS | one node msg/s | cross-node msg/s | cross-node / one node | cross-node delivered |",
        "|---|---|---|---|---|",
    ]
    for part in _parts(bench, "throughput"):
        lines.append(f"| {part[-1]} | {_number(bench.median(part, 'one node', 'msg_per_s'))}{_incomplete(bench, part, 'one node')} | "
                     f"{_number(bench.median(part, 'cross-node', 'msg_per_s'))}{_incomplete(bench, part, 'cross-node')} | "
                     f"{_ratio_cell(bench.ratios(part, 'cross-node', 'one node', 'msg_per_s'))} | "
                     f"{_delivered(bench, part, 'cross-node')} |")
    lines += ["", f"### Cross-node latency ({s.clients} paced publishers on node 1, {s.rate:g} msg/s in all for "
                  f"{s.duration:g} s, subscribers on node 2)", "",
              "| QoS | one node p50 / p99 ms | cross-node p50 / p99 ms | p50 ratio | p99 ratio |", "|---|---|---|---|---|"]
    for part in _parts(bench, "latency"):
        cells = []
        for case in ("one node", "cross-node"):
            cells.append(f"{_number(bench.median(part, case, 'p50_ms'))} / {_number(bench.median(part, case, 'p99_ms'))}"
                         f"{_incomplete(bench, part, case)}")
        lines.append(f"| {part[-1]} | {cells[0]} | {cells[1]} | "
                     f"{_ratio_cell(bench.ratios(part, 'cross-node', 'one node', 'p50_ms'))} | "
                     f"{_ratio_cell(bench.ratios(part, 'cross-node', 'one node', 'p99_ms'))} |")
    scale = [row.case for row in bench.rows if row.part == "scale-out"]
    if scale:
        lines += ["", f"### Scale-out (pairs q0 {s.scale_clients}x{s.scale_messages}: each client publishes to its own "
                      f"topic; clients spread round-robin over the nodes; {bench.cores} cores)", "",
                  "| nodes | aggregate msg/s | / one node |", "|---|---|---|"]
        for case in dict.fromkeys(scale):
            lines.append(f"| {case.split()[0]} | {_number(bench.median('scale-out', case, 'msg_per_s'))}"
                         f"{_incomplete(bench, 'scale-out', case)} | "
                         f"{_ratio_cell(bench.ratios('scale-out', case, '1 node', 'msg_per_s'))} |")
    joins = [row for row in bench.rows if row.part == "join"]
    if joins:
        lines += ["", f"### Join: a node restarted with {s.join_filters:,} filters (a persistent session in SQLite) "
                      "joining a running node", "",
                  "| trial | MQTT listening s | joined (seen by the other node) s | routable s |", "|---|---|---|---|"]
        for row in joins:
            f = row.figures
            lines.append(f"| {row.round + 1} | {_number(f.get('mqtt_listening_s'))} | {_number(f.get('joined_s'))} | "
                         f"{_number(f.get('routable_s'))}{'' if row.complete else ' † ' + row.note} |")
        lines += ["", "Seconds from the node's process start. *Routable*: a QoS 1 message published every 10 ms on "
                      "the other node to the last filter first arrives (its own send time counts)."]
    if any(row.part == "takeover" for row in bench.rows):
        lines += ["", f"### Takeover: a persistent v5 client reconnecting {s.takeover_trials} times (CONNECT to CONNACK, "
                      "session present)", "",
                  "| case | median ms | max ms | cross-node / one node (median) |", "|---|---|---|---|"]
        for case in ("one node", "cross-node"):
            ratio = _ratio_cell(bench.ratios("takeover", case, "one node", "median_ms")) if case == "cross-node" else "-"
            lines.append(f"| {case} (node 1 ↔ {'node 1' if case == 'one node' else 'node 2'}) | "
                         f"{_number(bench.median('takeover', case, 'median_ms'))}{_incomplete(bench, 'takeover', case)} | "
                         f"{_number(bench.median('takeover', case, 'max_ms'))} | {ratio} |")
    lines += ["", "### Issue 16's targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for target, value, met in targets(bench):
        verdict = "not measured" if met is None else ("met" if met else "missed")
        if target.part == "scale-out" and met is False and bench.cores < 3:
            verdict += f" ({bench.cores} cores shared by nodes and load: no room to scale)"
        lines.append(f"| {target.label} | {_number(value)} | {verdict} |")
    notes = [f"- † {row.part}, {row.case}, round {row.round + 1}: {row.note}" for row in bench.rows if not row.complete]
    notes += [f"- {error}" for error in bench.errors]
    if notes:
        lines += ["", *notes]
    lines += ["", f"({bench.seconds:.0f} s in all)"]
    return "\n".join(lines) + "\n"


def write_chart(path: Path, bench: ClusterBench) -> str | None:
    """A chart with one panel per part (throughput, p99, scale-out, takeover), SVG unless ``path`` names
    another format (``.png``); returns why not without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        return f"no chart: matplotlib is not installed ({error})"
    panels: list[tuple[str, list[tuple[str, float]]]] = []

    def pairs(prefix: str, key: str, title: str, scale: Callable[[float], float] = float) -> None:
        bars = [(f"{part.split()[-1]} {case}", scale(v)) for part in _parts(bench, prefix)
                for case in ("one node", "cross-node") if (v := bench.median(part, case, key)) is not None]
        if bars:
            panels.append((title, bars))

    pairs("throughput", "msg_per_s", "throughput, msg/s (higher is better)")
    pairs("latency", "p99_ms", "p99 latency, ms (lower is better)")
    scale = [(case, v) for case in dict.fromkeys(r.case for r in bench.rows if r.part == "scale-out")
             if (v := bench.median("scale-out", case, "msg_per_s")) is not None]
    if scale:
        panels.append((f"scale-out, aggregate msg/s ({bench.cores} cores)", scale))
    take = [(case, v) for case in ("one node", "cross-node") if (v := bench.median("takeover", case, "median_ms")) is not None]
    if take:
        panels.append(("takeover, median CONNACK ms (lower is better)", take))
    if not panels:
        return "no chart: nothing measured"
    figure, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    colours = ["#2a9d8f", "#e76f51", "#e9c46a", "#264653"]
    for axis, (title, bars) in zip(axes.flat, panels, strict=True):
        labels = [label for label, _ in bars]
        axis.bar(labels, [value for _, value in bars],
                 color=[colours[0] if "one" in label or label.startswith("1 ") else colours[1] for label in labels])
        axis.set_title(title, fontsize=8)
        axis.tick_params(labelsize=7)
        for label in axis.get_xticklabels():
            label.set_rotation(20)
    figure.tight_layout()
    kind = path.suffix.lstrip(".").lower() or "svg"
    figure.savefig(path, format=kind, **({"metadata": {"Date": None}} if kind == "svg" else {"dpi": 110}))
    plt.close(figure)
    return None
