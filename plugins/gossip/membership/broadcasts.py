"""The transmit-limited broadcast queue (memberlist's ``TransmitLimitedQueue``, queue.go).

Broadcasts ride along on outgoing packets. Each is sent at most ``retransmit_limit`` times;
the queue hands out the least-sent first, and among equally sent ones the largest that still
fits, then the newest. A broadcast with a name replaces a queued one of the same name
(memberlist names its own by node, so a newer alive for a node supersedes an older suspect).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BroadcastQueue"]


@dataclass(slots=True, eq=False)
class _Item:
    message: bytes
    name: str | None
    ident: int
    transmits: int
    on_finished: Callable[[], None] | None

    def key(self) -> tuple[int, int]:
        # Within one transmit count: larger messages first, then newer (higher id) first.
        return (-len(self.message), -self.ident)

    def finish(self) -> None:
        if self.on_finished is not None:
            callback, self.on_finished = self.on_finished, None
            callback()


class BroadcastQueue:
    """Pending broadcasts grouped by how often they were sent."""

    __slots__ = ("_levels", "_named", "_next_id", "max_items")

    def __init__(self, max_items: int = 0) -> None:
        #: transmits -> sorted list of (-length, -id, item)
        self._levels: dict[int, list[tuple[int, int, _Item]]] = {}
        self._named: dict[str, _Item] = {}
        self._next_id = 0
        #: Bound on queued items (0: none): beyond it the most-sent, oldest go first.
        self.max_items = max_items

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels.values())

    def __bool__(self) -> bool:
        return bool(self._levels)

    def queue(self, message: bytes, name: str | None = None, on_finished: Callable[[], None] | None = None) -> None:
        """Add a broadcast; ``on_finished`` runs once when it was sent enough times or was replaced."""
        self._next_id = 1 if self._next_id >= 2**63 - 1 else self._next_id + 1
        if name is not None:
            old = self._named.get(name)
            if old is not None:
                old.finish()
                self._remove(old)
        item = _Item(message, name, self._next_id, 0, on_finished)
        self._add(item)
        if self.max_items and len(self) > self.max_items:
            self.prune(self.max_items)

    def get(self, overhead: int, limit: int, transmit_limit: int) -> list[bytes]:
        """Broadcasts fitting ``limit`` bytes (each costing ``overhead`` more), counting a transmission."""
        if not self._levels:
            return []
        used = 0
        chosen: list[bytes] = []
        sent: list[_Item] = []
        for transmits in sorted(self._levels):
            while True:
                free = limit - used - overhead
                if free <= 0:
                    break
                level = self._levels.get(transmits)
                if not level:
                    break
                index = bisect_left(level, (-free, -math.inf))
                if index == len(level):
                    break
                item = level[index][2]
                self._remove(item)
                used += overhead + len(item.message)
                chosen.append(item.message)
                sent.append(item)
            if limit - used - overhead <= 0:
                break
        for item in sent:
            if item.transmits + 1 >= transmit_limit:
                item.finish()
            else:
                item.transmits += 1
                self._add(item)
        return chosen

    def prune(self, keep: int) -> None:
        """Drop broadcasts beyond ``keep``, the most-sent (then smallest, then oldest) first."""
        while len(self) > keep:
            level = self._levels[max(self._levels)]
            item = level[-1][2]
            item.finish()
            self._remove(item)

    def reset(self) -> None:
        """Drop everything (each broadcast counts as finished)."""
        for level in list(self._levels.values()):
            for _, _, item in level:
                item.finish()
        self._levels.clear()
        self._named.clear()
        self._next_id = 0

    def transmits(self) -> list[tuple[bytes, int]]:
        """Every queued message with how often it was sent (for inspection and tests)."""
        return [(item.message, item.transmits) for level in self._levels.values() for _, _, item in level]

    def _add(self, item: _Item) -> None:
        insort(self._levels.setdefault(item.transmits, []), (*item.key(), item))
        if item.name is not None:
            self._named[item.name] = item

    def _remove(self, item: _Item) -> None:
        level = self._levels[item.transmits]
        entry = (*item.key(), item)
        index = bisect_left(level, entry[:2])
        while level[index][2] is not item:
            index += 1
        del level[index]
        if not level:
            del self._levels[item.transmits]
        if item.name is not None and self._named.get(item.name) is item:
            del self._named[item.name]
