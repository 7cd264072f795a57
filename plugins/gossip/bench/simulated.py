"""Failure detection in the deterministic simulation, hookmq beside memberlist's own algorithm.

Per trial a fresh simulated cluster converges, runs ``settle`` seconds, loses one random
node (a crash) and is watched for ``window`` seconds. Packet loss applies to every packet in
both directions; TCP exchanges pay retransmission delays instead. The same trials (same
seeds, same network) run twice: with hookmq's state machine as it is, and with
``strict_memberlist`` and no re-joining, which is memberlist's algorithm exactly. Printed
beside them: memberlist's formulas for the cluster size, and the false-suspicion rate that
the probe protocol implies for the simulated network (:func:`probe_failure_probability`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ..membership import MembershipConfig
from ..membership.formulas import (
    push_pull_interval,
    retransmit_limit,
    suspicion_confirmations,
    suspicion_timeout,
)
from ..membership.simulation import TCP_RETRANSMIT, TCP_RETRIES, Simulation

__all__ = [
    "DetectionStats",
    "Detector",
    "detection_table",
    "detector_config",
    "formula_row",
    "measure_detection",
    "probe_failure_probability",
]

Detector = Literal["hookmq", "memberlist"]
CONVERGE_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class DetectionStats:
    """Failure-detection figures over several kill trials (seconds from the kill)."""

    nodes: int
    loss: float
    detector: str
    trials: int
    #: Per trial, the time until the first survivor reported the node failed.
    first: list[float]
    #: Every survivor's delay, over all trials.
    survivors: list[float]
    #: Survivors that never reported the node within the window.
    missed: int
    #: Running nodes declared dead (false positives) from convergence on; each (node,
    #: incarnation) counts once however many observers reported it.
    false_dead: int
    #: Running nodes suspected, counted the same way.
    false_suspect: int
    #: Node-seconds observed for the false-positive counts.
    observed_node_seconds: float

    def summary(self) -> dict[str, float]:
        """Medians, 99th percentile and maxima, and false positives per node-hour."""
        hours = self.observed_node_seconds / 3600 or 1.0
        nan = float("nan")
        return {
            "first_median": statistics.median(self.first) if self.first else nan,
            "first_max": max(self.first, default=nan),
            "survivor_median": statistics.median(self.survivors) if self.survivors else nan,
            "survivor_p99": _percentile(self.survivors, 0.99),
            "survivor_max": max(self.survivors, default=nan),
            "false_dead_per_node_hour": self.false_dead / hours,
            "false_suspect_per_node_hour": self.false_suspect / hours,
        }


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def detector_config(config: MembershipConfig, detector: Detector) -> MembershipConfig:
    """hookmq's configuration as given, or memberlist's algorithm (strict, no re-joining)."""
    if detector == "memberlist":
        return replace(config, strict_memberlist=True, rejoin_interval=0.0)
    return config


def measure_detection(
    nodes: int,
    config: MembershipConfig,
    *,
    trials: int = 10,
    loss: float = 0.0,
    seed: int = 0,
    settle: float = 20.0,
    window: float = 60.0,
    detector: Detector = "hookmq",
) -> DetectionStats:
    """Kill one node per trial in a fresh cluster and time how long the survivors take to report it."""
    config = detector_config(config, detector)
    first: list[float] = []
    survivors: list[float] = []
    missed = false_dead = false_suspect = 0
    observed = 0.0
    for trial in range(trials):
        sim = Simulation(nodes, config, seed=seed * 100_000 + trial, loss=loss)
        sim.start(stagger=0.005 if nodes > 50 else 0.01)
        sim.run_until_converged(timeout=CONVERGE_TIMEOUT)
        converged_at = sim.now
        sim.run_for(settle)
        victim = f"n{sim.rng.randrange(1, nodes)}"
        killed_at = sim.now
        sim.kill(victim)
        sim.run_for(window)
        reports = {e.observer: e.time - killed_at for e in sim.events_about(victim, "dead", killed_at)}
        alive = [node.name for node in sim.running()]
        if reports:
            first.append(min(reports.values()))
        survivors += [reports[name] for name in alive if name in reports]
        missed += sum(1 for name in alive if name not in reports)
        accused = {
            (event.kind, event.subject, event.incarnation)
            for event in sim.events
            if event.time >= converged_at and event.subject != victim and sim.nodes[event.subject].running
            and event.kind in ("dead", "suspect")
        }
        false_dead += sum(1 for kind, _, _ in accused if kind == "dead")
        false_suspect += sum(1 for kind, _, _ in accused if kind == "suspect")
        observed += nodes * (killed_at - converged_at) + (nodes - 1) * window
    return DetectionStats(nodes, loss, detector, trials, first, survivors, missed, false_dead, false_suspect, observed)


def probe_failure_probability(config: MembershipConfig, n: int, loss: float, latency: float = 0.0007) -> float:
    """The chance that one probe of a live node fails in the simulated network: SWIM's formula
    for memberlist's probe (direct ping and ack; ``k`` indirect routes of four packets each;
    the TCP ping, which in the simulation survives losses by retransmitting, each loss costing
    a doubling timeout, but must finish before the probe's deadline)."""
    ok = 1.0 - loss
    direct_fails: float = 1.0 - ok**2
    k = min(config.indirect_checks, max(n - 2, 0))
    indirect_fail: float = (1.0 - ok**4) ** k
    if config.disable_tcp_pings:
        return direct_fails * indirect_fail
    budget = config.probe_interval - config.probe_timeout - 2 * latency

    def delay(losses: int) -> float:
        return float(TCP_RETRANSMIT * (2**losses - 1))

    tcp_ok: float = sum(
        (loss**out * ok) * (loss**back * ok)
        for out in range(TCP_RETRIES) for back in range(TCP_RETRIES)
        if delay(out) + delay(back) < budget
    )
    return direct_fails * indirect_fail * (1.0 - tcp_ok)


