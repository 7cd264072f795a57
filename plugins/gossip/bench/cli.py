"""``hookmq bench gossip``: the figures of issue 13's tests 2, 3 and 5 in one run.

1. the simulation table: detection time and false positives, hookmq beside memberlist's own
   algorithm and its formulas, 3 to 200 nodes, 0 %, 5 % and 20 % packet loss;
2. real processes on loopback: kill -9 and graceful-stop trials of 3- and 5-node hookmq
   clusters, and of memberlist (the ``mlnode`` oracle) in the same run when it is built;
3. under MQTT load: one node saturated by the bench's pairs workload, one beside a CPU hog,
   membership in its own thread and in the broker's loop.

Wired into ``hookmq bench`` by :mod:`hookmq.bench.cli` (``add_arguments`` adds this group).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["PARTS", "add_arguments", "run"]

PARTS = ("simulation", "processes", "load")
DEFAULT_MLNODE = Path("build/oracles/mlnode")
#: Simulated clusters this large get fewer trials (one 200-node trial takes ~20 s).
LARGE = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``gossip`` action's options (the load part also reads --clients, --messages, --qos, --workers)."""
    group = parser.add_argument_group("gossip (hookmq bench gossip)")
    group.add_argument("--part", action="append", choices=PARTS, help="what to measure, repeatable (default: all three)")
    group.add_argument("--profile", default="local", choices=("lan", "wan", "local"), help="membership profile (local)")
    group.add_argument("--sizes", type=int, nargs="+", default=[3, 5], help="real-process cluster sizes (3 5)")
    group.add_argument("--trials", type=int, default=20, help="kill -9 trials per size and implementation (20)")
    group.add_argument("--leaves", type=int, default=5, help="graceful-stop trials per size and implementation (5)")
    group.add_argument(
        "--mlnode", type=Path, default=None,
        help=f"memberlist oracle binary for the same trials (default {DEFAULT_MLNODE} when it exists; 'none' to skip)",
    )
    group.add_argument("--sim-sizes", type=int, nargs="+", default=[3, 5, 10, 50, 200], help="simulated sizes")
    group.add_argument("--sim-losses", type=float, nargs="+", default=[0.0, 0.05, 0.20], help="simulated loss rates")
    group.add_argument("--sim-trials", type=int, default=10, help=f"simulated kills per row (sizes below {LARGE})")
    group.add_argument("--sim-large-trials", type=int, default=5, help=f"simulated kills per row ({LARGE} nodes and more)")
    group.add_argument("--load-seconds", type=float, default=120.0, help="seconds of MQTT load per runner (120)")
    group.add_argument("--runners", default="thread,loop", help="where membership runs under load (thread,loop)")
    group.add_argument("--no-hog", action="store_true", help="no CPU hog beside node B")


def run(args: argparse.Namespace) -> int:
    """Measure the chosen parts, print the tables, and write them to ``--out``; 0 if every part ran."""
    from hookmq.bench.sysinfo import machine

    parts = args.part or list(PARTS)
    sections = [f"# hookmq bench gossip, {time.strftime('%Y-%m-%d %H:%M:%S')}\n", f"Machine: {machine()}\n"]
    ok = True
    started = time.monotonic()
    if "simulation" in parts:
        sections.append(_simulation(args))
    if "processes" in parts:
        text, complete = _processes(args)
        sections.append(text)
        ok &= complete
    if "load" in parts:
        text, complete = _load(args)
        sections.append(text)
        ok &= complete
    sections.append(f"({time.monotonic() - started:.0f} s in all)\n")
    document = "\n".join(sections)
    print(document)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("gossip-%Y%m%d-%H%M%S.md")
    path.write_text(document)
    print(f"wrote {path}", file=sys.stderr)
    return 0 if ok else 1


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _simulation(args: argparse.Namespace) -> str:
    from ..membership import profile
    from .simulated import detection_table

    config = profile(args.profile, compression=False)
    _say("simulation: one row per size, loss and detector")
    table = detection_table(
        args.sim_sizes, args.sim_losses, config,
        trials=lambda n: args.sim_large_trials if n >= LARGE else args.sim_trials, progress=_say,
    )
    return (
        f"## Simulation ({args.profile} profile; trials per row: {args.sim_trials}, {args.sim_large_trials} "
        f"from {LARGE} nodes)\n\n{table}\n"
    )


