"""Kill trials across real processes: a fresh cluster per trial, one node stopped, survivors timed.

A trial starts ``size`` nodes on loopback (the first alone, the others joining it), waits until
every node lists every other, lets the cluster run ``settle`` seconds, then stops the last node,
either with ``kill -9`` or gracefully (SIGTERM, a leave), and records for each survivor how long
after the signal it reported the node failed (or left). hookmq's report is its log line
``A node has failed: NAME`` (``… has left: …``), memberlist's the oracle's ``LEAVE`` line (its
``NotifyLeave``); both stamped by the node itself. memberlist runs as the oracle's
measure_fd.py runs it, so the two are measured the same way, minutes apart on one machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .processes import HookmqNode, MlNode, wait_until

__all__ = ["DetectionRun", "StopMode", "TrialResult", "hookmq_trial", "memberlist_trial", "run_trials"]

StopMode = Literal["kill", "leave"]
Implementation = Literal["hookmq", "memberlist"]

JOIN_TIMEOUT = 60.0
#: Stamps are whole milliseconds: a report may carry a stamp up to 1 ms before the signal's time.
STAMP_SLACK = 0.002


@dataclass(frozen=True, slots=True)
class TrialResult:
    """One trial: how long each survivor took to report the stopped node (None: not within the wait)."""

    implementation: str
    size: int
    mode: StopMode
    victim: str
    delays: dict[str, float | None]
    #: Survivors that reported the wrong thing (a kill as a leave, or a leave as a failure).
    wrong: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(slots=True)
class DetectionRun:
    """Several trials of one implementation, size and stop mode."""

    implementation: str
    size: int
    mode: StopMode
    trials: list[TrialResult] = field(default_factory=list)

    def delays(self) -> list[float]:
        """Every survivor's report delay, over all trials."""
        return [d for trial in self.trials for d in trial.delays.values() if d is not None]

    def firsts(self) -> list[float]:
        """Per trial, the first survivor's delay."""
        found = []
        for trial in self.trials:
            reported = [d for d in trial.delays.values() if d is not None]
            if reported:
                found.append(min(reported))
        return found

    def missing(self) -> int:
        """Survivor reports that never came (within the wait), or trials that failed to run."""
        absent = sum(1 for trial in self.trials for d in trial.delays.values() if d is None)
        return absent + sum(1 for trial in self.trials if trial.error)

    def wrong(self) -> int:
        """Reports of the wrong kind."""
        return sum(len(trial.wrong) for trial in self.trials)

    def summary(self) -> dict[str, float]:
        """Count, min, median, 90th percentile and max of every survivor's delay."""
        values = sorted(self.delays())
        if not values:
            return {"n": 0.0}
        return {
            "n": float(len(values)),
            "min": values[0],
            "median": statistics.median(values),
            "p90": values[min(len(values) - 1, int(0.9 * len(values)))],
            "max": values[-1],
        }


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def hookmq_trial(
    workdir: Path, size: int, mode: StopMode = "kill", *, settle: float = 2.0, wait: float = 40.0,
    profile: str = "local", cluster: Mapping[str, Any] | None = None,
) -> TrialResult:
    """One trial with ``size`` hookmq processes on 127.0.0.1."""
    tag = _unique("h")
    names = [f"{tag}n{i}" for i in range(size)]
    nodes: list[HookmqNode] = []
    try:
        nodes.append(HookmqNode(workdir, names[0], profile=profile, cluster=cluster))
        seed = nodes[0].endpoint
        nodes += [HookmqNode(workdir, name, members=[seed], profile=profile, cluster=cluster) for name in names[1:]]
        joined = lambda: all(node.first(f"A node has joined: {n}") is not None for node in nodes for n in names)  # noqa: E731
        if not wait_until(joined, JOIN_TIMEOUT):
            return TrialResult("hookmq", size, mode, names[-1], {}, error=_not_joined(nodes))
        time.sleep(settle)
        victim, survivors = nodes[-1], nodes[:-1]
        stopped = victim.kill() if mode == "kill" else victim.terminate()
        since = stopped - STAMP_SLACK
        line, other = ("A node has failed: ", "A node has left: ") if mode == "kill" else ("A node has left: ", "A node has failed: ")
        wait_until(lambda: all(node.first(line + victim.name, since) for node in survivors), wait)
        delays = {node.name: _after(node.first(line + victim.name, since), stopped) for node in survivors}
        wrong = [node.name for node in survivors if node.first(other + victim.name, since) is not None]
        return TrialResult("hookmq", size, mode, victim.name, delays, wrong)
    finally:
        for node in nodes:
            node.stop(grace=2.0 if mode == "leave" else 0.0)


def memberlist_trial(
    binary: Path, size: int, mode: StopMode = "kill", *, settle: float = 2.0, wait: float = 40.0, profile: str = "local",
) -> TrialResult:
    """One trial with ``size`` mlnode processes on 127.0.0.1 (as measure_fd.py)."""
    tag = _unique("m")
    names = [f"{tag}n{i}" for i in range(size)]
    nodes: list[MlNode] = []
    try:
        nodes.append(MlNode(binary, names[0], profile=profile))
        seed = nodes[0].endpoint
        for name in names[1:]:
            nodes.append(MlNode(binary, name, join=seed, profile=profile))
            time.sleep(0.1)
        if not wait_until(lambda: all(node.members() == size for node in nodes), JOIN_TIMEOUT):
            return TrialResult("memberlist", size, mode, names[-1], {}, error="the mlnode cluster did not converge")
        time.sleep(settle)
        victim, survivors = nodes[-1], nodes[:-1]
        stopped = victim.kill() if mode == "kill" else victim.terminate()
        wait_until(lambda: all(node.first("LEAVE", victim.name, stopped) for node in survivors), wait)
        delays = {node.name: _after(node.first("LEAVE", victim.name, stopped), stopped) for node in survivors}
        return TrialResult("memberlist", size, mode, victim.name, delays)
    finally:
        for node in nodes:
            node.stop(grace=3.0 if mode == "leave" else 0.0)


def run_trials(
    implementation: Implementation, size: int, trials: int, mode: StopMode = "kill", *, binary: Path | None = None,
    workdir: Path | None = None, progress: Callable[[TrialResult], None] | None = None, **options: Any,
) -> DetectionRun:
    """``trials`` fresh-cluster trials of one implementation; ``progress`` is called after each."""
    run = DetectionRun(implementation, size, mode)
    with tempfile.TemporaryDirectory(prefix="hookmq-gossip-") as scratch:
        folder = workdir or Path(scratch)
        for _ in range(trials):
            if implementation == "hookmq":
                result = hookmq_trial(folder, size, mode, **options)
            else:
                if binary is None:
                    raise ValueError("memberlist trials need the mlnode binary")
                result = memberlist_trial(binary, size, mode, **options)
            run.trials.append(result)
            if progress is not None:
                progress(result)
    return run


def _after(stamp: float | None, start: float) -> float | None:
    return None if stamp is None else max(0.0, stamp - start)


def _not_joined(nodes: list[HookmqNode]) -> str:
    tails = "\n".join(f"--- {node.name}\n{node.text(1500)}" for node in nodes)
    return f"the hookmq cluster did not form within {JOIN_TIMEOUT:.0f} s\n{tails}"