def formula_row(config: MembershipConfig, n: int, loss: float = 0.0) -> dict[str, float]:
    """memberlist's formulas for ``n`` nodes, to print beside measured detection times.

    ``detect_min``/``detect_max``: from a crash to the first report, at best (probed at once,
    every confirmation in) and at worst (a full probe round first, no confirmation at all).
    ``false_suspicions_per_node_hour``: each node is probed once per probe interval on
    average, each probe failing with :func:`probe_failure_probability`.
    """
    minimum = suspicion_timeout(config.suspicion_mult, n, config.probe_interval)
    expected = suspicion_confirmations(config.suspicion_mult, n)
    maximum = config.suspicion_max_timeout_mult * minimum if expected >= 1 else minimum
    return {
        "suspicion_min": minimum,
        "suspicion_max": maximum,
        "confirmations": float(expected),
        "retransmit_limit": float(retransmit_limit(config.retransmit_mult, n)),
        "push_pull_interval": push_pull_interval(config.push_pull_interval, n),
        "detect_min": config.probe_timeout + minimum,
        "detect_max": (n - 1) * config.probe_interval + config.probe_interval + maximum,
        "false_suspicions_per_node_hour": 3600.0 / config.probe_interval * probe_failure_probability(config, n, loss),
    }


TABLE_HEADER = (
    "| nodes | loss | detector | first report median / max (s) | every survivor median / p99 / max (s) | missed | "
    "false suspicions per node-hour (formula) | false failures per node-hour | "
    "formulas: detection min–max (s), suspicion min–max (s), k |\n|---|---|---|---|---|---|---|---|---|"
)


def table_row(stats: DetectionStats, config: MembershipConfig) -> str:
    """One Markdown row."""
    s = stats.summary()
    f = formula_row(config, stats.nodes, stats.loss)
    return (
        f"| {stats.nodes} | {stats.loss:.0%} | {stats.detector} | {s['first_median']:.2f} / {s['first_max']:.2f} | "
        f"{s['survivor_median']:.2f} / {s['survivor_p99']:.2f} / {s['survivor_max']:.2f} | "
        f"{stats.missed}/{len(stats.survivors) + stats.missed} | "
        f"{s['false_suspect_per_node_hour']:.2f} ({f['false_suspicions_per_node_hour']:.2f}) | "
        f"{s['false_dead_per_node_hour']:.2f} | "
        f"{f['detect_min']:.1f}–{f['detect_max']:.1f}, {f['suspicion_min']:.1f}–{f['suspicion_max']:.1f}, "
        f"{f['confirmations']:.0f} |"
    )


def detection_table(
    sizes: Iterable[int],
    losses: Iterable[float],
    config: MembershipConfig,
    trials: int | Callable[[int], int],
    seed: int = 0,
    detectors: Sequence[Detector] = ("hookmq", "memberlist"),
    progress: Callable[[str], None] | None = None,
) -> str:
    """A Markdown table of measured detection and false positives beside the formulas.

    ``trials`` may depend on the cluster size (large clusters take longer to simulate).
    """
    rows = [TABLE_HEADER]
    losses = list(losses)
    for n in sizes:
        count = trials(n) if callable(trials) else trials
        for loss in losses:
            for detector in detectors:
                stats = measure_detection(n, config, trials=count, loss=loss, seed=seed, detector=detector)
                rows.append(table_row(stats, config))
                if progress is not None:
                    progress(rows[-1])
    return "\n".join(rows)
