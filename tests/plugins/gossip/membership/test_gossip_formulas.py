"""memberlist's formulas, with the numbers cluster.md §4 and memberlist-wire.md give."""

from __future__ import annotations

import pytest

from hookmq.plugins.gossip.membership import PROFILES, profile
from hookmq.plugins.gossip.membership.formulas import (
    push_pull_interval,
    remaining_suspicion_time,
    retransmit_limit,
    suspicion_confirmations,
    suspicion_timeout,
)
from hookmq.plugins.gossip.membership.health import Awareness, Suspicion


def test_profiles_have_memberlists_numbers() -> None:
    lan, wan, local = PROFILES["lan"], PROFILES["wan"], PROFILES["local"]
    assert (lan.tcp_timeout, lan.indirect_checks, lan.retransmit_mult, lan.suspicion_mult) == (10, 3, 4, 4)
    assert (lan.push_pull_interval, lan.probe_timeout, lan.probe_interval, lan.gossip_interval) == (30, 0.5, 1, 0.2)
    assert (lan.gossip_nodes, lan.gossip_to_the_dead_time, lan.suspicion_max_timeout_mult) == (3, 30, 6)
    assert (wan.tcp_timeout, wan.suspicion_mult, wan.push_pull_interval, wan.probe_timeout) == (30, 6, 60, 3)
    assert (wan.probe_interval, wan.gossip_nodes, wan.gossip_interval, wan.gossip_to_the_dead_time) == (5, 4, 0.5, 60)
    assert (local.tcp_timeout, local.indirect_checks, local.retransmit_mult, local.suspicion_mult) == (1, 1, 2, 3)
    assert (local.push_pull_interval, local.probe_timeout, local.gossip_interval, local.gossip_to_the_dead_time) == (
        15, 0.2, 0.1, 15,
    )
    assert all(p.awareness_max_multiplier == 8 and p.udp_buffer_size == 1400 and p.compression for p in PROFILES.values())


def test_profile_overrides() -> None:
    assert profile("lan", probe_interval=2.0, suspicion_mult=None).probe_interval == 2.0
    assert profile("lan", suspicion_mult=None).suspicion_mult == 4
    with pytest.raises(ValueError):
        profile("moon")
    with pytest.raises(TypeError):
        profile("lan", probe_intervall=2.0)


@pytest.mark.parametrize(
    ("mult", "n", "interval", "minimum"),
    [(4, 3, 1.0, 4.0), (4, 5, 1.0, 4.0), (4, 10, 1.0, 4.0), (4, 100, 1.0, 8.0), (3, 3, 1.0, 3.0), (6, 1000, 5.0, 90.0),
     (4, 200, 1.0, 9.204), (4, 0, 1.0, 4.0)],
)
def test_suspicion_minimum(mult: int, n: int, interval: float, minimum: float) -> None:
    # n = 200: log10(200) = 2.30103, kept to 2.301 as Go's time.Duration(nodeScale*1000).
    assert suspicion_timeout(mult, n, interval) == pytest.approx(minimum, abs=1e-12)


@pytest.mark.parametrize(("mult", "n", "k"), [(4, 3, 0), (4, 4, 2), (4, 5, 2), (4, 100, 2), (3, 3, 1), (3, 2, 0), (6, 5, 0), (6, 6, 4)])
def test_expected_confirmations(mult: int, n: int, k: int) -> None:
    assert suspicion_confirmations(mult, n) == k


def test_lifeguard_shrinking_lan_five_nodes() -> None:
    # cluster.md: LAN, n = 5: start 24 s, 11.4 s after one confirmation, 4 s after two.
    minimum = suspicion_timeout(4, 5, 1.0)
    maximum = 6 * minimum
    assert maximum == 24.0
    assert remaining_suspicion_time(1, 2, 0.0, minimum, maximum) == 11.381
    assert remaining_suspicion_time(2, 2, 0.0, minimum, maximum) == 4.0
    assert remaining_suspicion_time(2, 2, 5.0, minimum, maximum) == -1.0


def test_suspicion_timer_start_and_confirmations() -> None:
    no_confirmations = Suspicion.start("a", 0, 4.0, 24.0, now=100.0)
    assert no_confirmations.deadline == 104.0
    suspicion = Suspicion.start("a", 2, 4.0, 24.0, now=100.0)
    assert suspicion.deadline == 124.0
    assert not suspicion.confirm("a", 101.0)  # the accuser itself does not count
    assert suspicion.confirm("b", 101.0) and suspicion.deadline == pytest.approx(111.381)
    assert not suspicion.confirm("b", 102.0)
    assert suspicion.confirm("c", 102.0) and suspicion.deadline == 104.0
    assert not suspicion.confirm("d", 103.0)  # enough: no more are counted


@pytest.mark.parametrize(("mult", "n", "limit"), [(4, 3, 4), (4, 10, 8), (4, 99, 8), (4, 100, 12), (2, 3, 2), (4, 1, 4), (4, 200, 12)])
def test_retransmit_limit(mult: int, n: int, limit: int) -> None:
    assert retransmit_limit(mult, n) == limit


@pytest.mark.parametrize(("n", "factor"), [(1, 1), (32, 1), (33, 2), (64, 2), (65, 3), (128, 3), (129, 4), (200, 4)])
def test_push_pull_scaling(n: int, factor: int) -> None:
    assert push_pull_interval(30.0, n) == 30.0 * factor


def test_awareness_is_clamped_and_scales() -> None:
    awareness = Awareness(8)
    awareness.apply(-3)
    assert awareness.score == 0 and awareness.scale(1.0) == 1.0
    awareness.apply(20)
    assert awareness.score == 7 and awareness.scale(0.5) == 4.0