def _mlnode(args: argparse.Namespace) -> Path | None:
    if args.mlnode is not None:
        return None if str(args.mlnode) == "none" else args.mlnode
    return DEFAULT_MLNODE if DEFAULT_MLNODE.exists() else None


def _processes(args: argparse.Namespace) -> tuple[str, bool]:
    from .report import processes_table
    from .trials import DetectionRun, TrialResult, run_trials

    binary = _mlnode(args)
    implementations = ["hookmq"] + (["memberlist"] if binary is not None else [])
    runs: list[DetectionRun] = []

    def progress(result: TrialResult) -> None:
        shown = ", ".join(f"{d:.2f}" if d is not None else "-" for d in result.delays.values())
        _say(f"{result.implementation} {result.size} nodes {result.mode}: {shown} {result.error[:200]}")

    for size in args.sizes:
        for implementation in implementations:
            for mode, count in (("kill", args.trials), ("leave", args.leaves)):
                if count > 0:
                    runs.append(run_trials(implementation, size, count, mode, binary=binary,  # type: ignore[arg-type]
                                           progress=progress, profile=args.profile))
    note = "" if binary is not None else "\n(memberlist not measured: build the oracle, or pass --mlnode)\n"
    text = (f"## Real processes on loopback ({args.profile} profile), seconds from the signal to each survivor's "
            f"report\n\n{processes_table(runs)}\n{note}")
    complete = all(r.missing() == 0 and r.wrong() == 0 for r in runs if r.implementation == "hookmq")
    return text, complete


def _load(args: argparse.Namespace) -> tuple[str, bool]:
    from .load import LoadRun, LoadSettings, run_under_load
    from .report import load_table

    settings = LoadSettings(
        duration=args.load_seconds, clients=args.clients or 100, messages=args.messages or 2000, qos=args.qos or 0,
        workers=args.workers, hog=not args.no_hog,
    )
    runs: list[LoadRun] = []
    with tempfile.TemporaryDirectory(prefix="hookmq-gossip-load-") as scratch:
        for runner in [r.strip() for r in args.runners.split(",") if r.strip()]:
            if runner not in ("thread", "loop"):
                raise SystemExit(f"hookmq bench gossip: unknown runner {runner!r}: thread or loop")
            runs.append(run_under_load(Path(scratch), runner, settings, progress=_say))
    details = [f"- `{run.runner}`: {line}" for run in runs for line in run.false_failures[:10]]
    details += [f"- `{run.runner}`: {error}" for run in runs for error in run.errors[:5]]
    text = (
        f"## Under MQTT load ({settings.duration:.0f} s per runner: pairs q{settings.qos} {settings.clients}x"
        f"{settings.messages} rounds on A with {settings.workers} load process(es); "
        f"{'a CPU hog pinned with B' if settings.hog else 'no hog'}; C killed and replaced)\n\n{load_table(runs)}\n"
        + ("\n" + "\n".join(details) + "\n" if details else "")
    )
    complete = all(not run.errors for run in runs)
    return text, complete


def main(argv: list[str] | None = None) -> int:
    """``python -m hookmq.plugins.gossip.bench.cli`` (the same as ``hookmq bench gossip``)."""
    from hookmq.bench.cli import add_arguments as bench_arguments

    parser = argparse.ArgumentParser(prog="hookmq bench gossip")
    bench_arguments(parser)
    namespace = parser.parse_args(["gossip", *(argv if argv is not None else sys.argv[1:])])
    return run(namespace)


if __name__ == "__main__":
    raise SystemExit(main())
