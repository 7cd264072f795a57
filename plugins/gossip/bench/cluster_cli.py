"""``hookmq bench cluster``: options and the run (measurement in :mod:`.cluster`, tables in :mod:`.cluster_report`).

Wired into ``hookmq bench`` by :mod:`hookmq.bench.cli` beside ``gossip``. Shares the bench's
``--quick``, ``--clients``, ``--messages``, ``--rate``, ``--duration``, ``--rounds``,
``--workers``, ``--timeout`` and ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from .cluster import PARTS, ClusterBench, ClusterSettings, measure, scratch_dir

__all__ = ["add_arguments", "run", "settings_from"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cluster`` action's own options."""
    group = parser.add_argument_group("cluster (hookmq bench cluster)")
    group.add_argument("--cluster-part", action="append", choices=PARTS,
                       help="what to measure, repeatable (default: all five)")
    group.add_argument("--join-filters", type=int, help="filters of the joining node (default 100000; quick 200)")
    group.add_argument("--takeover-trials", type=int, help="reconnects per takeover case (default 20)")
    group.add_argument("--scale-sizes", type=int, nargs="+", help="cluster sizes of the scale-out part (1 2 3)")
    group.add_argument("--chart", type=Path, help="cluster: also write the SVG chart here (e.g. docs/images/…)")


def settings_from(args: argparse.Namespace) -> ClusterSettings:
    """The defaults (or ``--quick``'s) with the size flags applied."""
    workers = args.workers if args.workers else 2
    base = ClusterSettings.quick(workers=min(workers, 2)) if args.quick else ClusterSettings(workers=workers)
    changes: dict[str, object] = {}
    for flag, name in (("clients", "clients"), ("messages", "messages"), ("rate", "rate"), ("duration", "duration"),
                       ("rounds", "rounds"), ("join_filters", "join_filters"), ("takeover_trials", "takeover_trials")):
        value = getattr(args, flag, None)
        if value is not None:
            changes[name] = value
    if args.qos is not None:
        changes["qos_levels"] = (args.qos,)
    if args.scale_sizes:
        changes["scale_sizes"] = tuple(args.scale_sizes)
    if args.timeout != 90.0:
        changes["timeout"] = args.timeout
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    """Measure, print the Markdown, write ``cluster-<time>.md/.json/.svg`` to ``--out``; 0 if every row completed."""
    from hookmq.bench.sysinfo import machine

    from .cluster_report import markdown, write_chart

    settings = settings_from(args)
    parts = args.cluster_part or list(PARTS)
    command = "hookmq bench " + " ".join(shlex.quote(a) for a in sys.argv[sys.argv.index("cluster"):]) \
        if "cluster" in sys.argv else "hookmq bench cluster"
    with scratch_dir() as workdir:
        bench: ClusterBench = measure(workdir, settings, parts, progress=_say)
    document = markdown(bench, command, machine())
    print(document)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / time.strftime("cluster-%Y%m%d-%H%M%S")
    Path(f"{stem}.md").write_text(document)
    Path(f"{stem}.json").write_text(json.dumps({"command": command, "machine": machine(), **bench.as_json()},
                                               indent=2) + "\n")
    problem = None
    for chart in (Path(f"{stem}.svg"), *((args.chart,) if args.chart else ())):
        problem = write_chart(chart, bench)
    _say(f"wrote {stem}.md, {stem}.json" + (f" ({problem})" if problem else f", {stem}.svg"))
    complete = bool(bench.rows) and all(row.complete for row in bench.rows) and not bench.errors
    return 0 if complete else 1


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
