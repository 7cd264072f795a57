"""Checks over simulation runs: suspicion timings against memberlist's formulas."""

from __future__ import annotations

import re

import pytest

from hookmq.plugins.gossip.membership.formulas import (
    remaining_suspicion_time,
    suspicion_confirmations,
    suspicion_timeout,
)
from hookmq.plugins.gossip.membership.simulation import Simulation

MARKING = re.compile(r"Marking (\S+) as failed, suspect timeout reached \((\d+) peer confirmations(, a verdict)?\)")


def expected_suspicion(sim: Simulation, n: int, confirmations: int) -> float:
    """How long a suspicion lasts, by the formulas, after ``confirmations`` of the expected ones."""
    config = sim.config
    k = suspicion_confirmations(config.suspicion_mult, n)
    minimum = suspicion_timeout(config.suspicion_mult, n, config.probe_interval)
    maximum = config.suspicion_max_timeout_mult * minimum
    if confirmations == 0:
        return maximum if k >= 1 else minimum
    return remaining_suspicion_time(confirmations, k, 0.0, minimum, maximum)


def minimum_suspicion(sim: Simulation, n: int) -> float:
    """The shortest suspicion, by the formulas."""
    return suspicion_timeout(sim.config.suspicion_mult, n, sim.config.probe_interval)


def check_suspicion_timings(sim: Simulation, victim: str, since: float, n: int) -> int:
    """For every survivor whose own suspicion timer declared ``victim`` dead, check its duration
    is exactly the formula's for the confirmations it counted; returns how many were checked."""
    checked = 0
    for node in sim.running():
        marks = [(t, int(m.group(2)), bool(m.group(3))) for t, notice in node.notices if (m := MARKING.match(notice.message)) and m.group(1) == victim and t >= since]
        if not marks:
            continue
        dead_at, confirmations, verdict = marks[0]
        started = next(e.time for e in sim.events if e.observer == node.name and e.subject == victim and e.kind == "suspect" and e.time >= since)
        expected = expected_suspicion(sim, n, confirmations)
        if verdict:
            # Another node's verdict ended it early (when it came, the minimum after the start at
            # the soonest), before the formula's time for the confirmations besides the verdict's.
            later = expected_suspicion(sim, n, max(confirmations - 1, 0))
            assert minimum_suspicion(sim, n) - 1e-6 <= dead_at - started <= later + 1e-6, node.name
        else:
            assert dead_at - started == pytest.approx(expected, abs=1e-6), node.name
        checked += 1
    return checked
