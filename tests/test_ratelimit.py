"""The log limiter writes at most its burst, refills with the injected clock, and counts the rest."""

from __future__ import annotations

import logging

import pytest

from hookmq.ratelimit import LogLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_suppressed_then_refilled(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limiter = LogLimiter(logging.getLogger("t.limit"), burst=3, per_second=1.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="t.limit"):
        written = [limiter.log("bad", logging.INFO, "bad packet from %s", f"peer{i}") for i in range(10)]
    assert written == [True] * 3 + [False] * 7
    assert limiter.suppressed("bad") == 7
    assert limiter.suppressed_total == 7
    assert len(caplog.records) == 3

    clock.now = 1.0  # one token back
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="t.limit"):
        assert limiter.log("bad", logging.INFO, "bad packet from %s", "peer10")
    assert caplog.messages == ["bad packet from peer10 (7 similar messages suppressed)"]
    assert limiter.suppressed("bad") == 0


def test_keys_are_independent(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter(logging.getLogger("t.keys"), burst=1, per_second=0.0, clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="t.keys"):
        assert limiter.log("a", logging.INFO, "a")
        assert not limiter.log("a", logging.INFO, "a")
        assert limiter.log("b", logging.INFO, "b")
    assert caplog.messages == ["a", "b"]


def test_disabled_level_neither_logs_nor_counts() -> None:
    logger = logging.getLogger("t.off")
    logger.setLevel(logging.WARNING)
    limiter = LogLimiter(logger, burst=1, clock=FakeClock())
    assert not limiter.log("k", logging.DEBUG, "quiet")
    assert limiter.suppressed("k") == 0
