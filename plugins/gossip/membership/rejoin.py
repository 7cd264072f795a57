"""Re-joining after partitions (hookmq's addition to memberlist, hashicorp/memberlist#222).

memberlist forgets a dead node for good once ``gossip_to_the_dead_time`` has passed, so two
halves of a partition that outlived it never find each other again. This keeps the addresses
of failed nodes (not of nodes that left) and, while some are missing or fewer members than
expected are alive, picks a few of them and of the configured seeds to join again.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable

from .outputs import Address

__all__ = ["RejoinMemory"]

MAX_REMEMBERED = 1024
TARGETS_PER_ROUND = 3


class RejoinMemory:
    """Failed nodes' addresses (bounded), and the choice of whom to re-join."""

    __slots__ = ("_failed", "seeds")

    def __init__(self, seeds: Iterable[Address] = ()) -> None:
        self.seeds: list[Address] = list(dict.fromkeys(seeds))
        #: name -> (address, when it failed), oldest first
        self._failed: OrderedDict[str, tuple[Address, float]] = OrderedDict()

    def failed(self, name: str, address: Address, now: float) -> None:
        """Remember a node declared dead."""
        self._failed.pop(name, None)
        self._failed[name] = (address, now)
        while len(self._failed) > MAX_REMEMBERED:
            self._failed.popitem(last=False)

    def back(self, name: str, address: Address) -> None:
        """A node is alive again (or left on purpose): forget it, and anything else at its address."""
        self._failed.pop(name, None)
        for other in [key for key, (where, _) in self._failed.items() if where == address]:
            del self._failed[other]

    def expire(self, now: float, timeout: float) -> None:
        """Forget nodes that failed more than ``timeout`` seconds ago (0: keep them)."""
        if timeout > 0:
            for name in [key for key, (_, when) in self._failed.items() if now - when > timeout]:
                del self._failed[name]

    def missing(self) -> int:
        """How many failed nodes are remembered."""
        return len(self._failed)

    def targets(self, alive: set[Address], rng: random.Random, include_seeds: bool) -> list[Address]:
        """Up to three addresses to join: failed nodes' and (if asked) seeds that are not alive members."""
        candidates = [where for where, _ in self._failed.values() if where not in alive]
        if include_seeds:
            candidates += [seed for seed in self.seeds if seed not in alive]
        unique = list(dict.fromkeys(candidates))
        return rng.sample(unique, min(TARGETS_PER_ROUND, len(unique)))
