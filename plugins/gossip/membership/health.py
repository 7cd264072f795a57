"""Local health and suspicion timers: Lifeguard's two local mechanisms (arXiv:1707.00788).

:class:`Awareness` is the "local health aware probe" score: it grows when this node's probes
fail without peers' nacks, or when it must refute a suspicion of itself, and it stretches
the probe interval, so a node that is itself slow (a saturated CPU, a stalled event loop)
accuses others less eagerly. :class:`Suspicion` is the "local health aware suspicion": a
timer that starts long and shrinks with each independent confirmation from another node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .formulas import remaining_suspicion_time

__all__ = ["Awareness", "Suspicion"]


class Awareness:
    """The health score, kept in ``[0, max_multiplier − 1]`` (0 is healthy), as awareness.go."""

    __slots__ = ("max_multiplier", "score")

    def __init__(self, max_multiplier: int) -> None:
        self.max_multiplier = max_multiplier
        self.score = 0

    def apply(self, delta: int) -> None:
        """Add ``delta`` and clamp."""
        self.score = min(max(self.score + delta, 0), self.max_multiplier - 1)

    def scale(self, timeout: float) -> float:
        """``timeout × (score + 1)``."""
        return timeout * (self.score + 1)


@dataclass(slots=True)
class Suspicion:
    """One node's suspicion: when it fires, and which peers have confirmed it.

    The node that raised the suspicion does not count as a confirmation (its message may be
    gossiped back to us). With no confirmations expected (``expected`` < 1) the timer runs
    for ``minimum`` only; otherwise it starts at ``maximum``.
    """

    started: float
    expected: int
    minimum: float
    maximum: float
    confirmations: int = 0
    seen: set[str] = field(default_factory=set)
    deadline: float = 0.0
    #: This node has gossiped an accusation of its own (its probe failed).
    accused: bool = False
    #: Every node heard accusing (counted as a confirmation or not).
    accusers: set[str] = field(default_factory=set)
    #: Another node's verdict brought the deadline forward (to the minimum after the start, or now).
    verdict: bool = False

    @classmethod
    def start(cls, from_node: str, expected: int, minimum: float, maximum: float, now: float) -> Suspicion:
        """A new suspicion raised by ``from_node`` at ``now``."""
        timeout = maximum if expected >= 1 else minimum
        return cls(started=now, expected=expected, minimum=minimum, maximum=maximum, seen={from_node}, deadline=now + timeout)

    def confirm(self, from_node: str, now: float) -> bool:
        """Count a confirmation; True if it was new (then ``deadline`` moved and it is re-gossiped)."""
        if self.confirmations >= self.expected or from_node in self.seen:
            return False
        self.seen.add(from_node)
        self.confirmations += 1
        remaining = remaining_suspicion_time(
            self.confirmations, self.expected, now - self.started, self.minimum, self.maximum
        )
        self.deadline = now + max(remaining, 0.0)
        return True
