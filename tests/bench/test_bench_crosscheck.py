"""``hookmq bench crosscheck`` refuses a cluster broker: its paho driver would put every client on one node."""

from __future__ import annotations

from hookmq.bench.crosscheck import run_crosscheck
from hookmq.bench.runner import RunOptions
from hookmq.bench.workloads import Workload


def test_a_cluster_broker_is_left_to_compare() -> None:
    options = RunOptions(workers=1, setup_timeout=10, run_timeout=10, progress=False)

    check = run_crosscheck(["hookmq:x2"], [Workload("device", clients=1, messages=1)], options, rounds=1)

    assert "measured by compare" in check.unavailable["hookmq:x2"]
    assert check.results == {"bench": [], "paho": []}
