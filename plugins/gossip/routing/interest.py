"""This node's own interest: which topic filters its sessions hold, with counts, sans-I/O.

The route table the other nodes mirror. A filter is counted once per session holding it
(``$share/<group>/<filter>`` counts the group's members here). Only changes the others must
hear about come out: an ordinary filter's first subscriber and last unsubscribe (its count in
between changes nothing elsewhere: one route per node, whatever the number of subscribers),
and every change of a share group's member count (the others weigh this node by it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["LocalInterest"]


class LocalInterest:
    """Topic filter → how many local sessions hold it, and the changes worth telling the cluster."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, topic_filter: object) -> bool:
        return topic_filter in self._counts

    def count(self, topic_filter: str) -> int:
        """How many local sessions hold ``topic_filter`` (0: none)."""
        return self._counts.get(topic_filter, 0)

    def filters(self) -> list[str]:
        """Every filter held now (a copy: a snapshot iterates it while changes go on)."""
        return list(self._counts)

    def items(self) -> Iterator[tuple[str, int]]:
        """``(filter, count)`` pairs now."""
        return iter(list(self._counts.items()))

    def added(self, topic_filter: str) -> tuple[str, int] | None:
        """A session took ``topic_filter``; returns the change to announce, or None."""
        count = self._counts.get(topic_filter, 0) + 1
        self._counts[topic_filter] = count
        if count == 1 or topic_filter.startswith("$share/"):
            return topic_filter, count
        return None

    def removed(self, topic_filter: str) -> tuple[str, int] | None:
        """A session dropped ``topic_filter``; returns the change to announce, or None."""
        count = self._counts.get(topic_filter, 0)
        if count == 0:
            return None  # never counted (it predates us): nothing to take back
        if count == 1:
            del self._counts[topic_filter]
            return topic_filter, 0
        self._counts[topic_filter] = count - 1
        if topic_filter.startswith("$share/"):
            return topic_filter, count - 1
        return None

    def reset(self, filters: Iterable[str]) -> None:
        """Count again from scratch (one entry per session and filter)."""
        self._counts.clear()
        for topic_filter in filters:
            self._counts[topic_filter] = self._counts.get(topic_filter, 0) + 1
