"""Issue 13, test 3: real hookmq processes on loopback, kill -9 one, time every survivor's report.

Each trial is a fresh cluster of 3 or 5 brokers (``local`` profile, as the Go broker ran
memberlist), bound and advertised on 127.0.0.1; the last node is killed with ``kill -9``
(or stopped gracefully) and every survivor must report it failed (or left). The bounds
asserted are the protocol's: no report later than the suspicion maximum, a graceful stop
seen as *left* within a second. How hookmq compares with memberlist measured the same way
is printed by ``hookmq bench gossip --part processes`` and recorded in docs/cluster.md.
Slow: 20 trials per size wait for real suspicion timeouts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hookmq.plugins.gossip.bench.report import processes_table
from hookmq.plugins.gossip.bench.simulated import formula_row
from hookmq.plugins.gossip.bench.trials import TrialResult, run_trials
from hookmq.plugins.gossip.membership import profile

KILLS = 20
LEAVES = 5
LOCAL = profile("local")


def _show(result: TrialResult) -> None:
    print(result.mode, {name: None if d is None else round(d, 3) for name, d in result.delays.items()}, result.error[:500])


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("size", [3, 5])
def test_kill_nine_is_reported_by_every_survivor_before_the_suspicion_maximum(tmp_path: Path, size: int) -> None:
    run = run_trials("hookmq", size, KILLS, "kill", workdir=tmp_path, progress=_show)
    print("\n" + processes_table([run]))
    assert [trial.error for trial in run.trials if trial.error] == []
    assert run.missing() == 0 and run.wrong() == 0
    assert len(run.delays()) == KILLS * (size - 1)
    assert max(run.delays()) < formula_row(LOCAL, size)["suspicion_max"]  # 18 s


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("size", [3, 5])
def test_a_graceful_stop_is_seen_as_left_within_a_second(tmp_path: Path, size: int) -> None:
    run = run_trials("hookmq", size, LEAVES, "leave", workdir=tmp_path, progress=_show)
    print("\n" + processes_table([run]))
    assert run.missing() == 0 and run.wrong() == 0
    assert len(run.delays()) == LEAVES * (size - 1)
    assert max(run.delays()) < 1.0
