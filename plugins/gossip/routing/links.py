"""What cluster routing needs of the data links (`hookmq.plugins.gossip.link`), as a protocol.

The link layer keeps one persistent, authenticated TCP connection per pair of nodes; frames
sent ``reliable`` are acknowledged by the peer after its receive handler's awaitable completed,
resent after a reconnect, deduplicated and kept in order. Routing defines the frame kinds it
sends (`frames`) and encodes their bodies. Tests of routing's logic may stand an in-memory
double of this protocol in for the links; brokers are always real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

__all__ = ["DataLinks", "ReceiveCallback", "UnackedCallback"]

ReceiveCallback = Callable[[str, int, bytes], "Awaitable[Any] | None"]
UnackedCallback = Callable[[str, list[tuple[int, bytes]]], None]


class DataLinks(Protocol):
    """The links of one node to the others."""

    def on_up(self, callback: Callable[[str], None]) -> Any:
        """``callback(node)`` when the link to a node is (again) connected."""

    def on_down(self, callback: Callable[[str], None]) -> Any:
        """``callback(node)`` when the link to a node broke."""

    def on_receive(self, callback: ReceiveCallback) -> Any:
        """``callback(node, kind, body)`` per frame; a reliable frame is acked after its awaitable completes."""

    def on_unacked(self, callback: UnackedCallback) -> Any:
        """``callback(node, frames)``: a node failed or left; its reliable frames never acked, for re-routing."""

    def on_gone(self, callback: Callable[[str], None]) -> Any:
        """``callback(node)``: a node left, or failed and its link went silent (before ``on_unacked``)."""

    def send(self, node: str, kind: int, body: bytes, *, reliable: bool) -> asyncio.Future[Any] | None:
        """Queue one frame; reliable: a future that resolves when the peer acknowledged it."""

    def has_room(self, node: str, size: int = 0) -> bool:
        """Whether a reliable frame of ``size`` body bytes to ``node`` would be taken now (back-pressure)."""

    def wait_for_room(self, node: str, size: int = 0) -> asyncio.Future[bool]:
        """True once ``node``'s outbox has room again; False when ``node`` is no peer (gone) or this node stops."""

    def is_up(self, node: str) -> bool:
        """Whether the link to ``node`` is connected now."""

    def peers(self) -> list[str]:
        """The nodes this node keeps links to."""

    def stats(self, node: str) -> dict[str, Any]:
        """Counters of the link to ``node``."""
