"""File descriptors as a budget shared by the parts of one process that accept sockets.

The MQTT listeners and the dashboard share the process's open-file limit (RLIMIT_NOFILE). A
part may *reserve* descriptors: the others then never take the last ones it may need, so a
flood of dashboard connections cannot make MQTT connects fail, and a flood of MQTT
connections cannot make the dashboard's `/healthz` unreachable (docs/security.md).

Accounting is by owner: each accepted socket is `admit`ted (after accept, so it is already
open) and `release`d when closed. The count of other open descriptors (listening sockets,
store files, log files) is measured from `/proc/self/fd` at most once a second, and every
50 ms while the budget is near its edge, so the common case costs a few additions.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable

from ..ratelimit import LogLimiter

__all__ = ["DESCRIPTORS", "DescriptorBudget"]

log = logging.getLogger("hookmq.transport")
_limited = LogLimiter(log)

SLACK = 32
"""Below this many free descriptors beyond the reserves, decisions use a fresh count, not the estimate."""

RECOUNT_INTERVAL = 0.05
"""Near the edge, seconds a fresh count is reused: a flood of refused sockets costs one directory
listing per interval."""

REFRESH_INTERVAL = 1.0
"""Away from the edge, seconds the count of unaccounted descriptors is trusted (files a store or
a plugin opened meanwhile show up within this long of the next accepted socket)."""


def _soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _count_open() -> int:
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # listdir's own descriptor
    except OSError:
        return 0  # no /proc: the estimate from the counts is all there is


class DescriptorBudget:
    """Open sockets per owner against the process's descriptor limit, with reserves."""

    def __init__(self, limit: Callable[[], int] = _soft_limit, count_open: Callable[[], int] = _count_open,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._count_open = count_open
        self._clock = clock
        self._counted_at = -RECOUNT_INTERVAL
        self._held: dict[str, int] = {}
        self._reserves: dict[str, int] = {}
        #: Descriptors open that no owner accounts for, as last measured.
        self._others = count_open()
        #: Sockets refused per owner since start.
        self.refused: dict[str, int] = {}

    def reserve(self, owner: str, count: int) -> None:
        """Keep ``count`` descriptors for ``owner``: the others never take them (0 removes it)."""
        if count > 0:
            self._reserves[owner] = count
        else:
            self._reserves.pop(owner, None)

    def held(self, owner: str) -> int:
        """Sockets of ``owner`` open now."""
        return self._held.get(owner, 0)

    def kept_for_others(self, owner: str) -> int:
        """Descriptors ``owner`` must leave free: what the other owners reserved and do not use yet."""
        return sum(max(0, count - self._held.get(name, 0)) for name, count in self._reserves.items() if name != owner)

    def admit(self, owner: str) -> bool:
        """Account for a socket ``owner`` just accepted; False (not counted) when it would
        take a descriptor reserved for another owner: the caller closes it."""
        kept = self.kept_for_others(owner)
        if kept == 0:  # nothing to keep for anyone: the kernel's limit is the only one
            self._held[owner] = self._held.get(owner, 0) + 1
            return True
        limit = self._limit()
        in_use = self._others + sum(self._held.values()) + 1  # +1: the socket being admitted
        now = self._clock()
        near_edge = limit - in_use < kept + SLACK
        if now - self._counted_at >= (RECOUNT_INTERVAL if near_edge else REFRESH_INTERVAL):
            # Measure instead of trusting the estimate: near the edge, or once in a while.
            self._counted_at = now
            measured = self._count_open()
            if measured:
                self._others = max(0, measured - sum(self._held.values()) - 1)
                in_use = measured
        if limit - in_use < kept:
            self.refused[owner] = self.refused.get(owner, 0) + 1
            _limited.log(f"descriptors:{owner}", logging.WARNING,
                         "%s connection refused: %d of %d file descriptors are open and %d are reserved for %s",
                         owner, in_use, limit, kept, ", ".join(n for n in self._reserves if n != owner))
            return False
        self._held[owner] = self._held.get(owner, 0) + 1
        return True

    def release(self, owner: str) -> None:
        """A socket ``owner`` had admitted is closed."""
        count = self._held.get(owner, 0)
        if count <= 1:
            self._held.pop(owner, None)
        else:
            self._held[owner] = count - 1


DESCRIPTORS = DescriptorBudget()
"""The process's budget: the MQTT listeners account as "mqtt", the dashboard as "dashboard"."""
