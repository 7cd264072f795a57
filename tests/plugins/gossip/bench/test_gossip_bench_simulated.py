"""The simulated detection measurement: figures, formulas, and hookmq beside memberlist's algorithm."""

from __future__ import annotations

import random

import pytest

from hookmq.plugins.gossip.bench.simulated import (
    detection_table,
    detector_config,
    formula_row,
    measure_detection,
    probe_failure_probability,
)
from hookmq.plugins.gossip.membership import profile

LOCAL = profile("local", compression=False)
LAN = profile("lan")


def test_detection_measurement_reports_what_it_saw() -> None:
    stats = measure_detection(5, LOCAL, trials=3, seed=2, settle=5.0, window=30.0)
    summary = stats.summary()
    assert stats.missed == 0 and len(stats.first) == 3 and len(stats.survivors) == 3 * 4
    assert 0 < summary["first_median"] <= summary["survivor_max"] <= 30
    assert stats.false_dead == stats.false_suspect == 0


def test_the_memberlist_detector_is_strict_and_does_not_rejoin() -> None:
    memberlist = detector_config(LOCAL, "memberlist")
    assert memberlist.strict_memberlist and memberlist.rejoin_interval == 0
    assert detector_config(LOCAL, "hookmq") == LOCAL


def test_a_survivor_that_no_gossip_reached_waits_the_maximum_only_in_memberlist() -> None:
    # Broadcasts go a few times to random nodes: now and then, in a 5-node local cluster without
    # any loss, one survivor hears neither a confirmation nor the verdict. memberlist then waits
    # for its suspicion's maximum (18 s after its own probe); hookmq's reminders fetch the verdict.
    hookmq = measure_detection(5, LOCAL, trials=80, seed=7, settle=5.0, window=40.0, detector="hookmq")
    memberlist = measure_detection(5, LOCAL, trials=80, seed=7, settle=5.0, window=40.0, detector="memberlist")
    assert hookmq.missed == memberlist.missed == 0
    assert max(memberlist.survivors) > 18.0
    assert max(hookmq.survivors) < 10.0


def test_formula_row_for_the_table() -> None:
    row = formula_row(LOCAL, 3)
    assert (row["suspicion_min"], row["suspicion_max"], row["confirmations"], row["retransmit_limit"]) == (3.0, 18.0, 1.0, 2.0)
    assert row["detect_min"] == pytest.approx(3.2) and row["detect_max"] == 21.0
    assert row["false_suspicions_per_node_hour"] == 0.0  # no loss, no false suspicion
    assert formula_row(LAN, 3)["suspicion_max"] == 4.0  # no confirmations expected: the minimum only


def test_probe_failure_probability_matches_a_monte_carlo_of_the_same_network() -> None:
    # The probe of a live node in the simulated network: direct ping+ack, one indirect route of
    # four packets (local: k = 1), then a TCP ping whose lost segments each cost a doubling 0.2 s.
    rng = random.Random(1)
    loss, runs, failed = 0.3, 200_000, 0

    def arrives() -> bool:
        return rng.random() >= loss

    def tcp_delay() -> float:
        delay, backoff = 0.0, 0.2
        while not arrives():
            delay += backoff
            backoff *= 2
        return delay

    for _ in range(runs):
        if arrives() and arrives():
            continue
        if all(arrives() for _ in range(4)):
            continue
        if tcp_delay() + tcp_delay() < 0.8 - 0.0014:
            continue
        failed += 1
    assert probe_failure_probability(LOCAL, 5, loss) == pytest.approx(failed / runs, rel=0.05)
    assert probe_failure_probability(LOCAL, 5, 0.0) == 0.0
    no_tcp = profile("local", disable_tcp_pings=True)
    assert probe_failure_probability(no_tcp, 5, 0.2) == pytest.approx((1 - 0.8**2) * (1 - 0.8**4))


def test_the_table_has_a_row_per_size_loss_and_detector() -> None:
    seen: list[str] = []
    table = detection_table([3], [0.0, 0.05], LOCAL, trials=2, progress=seen.append)
    lines = table.splitlines()
    assert lines[0].startswith("| nodes | loss | detector |") and len(lines) == 2 + 4
    assert [line.split("|")[3].strip() for line in lines[2:]] == ["hookmq", "memberlist"] * 2
    assert seen == lines[2:]
