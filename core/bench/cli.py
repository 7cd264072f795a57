"""``hookmq bench``: drive a broker by URL, or ``hookmq bench compare`` three brokers side by side.

Wired lazily into the ``hookmq`` command (``add_arguments`` / ``run``), and runnable on its own
as ``python -m hookmq.bench``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import report
from .brokers import AMQTT_VERSION, BROKERS, add_hookmq_build, known_broker
from .compare import run_comparison, write_outputs
from .crosscheck import crosscheck_markdown, run_crosscheck
from .paho_driver import CLIENTS_PER_PROCESS
from .runner import RunOptions, Target, run_workload
from .suites import DEVICE_ROUNDS, suite
from .sysinfo import machine
from .workloads import KINDS, Workload, WorkloadResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser``."""
    parser.description = (
        "Benchmark an MQTT broker. 'run' (the default) drives the broker at --url; "
        "'compare' starts hookmq, mosquitto and amqtt and runs the same workloads against each; "
        "'crosscheck' runs the device workloads against hookmq and mosquitto with the bench's own "
        "client and with paho-mqtt, side by side; "
        "'gossip' measures cluster failure detection (simulation, real processes, under MQTT load); "
        "'cluster' measures cross-node throughput and latency, scale-out, join and takeover times."
    )
    gossip = _gossip_cli()
    cluster = _cluster_cli()
    actions = ("run", "compare", "crosscheck", *(("gossip", "cluster") if gossip is not None else ()))
    parser.add_argument("action", nargs="?", choices=actions, default="run", help="default: run")
    what = parser.add_argument_group("what to run")
    what.add_argument(
        "--workload", action="append", choices=(*KINDS, "all"), metavar="KIND",
        help=f"workload kind, repeatable: {', '.join(KINDS)} or all (default: all)",
    )
    what.add_argument("--quick", action="store_true", help="the small standard sizes (seconds, not minutes)")
    what.add_argument("--clients", type=_positive, help="clients (pairs, filters, latency) or fan-out/fan-in width")
    what.add_argument("--messages", type=_positive, help="messages per publisher")
    what.add_argument("--qos", type=int, choices=(0, 1, 2), help="QoS of every publish and subscription")
    what.add_argument("--filters", type=_positive_or_zero, help="unrelated subscriptions (filters workload)")
    what.add_argument("--connections", type=_positive, help="idle connections (connections workload)")
    what.add_argument("--rate", type=float, help="total messages per second (latency workload)")
    what.add_argument("--duration", type=float, help="seconds (latency workload)")
    how = parser.add_argument_group("how")
    how.add_argument("--url", default="mqtt://127.0.0.1:1883", help="broker to drive (run): mqtt://host:port")
    how.add_argument("--broker-pid", type=int, help="broker PID, to read its memory (connections workload)")
    how.add_argument("--workers", type=_positive, default=max(1, os.cpu_count() or 1), help="load processes")
    how.add_argument("--mqtt-version", type=int, choices=(4, 5), default=4, help="protocol level (4 = 3.1.1)")
    how.add_argument("--payload", type=_positive_or_zero, default=64, help="payload bytes (default 64)")
    how.add_argument("--window", type=_positive, default=20, help="QoS 1/2 messages in flight per client (not device)")
    how.add_argument(
        "--per-packet", action="store_true",
        help="pairs/fanout/fanin/filters: write every packet on its own (device workloads always do)",
    )
    how.add_argument(
        "--timed-connect", action="store_true",
        help="pairs/filters: connect and subscribe inside the timed phase (device workloads always do)",
    )
    how.add_argument("--timeout", type=float, default=90.0, help="seconds allowed for each timed phase")
    how.add_argument("--setup-timeout", type=float, default=120.0, help="seconds allowed to connect and subscribe")
    how.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, help="run: also write the results as JSON to this file")
    out.add_argument("--out", type=Path, default=_default_out_dir(), help="compare: results folder")
    out.add_argument(
        "--brokers", default=",".join(BROKERS),
        help="compare: comma-separated brokers: hookmq, mosquitto, amqtt, or hookmq@PYTHON "
        "(hookmq run by another interpreter or virtual environment); a :wN suffix (hookmq:w2) runs it with N workers; "
        "hookmq:xN is N cluster nodes with the publishers on node 1 and the subscribers on the others (cross-node), "
        "hookmq:nN N nodes with the clients in turn on each (scale-out)",
    )
    out.add_argument(
        "--baseline-hookmq", metavar="PYTHON",
        help="compare: also run the hookmq of this interpreter (or virtual environment folder) as 'baseline', "
        "alternating with the others; the table gains a hookmq/baseline column",
    )
    out.add_argument("--amqtt-version", default=AMQTT_VERSION, help="compare: amqtt version to install")
    out.add_argument(
        "--rounds", type=_positive,
        help="compare: rounds of every workload, brokers alternating (default: 3 for device and connections, else 1)",
    )
    out.add_argument("--amqtt-rounds", type=_positive, default=1, help="compare: rounds amqtt joins (default 1)")
    out.add_argument(
        "--amqtt-device", action="store_true",
        help="compare: run amqtt on the device workloads too (about 4 minutes more)",
    )
    out.add_argument(
        "--paho-clients-per-process", type=_positive, default=CLIENTS_PER_PROCESS,
        help=f"crosscheck: paho-mqtt clients per load process (default {CLIENTS_PER_PROCESS})",
    )
    out.add_argument(
        "--paho-nagle", action="store_true",
        help="crosscheck: leave Nagle's algorithm on in the paho clients (paho's own default; "
        "the bench client, asyncio and Go clients turn it off)",
    )
    if gossip is not None:
        gossip.add_arguments(parser)
    if cluster is not None:
        cluster.add_arguments(parser)


