"""Issue 13, test 5: failure detection while one node is saturated by MQTT and another starved of CPU.

Three hookmq processes: A under the bench's pairs workload at full speed for two minutes, B
pinned to one CPU with a busy-looping hog, and a third node killed with ``kill -9`` and
replaced again and again meanwhile. With membership in its own thread (the default runner),
no live node may ever be declared failed, and every kill must be reported by A and B before
the suspicion maximum (test 3's bound). The same run with membership in the broker's loop,
which this measurement rules out, is printed by ``hookmq bench gossip --part load``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hookmq.plugins.gossip.bench.load import LoadSettings, run_under_load
from hookmq.plugins.gossip.bench.report import load_table
from hookmq.plugins.gossip.bench.simulated import formula_row
from hookmq.plugins.gossip.membership import profile


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_under_mqtt_load_no_live_node_fails_and_every_kill_is_detected(tmp_path: Path) -> None:
    run = run_under_load(tmp_path, "thread", LoadSettings(duration=120.0), progress=print)
    print("\n" + load_table([run]))
    assert run.errors == []
    assert run.rounds >= 2 and run.messages >= 2 * 100 * 2000  # the load really ran, round after round
    assert run.false_failures == []
    assert len(run.kills) >= 4 and run.missing() == 0
    assert max(run.delays()) < formula_row(profile("local"), 3)["suspicion_max"]  # 18 s
