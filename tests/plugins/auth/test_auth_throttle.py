"""Failed-login throttling: the limit, the exponential lockout and its cap."""

from __future__ import annotations

import pytest

from hookmq.plugins.auth.throttle import LoginThrottle, host_of


def throttle() -> LoginThrottle:
    return LoginThrottle(max_failures=5, window=60.0, lockout_base=1.0, lockout_max=8.0)


@pytest.mark.parametrize(
    ("address", "host"),
    [("127.0.0.1:5000", "127.0.0.1"), ("[::1]:5000", "::1"), ("unix-socket", "unix-socket")],
)
def test_host_of(address: str, host: str) -> None:
    assert host_of(address) == host


def test_failures_within_the_limit_do_not_lock() -> None:
    limiter = throttle()
    assert [limiter.failure("h", float(t)) for t in range(5)] == [0.0] * 5
    assert limiter.locked_for("h", 5.0) == 0.0


def test_lockout_doubles_up_to_the_cap() -> None:
    limiter = throttle()
    for t in range(5):
        limiter.failure("h", float(t))
    lockouts = [limiter.failure("h", 10.0 + 20 * i) for i in range(6)]
    assert lockouts == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert limiter.locked_for("h", 110.0) == 8.0
    assert limiter.locked_for("h", 118.0) == 0.0


def test_hosts_are_independent() -> None:
    limiter = throttle()
    for t in range(6):
        limiter.failure("a", float(t))
    assert limiter.locked_for("a", 5.5) > 0
    assert limiter.locked_for("b", 5.5) == 0.0


def test_old_failures_fall_out_of_the_window() -> None:
    limiter = throttle()
    for t in range(5):
        limiter.failure("h", float(t))
    assert limiter.failure("h", 100.0) == 0.0


def test_success_clears_the_record() -> None:
    limiter = throttle()
    for t in range(6):
        limiter.failure("h", float(t))
    limiter.success("h")
    assert limiter.locked_for("h", 5.5) == 0.0
    assert limiter.failure("h", 6.0) == 0.0


def test_lockout_longer_than_the_window_still_escalates() -> None:
    limiter = LoginThrottle(max_failures=1, window=10.0, lockout_base=30.0, lockout_max=1000.0)
    limiter.failure("h", 0.0)
    assert limiter.failure("h", 1.0) == 30.0
    # The next failure comes 35 s later, past the window but right after the lockout ended.
    assert limiter.failure("h", 36.0) == 60.0
