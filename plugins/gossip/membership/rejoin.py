"""Re-joining after partitions (hookmq's addition to memberlist, hashicorp/memberlist#222).

memberlist forgets a dead node for good once ``gossip_to_the_dead_time`` has passed, so two
halves of a partition that outlived it never find each other again. This keeps the addresses
of failed nodes (not of nodes that left) and, while some are missing or fewer members than
expected are alive, joins again every configured seed that is not a member and a few of the
failed nodes, the least recently tried first. A failed node whose address *refuses* the
connection is forgotten: nothing listens there any more (the process is gone), which a
partition never looks like (it times out). Without that, the addresses of crashed nodes pile
up and a healed partition waits for its turn among them.
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

    __slots__ = ("_failed", "_tried", "seeds")

    def __init__(self, seeds: Iterable[Address] = ()) -> None:
        self.seeds: list[Address] = list(dict.fromkeys(seeds))
        #: name -> (address, when it failed), oldest first
        self._failed: OrderedDict[str, tuple[Address, float]] = OrderedDict()
        #: address -> when a re-join last tried it
        self._tried: dict[Address, float] = {}

    def failed(self, name: str, address: Address, now: float) -> None:
        """Remember a node declared dead."""
        self._failed.pop(name, None)
        self._failed[name] = (address, now)
        while len(self._failed) > MAX_REMEMBERED:
            self._failed.popitem(last=False)

    def back(self, name: str, address: Address) -> None:
        """A node is alive again (or left on purpose): forget it, and anything else at its address."""
        self._failed.pop(name, None)
        self.refused(address)

    def refused(self, address: Address) -> None:
        """Nothing listens at ``address`` any more: forget every failed node that was there."""
        for other in [key for key, (where, _) in self._failed.items() if where == address]:
            del self._failed[other]
        self._tried.pop(address, None)

    def expire(self, now: float, timeout: float) -> None:
        """Forget nodes that failed more than ``timeout`` seconds ago (0: keep them)."""
        if timeout > 0:
            for name in [key for key, (_, when) in self._failed.items() if now - when > timeout]:
                del self._failed[name]
        remembered = {where for where, _ in self._failed.values()}
        for address in [a for a in self._tried if a not in remembered]:
            del self._tried[address]

    def missing(self) -> int:
        """How many failed nodes are remembered."""
        return len(self._failed)

    def targets(self, alive: set[Address], rng: random.Random, include_seeds: bool, now: float = 0.0) -> list[Address]:
        """Addresses to join: every seed that is not an alive member (if asked), and up to three
        failed nodes' addresses that are not either, the least recently tried first."""
        seeds = [seed for seed in self.seeds if seed not in alive] if include_seeds else []
        failed = [where for where in dict.fromkeys(where for where, _ in self._failed.values())
                  if where not in alive and where not in seeds]
        rng.shuffle(failed)
        failed.sort(key=lambda where: self._tried.get(where, float("-inf")))
        chosen = failed[:TARGETS_PER_ROUND]
        for where in chosen:
            self._tried[where] = now
        return seeds + chosen
