"""Failed-login throttling per remote host, with an exponential lockout.

A host may fail ``max_failures`` times within ``window`` seconds. The next failure locks it out
for ``lockout_base`` seconds, and every failure after that (still within the window of the
previous one, or of the end of the last lockout) doubles the lockout, up to ``lockout_max``. While a host is locked out, its
logins are refused at once, without running the password KDF, so a flood costs no CPU. A
successful login clears the host's record. Time comes from the caller (``now``), which keeps
this class free of clocks and easy to test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Records kept before stale ones are swept; bounds memory under a flood from many addresses.
_SWEEP_AT = 10_000


@dataclass(slots=True)
class _HostRecord:
    failures: int
    last_failure: float
    locked_until: float


def host_of(remote_address: str) -> str:
    """The host part of ``"host:port"`` (``"[::1]:5000"`` -> ``"::1"``); the whole string otherwise."""
    host, sep, port = remote_address.rpartition(":")
    if not sep or not port.isdigit():
        return remote_address
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


class LoginThrottle:
    """Counts failed logins per host and says whether a host is currently locked out."""

    def __init__(self, *, max_failures: int, window: float, lockout_base: float, lockout_max: float) -> None:
        """Set the limits (see the module docstring)."""
        self.max_failures = max_failures
        self.window = window
        self.lockout_base = lockout_base
        self.lockout_max = lockout_max
        self._hosts: dict[str, _HostRecord] = {}

    def locked_for(self, host: str, now: float) -> float:
        """Seconds ``host`` remains locked out (0.0 when it may try)."""
        record = self._hosts.get(host)
        if record is None:
            return 0.0
        return max(0.0, record.locked_until - now)

    def failure(self, host: str, now: float) -> float:
        """Record a failed login; return the lockout it triggers in seconds (0.0 for none)."""
        record = self._hosts.get(host)
        if record is None or self._expired(record, now):
            if len(self._hosts) >= _SWEEP_AT:
                self._sweep(now)
            record = self._hosts[host] = _HostRecord(failures=0, last_failure=now, locked_until=0.0)
        record.failures += 1
        record.last_failure = now
        excess = record.failures - self.max_failures
        if excess <= 0:
            return 0.0
        lockout = min(self.lockout_max, math.ldexp(self.lockout_base, min(excess - 1, 62)))
        record.locked_until = now + lockout
        return lockout

    def success(self, host: str) -> None:
        """Forget the failures of ``host`` after a good login."""
        self._hosts.pop(host, None)

    def _expired(self, record: _HostRecord, now: float) -> bool:
        # The window restarts at the end of a lockout, so lockouts longer than the window still
        # escalate when the host fails again right after one.
        return now - max(record.last_failure, record.locked_until) > self.window

    def _sweep(self, now: float) -> None:
        stale = [host for host, record in self._hosts.items() if self._expired(record, now)]
        for host in stale:
            del self._hosts[host]