def _cluster_cli() -> Any:
    """The gossip plugin's ``bench cluster`` command, or None without the plugin."""
    try:
        from hookmq.plugins.gossip.bench import cluster_cli
    except ImportError:
        return None
    return cluster_cli


def _gossip_cli() -> Any:
    """The gossip plugin's bench command, or None without the plugin (``hookmq[gossip]``)."""
    try:
        from hookmq.plugins.gossip.bench import cli
    except ImportError:
        return None
    return cli


def run(args: argparse.Namespace) -> int:
    """Execute ``hookmq bench``; 0 when every run delivered every message."""
    options = RunOptions(
        workers=args.workers,
        level=args.mqtt_version,
        payload=args.payload,
        window=args.window,
        setup_timeout=args.setup_timeout,
        run_timeout=args.timeout,
        progress=not args.no_progress,
        per_packet=args.per_packet,
        timed_connect=args.timed_connect,
    )
    if args.action == "gossip":
        return int(_gossip_cli().run(args))
    if args.action == "cluster":
        return int(_cluster_cli().run(args))
    workloads = selected_workloads(args)
    if args.action == "compare":
        return _compare(args, workloads, options)
    if args.action == "crosscheck":
        return _crosscheck(args, workloads, options)
    return _run(args, workloads, options)


def selected_workloads(args: argparse.Namespace) -> list[Workload]:
    """The standard suite filtered by ``--workload``, with the size flags applied, duplicates dropped."""
    kinds = tuple(k for k in args.workload or () if k != "all")
    chosen: list[Workload] = []
    for workload in suite(args.quick, kinds):
        changed = _override(workload, args)
        if changed not in chosen:
            chosen.append(changed)
    return chosen


def _override(workload: Workload, args: argparse.Namespace) -> Workload:
    changes: dict[str, object] = {}
    if workload.kind == "connections":
        if args.connections:
            changes["clients"] = args.connections
    elif args.clients:
        changes["clients"] = args.clients
    for name in ("messages", "qos", "rate", "duration"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if workload.kind == "filters" and args.filters is not None:
        changes["filters"] = args.filters
    return dataclasses.replace(workload, **changes)  # type: ignore[arg-type]


def _run(args: argparse.Namespace, workloads: Sequence[Workload], options: RunOptions) -> int:
    target = Target.from_url(args.url, pid=args.broker_pid)
    results: list[WorkloadResult] = []
    for workload in workloads:
        result = run_workload(workload, target, options)
        results.append(result)
        print(f"{workload.name}: {result.received}/{result.expected}", file=sys.stderr, flush=True)
    print(report.markdown_table(results, [target.name]))
    print(report.client_rates_table(results))
    print(report.cpu_table(results))
    print(report.notes(results, {}), end="")
    if args.json:
        report.write_json(args.json, results, {"target": args.url, "machine": machine()})
    return 0 if all(r.complete for r in results) else 1


def _compare(args: argparse.Namespace, workloads: Sequence[Workload], options: RunOptions) -> int:
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    if args.baseline_hookmq:
        add_hookmq_build("baseline", args.baseline_hookmq)
        brokers.append("baseline")
    unknown = sorted(b for b in set(brokers) if not known_broker(b))
    if unknown:
        print(f"hookmq bench: unknown broker(s) {', '.join(unknown)}; choose from {', '.join(BROKERS)} "
              "or hookmq@PYTHON, hookmq:wN, hookmq:xN, hookmq:nN (N >= 2 for a cluster)", file=sys.stderr)
        return 2
    comparison = run_comparison(
        brokers, workloads, options, args.amqtt_version, args.rounds, args.amqtt_rounds, args.amqtt_device
    )
    meta = {"argv": sys.argv, "options": dataclasses.asdict(options)}
    print(write_outputs(comparison, brokers, args.out, json.loads(json.dumps(meta, default=str))))
    return 0 if comparison.results else 1


def _crosscheck(args: argparse.Namespace, workloads: Sequence[Workload], options: RunOptions) -> int:
    if args.workload and any(kind not in ("device", "all") for kind in args.workload):
        print("hookmq bench crosscheck: only device workloads can be cross-checked", file=sys.stderr)
        return 2
    devices = [w for w in workloads if w.kind == "device"]
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip() and b.strip() != "amqtt"]
    check = run_crosscheck(
        brokers, devices, options, args.rounds or DEVICE_ROUNDS, args.paho_clients_per_process, not args.paho_nagle
    )
    markdown = crosscheck_markdown(check)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / time.strftime("crosscheck-%Y%m%d-%H%M%S")
    Path(f"{stem}.md").write_text(markdown)
    every = [r for results in check.results.values() for r in results]
    meta = {"argv": sys.argv, "options": dataclasses.asdict(options), "machine": machine()}
    report.write_json(Path(f"{stem}.json"), every, json.loads(json.dumps(meta, default=str)))
    print(markdown)
    print(f"wrote {stem}.md, {stem}.json", file=sys.stderr)
    complete = bool(every) and all(r.complete for r in every)
    return 0 if complete else 1


def _default_out_dir() -> Path:
    # From a source checkout, results go to <repo>/bench/results (gitignored).
    checkout = Path(__file__).resolve().parents[2] / "bench" / "results"
    return checkout if checkout.parent.is_dir() else Path.cwd() / "bench-results"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_or_zero(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hookmq.bench``."""
    parser = argparse.ArgumentParser(prog="python -m hookmq.bench")
    add_arguments(parser)
    return run(parser.parse_args(argv))
