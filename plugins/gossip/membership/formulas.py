"""memberlist's timing formulas, with Go's integer rounding, so results match to the nanosecond.

Durations go in and out as float seconds; inside, the arithmetic is done in integer
nanoseconds and milliseconds where memberlist's Go code does it with ``time.Duration``.
"""

from __future__ import annotations

import math

__all__ = [
    "push_pull_interval",
    "remaining_suspicion_time",
    "retransmit_limit",
    "suspicion_confirmations",
    "suspicion_timeout",
]

_NS = 1_000_000_000
PUSH_PULL_SCALE_THRESHOLD = 32


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


def suspicion_timeout(suspicion_mult: int, n: int, probe_interval: float) -> float:
    """The suspicion minimum: ``mult × max(1, log10(max(1, n))) × interval`` (util.go).

    The node scale is kept to three decimals, as Go's ``time.Duration(nodeScale*1000)``.
    """
    node_scale = max(1.0, math.log10(max(1.0, float(n))))
    return suspicion_mult * int(node_scale * 1000) * _ns(probe_interval) // 1000 / _NS


def suspicion_confirmations(suspicion_mult: int, n: int) -> int:
    """Independent confirmations that drive a suspicion to its minimum: ``mult − 2``, or 0 when
    fewer than that many other nodes exist besides the suspect and us (state.go)."""
    k = suspicion_mult - 2
    return 0 if n - 2 < k else k


def remaining_suspicion_time(confirmations: int, expected: int, elapsed: float, minimum: float, maximum: float) -> float:
    """Seconds left of a suspicion after ``confirmations`` of ``expected`` (Lifeguard, suspicion.go).

    The timeout is ``max − log(c+1)/log(k+1) × (max − min)``, floored to whole milliseconds
    and never below ``min``; ``elapsed`` is taken off. The result may be negative.
    """
    fraction = math.log(confirmations + 1.0) / math.log(expected + 1.0)
    raw = maximum - fraction * (maximum - minimum)
    timeout_ns = math.floor(1000.0 * raw) * 1_000_000
    timeout_ns = max(timeout_ns, _ns(minimum))
    return (timeout_ns - _ns(elapsed)) / _NS


def retransmit_limit(retransmit_mult: int, n: int) -> int:
    """How often a broadcast is sent: ``mult × ceil(log10(n + 1))`` (util.go)."""
    return retransmit_mult * math.ceil(math.log10(n + 1))


def push_pull_interval(interval: float, n: int) -> float:
    """The push/pull period for ``n`` nodes: unchanged up to 32, then ``× (ceil(log2 n − 5) + 1)``."""
    if n <= PUSH_PULL_SCALE_THRESHOLD:
        return interval
    multiplier = math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1
    return multiplier * _ns(interval) / _NS
