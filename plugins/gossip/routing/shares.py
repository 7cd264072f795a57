"""Which member of a share group takes a message, across the whole cluster.

The engine offers every member able to take a message: this node's sessions, and one route
per other node holding the group. Each node weighs as many members as it has (it said so in
its route counts), each connected local session weighs one (offline ones none while anyone is
connected), and the members take turns in proportion: a group with two members here and
three on another node sends that node three messages in five. Exactly one member in the
cluster gets each message, because this node chooses exactly one, and the node chosen passes
it to exactly one of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ShareChooser"]

ShareKey = tuple[str, str]


class ShareChooser:
    """Weighted turns per share group over local sessions and other nodes."""

    __slots__ = ("_connected", "_turns", "_weight_of_node")

    def __init__(self, weight_of_node: Callable[[ShareKey, str], int], connected: Callable[[str], bool]) -> None:
        self._weight_of_node = weight_of_node
        self._connected = connected
        self._turns: dict[ShareKey, int] = {}

    def choose(self, key: ShareKey, members: Sequence[Any]) -> Any:
        """The member whose turn it is, or None to leave the choice to the engine."""
        weights = []
        for member in members:
            destination = getattr(member, "destination", None)
            if destination:
                weights.append(max(1, self._weight_of_node(key, destination)))
            else:
                weights.append(1 if self._connected(member.client_id) else 0)
        total = sum(weights)
        if total == 0:
            return None  # nobody connected: the engine queues for an offline member as on one broker
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        position = turn % total
        for member, weight in zip(members, weights, strict=True):
            if position < weight:
                return member
            position -= weight
        return None

    def forget(self, key: ShareKey) -> None:
        """Drop a group's turn (its last member went)."""
        self._turns.pop(key, None)
