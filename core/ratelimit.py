"""Rate-limited logging: a flood of similar events writes a bounded number of log lines.

A `LogLimiter` owns one token bucket per key (a kind of event, such as "protocol error" or
"dashboard connection cap"). Each bucket holds up to `burst` lines and refills at `per_second`;
an event that finds its bucket empty is counted instead of logged, and the next line that is
written for that key says how many were suppressed since the last one. The clock is handed in
(`clock`), so tests drive it without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["LogLimiter"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0


class LogLimiter:
    """Per-key token buckets in front of a `logging.Logger`; counts what it suppresses."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 20,
        per_second: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        # Keys are chosen by the code, not by peers, but a bound keeps a careless key choice
        # (one per remote address, say) from growing without limit.
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self.suppressed_total = 0

    def log(self, key: str, level: int, msg: str, *args: object, extra: Mapping[str, object] | None = None) -> bool:
        """Log `msg % args` at `level` unless `key`'s bucket is empty; True when written.

        `extra` is handed to the logger as `logging`'s own `extra` (attributes of the record).
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            self.suppressed_total += 1
            return False
        bucket.tokens -= 1.0
        if bucket.suppressed:
            msg = f"{msg} ({bucket.suppressed} similar messages suppressed)"
            bucket.suppressed = 0
        self.logger.log(level, msg, *args, extra=extra)
        return True

    def suppressed(self, key: str) -> int:
        """How many events of `key` were counted, not logged, since its last written line."""
        bucket = self._buckets.get(key)
        return bucket.suppressed if bucket is not None else 0
