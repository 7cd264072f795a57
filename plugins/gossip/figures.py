"""Each node's headline figures, exchanged over the data links so any node can show the whole cluster.

Every ``interval`` seconds a node reads its broker's figures (clients connected,
subscriptions, messages received and sent), works out its own rates per second from its
previous reading, and sends them to every peer whose link is up as one *unreliable* link frame
of kind :data:`FIGURES` (a msgpack map of a few dozen bytes). Each node keeps the newest
figures of every peer with the time they arrived (its own clock); figures older than
``stale_after`` are reported as stale and are not summed.

Why link frames and not member metadata: a metadata change is gossiped to every node as an
``UPDATE`` event (and logged), so a value that changes every second would crowd the gossip
and the log. A lost figures frame costs nothing: the next one carries absolute values.

:class:`FigureBook` is sans-I/O (readings and clock values in, figures out); the
:class:`FigureExchange` drives it from the broker's loop. Read it with
:func:`hookmq.plugins.gossip.figures_of`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]

from hookmq.ratelimit import LogLimiter

__all__ = ["FIGURES", "FigureBook", "FigureExchange", "NodeFigures"]

log = logging.getLogger("hookmq.plugins.gossip.figures")
_limited = LogLimiter(log)

FIGURES = 48
"""The link frame kind of a figures frame (routing uses 32-37)."""
MAX_BODY = 512
"""A figures frame is a handful of numbers; anything larger is refused."""


@dataclass(frozen=True, slots=True)
class NodeFigures:
    """One node's figures at one moment (``at``: when they were taken or, for a peer's, received)."""

    node: str
    at: float
    clients: int
    subscriptions: int
    messages_received: int
    messages_sent: int
    #: Rates per second since the node's previous reading (0.0 for its first).
    messages_in_per_second: float
    messages_out_per_second: float

    def as_json(self) -> dict[str, Any]:
        """The figures as the dashboard's API shows them (``at`` as unix time)."""
        return {"at": round(self.at, 3), "clients": self.clients, "subscriptions": self.subscriptions,
                "messages_received": self.messages_received, "messages_sent": self.messages_sent,
                "messages_in_per_second": self.messages_in_per_second,
                "messages_out_per_second": self.messages_out_per_second}


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _rate(value: object) -> float:
    return round(float(value), 3) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class FigureBook:
    """The newest figures of this node and of each peer (sans-I/O)."""

    def __init__(self, name: str, stale_after: float) -> None:
        self.name = name
        self.stale_after = stale_after
        self.local: NodeFigures | None = None
        self._peers: dict[str, NodeFigures] = {}
        #: Frames refused as unreadable.
        self.bad_frames = 0

    def record_local(self, now: float, info: Mapping[str, Any]) -> NodeFigures:
        """Take this node's reading (``broker.info()``) at ``now``; rates come from the previous one."""
        received, sent = _count(info.get("messages_received")), _count(info.get("messages_sent"))
        rate_in = rate_out = 0.0
        previous = self.local
        if previous is not None and now > previous.at:
            elapsed = now - previous.at
            rate_in = round(max(received - previous.messages_received, 0) / elapsed, 3)
            rate_out = round(max(sent - previous.messages_sent, 0) / elapsed, 3)
        self.local = NodeFigures(self.name, now, _count(info.get("clients_connected")), _count(info.get("subscriptions")),
                                 received, sent, rate_in, rate_out)
        return self.local

    def encode_local(self) -> bytes:
        """The frame body sent to the peers (empty before the first reading)."""
        figures = self.local
        if figures is None:
            return b""
        body = {"c": figures.clients, "s": figures.subscriptions, "r": figures.messages_received,
                "x": figures.messages_sent, "ri": figures.messages_in_per_second, "ro": figures.messages_out_per_second}
        packed: bytes = msgpack.packb(body, use_bin_type=True)
        return packed

    def received(self, node: str, body: bytes, now: float) -> NodeFigures | None:
        """A peer's frame; None (counted) when it is not a figures map."""
        try:
            if len(body) > MAX_BODY:
                raise ValueError(f"{len(body)} bytes")
            fields = msgpack.unpackb(body, raw=False, strict_map_key=True)
            if not isinstance(fields, dict):
                raise ValueError("not a map")
        except Exception as error:  # any bytes may arrive from a peer
            self.bad_frames += 1
            _limited.log("bad figures", logging.WARNING, "unreadable figures frame from node %s: %s", node, error)
            return None
        figures = NodeFigures(node, now, _count(fields.get("c")), _count(fields.get("s")), _count(fields.get("r")),
                              _count(fields.get("x")), _rate(fields.get("ri")), _rate(fields.get("ro")))
        self._peers[node] = figures
        return figures

    def forget(self, node: str) -> None:
        """The node failed or left: its figures no longer count."""
        self._peers.pop(node, None)

    def of(self, node: str) -> NodeFigures | None:
        """The newest figures of one node (this one included), or None."""
        return self.local if node == self.name else self._peers.get(node)

    def is_fresh(self, figures: NodeFigures, now: float) -> bool:
        """Whether figures are recent enough to count."""
        return now - figures.at <= self.stale_after

    def totals(self, now: float, live: set[str]) -> dict[str, float]:
        """Sums over the ``live`` nodes whose figures are fresh, and how many nodes they are."""
        chosen = [f for f in (self.of(name) for name in sorted(live)) if f is not None and self.is_fresh(f, now)]
        return {
            "nodes_reporting": len(chosen),
            "clients": sum(f.clients for f in chosen),
            "subscriptions": sum(f.subscriptions for f in chosen),
            "messages_in_per_second": round(sum(f.messages_in_per_second for f in chosen), 3),
            "messages_out_per_second": round(sum(f.messages_out_per_second for f in chosen), 3),
        }


class FigureExchange:
    """Reads the broker's figures every ``interval`` seconds and sends them to every up peer."""

    def __init__(self, broker: Any, links: Any, cluster: Any, *, interval: float = 1.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.broker = broker
        self.links = links
        self.interval = interval
        self.book = FigureBook(links.name, stale_after=3 * interval + 1.0)
        self._clock = clock or time.time
        self._task: asyncio.Task[None] | None = None
        self._undo: list[Callable[[], Any]] = [links.on_receive(self._receive), cluster.on_event(self._member_event)]

    def start(self) -> None:
        """Take a first reading and start the periodic task."""
        self.tick()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hookmq-cluster-figures")

    async def stop(self) -> None:
        """Stop the task and stop listening."""
        for undo in self._undo:
            with contextlib.suppress(Exception):
                undo()
        self._undo.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def tick(self) -> None:
        """One reading, sent to every peer whose link is up."""
        self.book.record_local(self._clock(), self.broker.info())
        body = self.book.encode_local()
        for node in self.links.peers():
            if self.links.is_up(node):
                with contextlib.suppress(Exception):  # a link going down meanwhile: the next tick tells
                    self.links.send(node, FIGURES, body, reliable=False)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.tick()
            except Exception:
                log.exception("cluster figures: reading or sending failed")

    def _receive(self, node: str, kind: int, body: bytes) -> None:
        if kind == FIGURES:
            self.book.received(node, body, self._clock())

    def _member_event(self, event: Any) -> None:
        if event.member.state.name in ("DEAD", "LEFT"):
            self.book.forget(event.member.name)
