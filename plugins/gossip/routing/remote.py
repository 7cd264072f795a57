"""Other nodes' filters, as they announce them, applied to a route sink (the broker's trie), sans-I/O.

Each node's routes arrive over its link, in order: a snapshot (BEGIN, CHUNKs, END) whenever
the link comes up, deltas at any time. Every count is absolute, so the last word about a
filter is its state. At END, the node's routes that were named neither by the snapshot nor by
a delta since its BEGIN are stale (removed while the link was down) and go. A node that fails
or leaves loses all its routes at once (`forget`).

Share groups keep each node's member count, which weighs the node when the group's messages
are spread (`share_weight`).
"""

from __future__ import annotations

from typing import Protocol

from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.topics import parse_shared

from .frames import RouteCounts

__all__ = ["RemoteRoutes", "RouteSink"]

ShareKey = tuple[str, str]


class RouteSink(Protocol):
    """Where routes go: the part of the Broker API that holds them."""

    def add_route(self, destination: str, topic_filter: str) -> bool: ...

    def remove_route(self, destination: str, topic_filter: str) -> bool: ...

    def remove_destination(self, destination: str) -> int: ...


class _Node:
    __slots__ = ("filters", "snapshot", "touched")

    def __init__(self) -> None:
        #: filter → count, as the node last said.
        self.filters: dict[str, int] = {}
        #: The snapshot being received, and the filters named since its BEGIN.
        self.snapshot: int | None = None
        self.touched: set[str] = set()


class RemoteRoutes:
    """Every other node's filters and share-group member counts, mirrored into a `RouteSink`."""

    __slots__ = ("_nodes", "_shares", "sink")

    def __init__(self, sink: RouteSink) -> None:
        self.sink = sink
        self._nodes: dict[str, _Node] = {}
        #: (group, filter) → node → members there.
        self._shares: dict[ShareKey, dict[str, int]] = {}

    def nodes(self) -> list[str]:
        """Nodes with routes (or a snapshot under way)."""
        return list(self._nodes)

    def receiving_snapshot(self, node: str) -> bool:
        """Whether a snapshot from ``node`` began and has not ended yet."""
        found = self._nodes.get(node)
        return found is not None and found.snapshot is not None

    def filters(self, node: str) -> dict[str, int]:
        """One node's filters and counts (a copy)."""
        found = self._nodes.get(node)
        return dict(found.filters) if found is not None else {}

    def route_count(self, node: str | None = None) -> int:
        """How many routes one node (or every node) holds here."""
        if node is not None:
            found = self._nodes.get(node)
            return len(found.filters) if found is not None else 0
        return sum(len(found.filters) for found in self._nodes.values())

    def share_weight(self, key: ShareKey, node: str) -> int:
        """How many members of share group ``key`` the node has (0: none known)."""
        return self._shares.get(key, {}).get(node, 0)

    def share_holders(self, key: ShareKey) -> dict[str, int]:
        """Nodes with members of ``key`` and how many each."""
        return dict(self._shares.get(key, {}))

    # ------------------------------------------------------------------ frames from a node

    def begin(self, node: str, snapshot_id: int) -> None:
        """A snapshot from ``node`` starts."""
        state = self._nodes.setdefault(node, _Node())
        state.snapshot = snapshot_id
        state.touched = set()

    def chunk(self, node: str, snapshot_id: int, routes: RouteCounts) -> None:
        """Part of a snapshot: set each filter's count."""
        state = self._nodes.setdefault(node, _Node())
        if state.snapshot != snapshot_id:
            return  # a chunk of a snapshot superseded by a newer BEGIN (or none): the newer one will say it
        self._apply(node, state, routes)

    def end(self, node: str, snapshot_id: int) -> int:
        """The snapshot is complete: drop what it did not name; returns how many routes went."""
        state = self._nodes.get(node)
        if state is None or state.snapshot != snapshot_id:
            return 0
        stale = [topic_filter for topic_filter in state.filters if topic_filter not in state.touched]
        self._apply(node, state, tuple((topic_filter, 0) for topic_filter in stale))
        state.snapshot = None
        state.touched = set()
        return len(stale)

    def delta(self, node: str, routes: RouteCounts) -> None:
        """Filters whose count changed on ``node``."""
        self._apply(node, self._nodes.setdefault(node, _Node()), routes)

    def forget(self, node: str) -> int:
        """The node failed or left: every route of it goes; returns how many."""
        state = self._nodes.pop(node, None)
        for holders in self._shares.values():
            holders.pop(node, None)
        for key in [key for key, holders in self._shares.items() if not holders]:
            del self._shares[key]
        removed = self.sink.remove_destination(node)
        return removed if state is None else max(removed, len(state.filters))

    # ------------------------------------------------------------------ applying

    def _apply(self, node: str, state: _Node, routes: RouteCounts) -> None:
        filters = state.filters
        sink = self.sink
        tracking = state.snapshot is not None
        for topic_filter, count in routes:
            if tracking:
                state.touched.add(topic_filter)
            if count > 0:
                if topic_filter not in filters:
                    try:
                        sink.add_route(node, topic_filter)
                    except (ValueError, ProtocolError):  # a filter no broker accepts is nobody's route
                        continue
                filters[topic_filter] = count
                if topic_filter.startswith("$share/"):
                    self._shares.setdefault(_share_key(topic_filter), {})[node] = count
            elif filters.pop(topic_filter, None) is not None:
                sink.remove_route(node, topic_filter)
                if topic_filter.startswith("$share/"):
                    key = _share_key(topic_filter)
                    holders = self._shares.get(key)
                    if holders is not None:
                        holders.pop(node, None)
                        if not holders:
                            del self._shares[key]


def _share_key(topic_filter: str) -> ShareKey:
    group, real_filter = parse_shared(topic_filter)
    return group or "", real_filter
