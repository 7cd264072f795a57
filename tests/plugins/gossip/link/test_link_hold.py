"""Holding a peer membership declared dead: the link's evidence against the failure hold (sans-I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookmq.plugins.gossip.link.hold import hold_remaining


def test_a_peer_heard_a_moment_ago_is_held_for_the_rest_of_the_hold() -> None:
    assert hold_remaining(now=100.0, last_heard=99.5, failure_hold=5.0) == pytest.approx(4.5)


@pytest.mark.parametrize(("last_heard", "failure_hold"), [
    (95.0, 5.0),   # silent exactly the hold: confirmed
    (90.0, 5.0),   # a node that died (and went silent) long before membership's verdict
    (None, 5.0),   # never heard at all
    (99.9, 0.0),   # holding switched off: membership's verdict alone decides
])
def test_the_failure_is_confirmed(last_heard: float | None, failure_hold: float) -> None:
    assert hold_remaining(now=100.0, last_heard=last_heard, failure_hold=failure_hold) == 0.0


@given(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 3600))
def test_the_hold_never_outlasts_the_silence_it_allows(now: float, heard: float, failure_hold: float) -> None:
    remaining = hold_remaining(now, heard, failure_hold)
    slack = 1e-9 * (1 + now)  # float rounding of heard + hold - now
    assert 0.0 <= remaining <= failure_hold + slack or heard > now
    if remaining > 0:  # held only while heard within the hold, and then exactly until it runs out
        assert now - heard < failure_hold
        assert remaining == pytest.approx(heard + failure_hold - now)
