"""A heap of deadlines for the sans-I/O state machine; the caller's clock decides when they are due."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Timer", "TimerQueue"]


@dataclass(order=True, slots=True)
class Timer:
    """One scheduled call; ``cancel()`` makes it never run."""

    when: float
    seq: int
    callback: Callable[[float], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Do not run this timer."""
        self.cancelled = True


class TimerQueue:
    """Timers ordered by deadline (then by scheduling order)."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0

    def schedule(self, when: float, callback: Callable[[float], None]) -> Timer:
        """Run ``callback(now)`` once ``now >= when``."""
        self._seq += 1
        timer = Timer(when, self._seq, callback)
        heapq.heappush(self._heap, timer)
        return timer

    def next_deadline(self) -> float | None:
        """When the earliest live timer is due, or None."""
        heap = self._heap
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        return heap[0].when if heap else None

    def pop_due(self, now: float) -> Timer | None:
        """The earliest live timer due at ``now``, removed; None when none is due."""
        heap = self._heap
        while heap and (heap[0].cancelled or heap[0].when <= now):
            timer = heapq.heappop(heap)
            if not timer.cancelled:
                return timer
        return None

    def __len__(self) -> int:
        return sum(1 for timer in self._heap if not timer.cancelled)
