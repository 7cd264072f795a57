"""Telling the other nodes this node's filters: a streamed snapshot when a link comes up, deltas after.

The snapshot is sent in chunks from a task of its own, a bounded number of chunks unacknowledged
at a time, yielding to the event loop between chunks, so 100 000 filters neither block the loop
nor fill the link's buffer. Each chunk carries the counts as they are when it is sent, and
deltas go out on the same ordered link as they happen, so whatever the peer heard last about a
filter is its current state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable
from typing import Any

from hookmq.ratelimit import LogLimiter

from .frames import (
    ROUTES_BEGIN,
    ROUTES_CHUNK,
    ROUTES_DELTA,
    ROUTES_END,
    encode_routes_begin,
    encode_routes_chunk,
    encode_routes_delta,
    encode_routes_end,
)
from .interest import LocalInterest
from .links import DataLinks
from .streams import NodeStreams

__all__ = ["RouteAnnouncer"]

log = logging.getLogger("hookmq.plugins.gossip.routing")
_limited = LogLimiter(log)


class RouteAnnouncer:
    """This node's `LocalInterest`, announced to every peer whose link is up."""

    def __init__(self, links: DataLinks, *, chunk_size: int = 2000, window: int = 8,
                 ack_timeout: float = 5.0) -> None:
        self.links = links
        self.interest = LocalInterest()
        self.chunk_size = chunk_size
        self.window = window
        #: How long a SUBSCRIBE waits for the peers to have its route before SUBACK anyway.
        self.ack_timeout = ack_timeout
        self._snapshot_ids = itertools.count(1)
        self._snapshots = NodeStreams()
        #: Snapshots completed per peer, and route acknowledgements that timed out.
        self.stats: dict[str, int] = {"snapshots_sent": 0, "route_ack_timeouts": 0, "deltas_sent": 0}

    def _up_peers(self) -> list[str]:
        return [node for node in self.links.peers() if self.links.is_up(node)]

    # ------------------------------------------------------------------ local changes

    def added(self, topic_filter: str, *, wait: bool = True) -> Awaitable[None] | None:
        """A session took a filter; returns what to await for the peers to have the route, or None
        (always None without ``wait``: a restored session has no SUBACK to hold back)."""
        change = self.interest.added(topic_filter)
        futures = self._announce(change) if change is not None else []
        return self._acknowledged(futures) if futures and wait else None

    def removed(self, topic_filter: str) -> None:
        """A session dropped a filter (nobody needs to wait for the others to hear it)."""
        change = self.interest.removed(topic_filter)
        if change is not None:
            self._announce(change)

    def _announce(self, change: tuple[str, int]) -> list[asyncio.Future[Any]]:
        peers = self._up_peers()
        if not peers:
            return []  # nobody to tell: a link that comes up later gets the snapshot
        body = encode_routes_delta([change])
        futures = []
        for node in peers:
            future = self.links.send(node, ROUTES_DELTA, body, reliable=True)
            self.stats["deltas_sent"] += 1
            if future is not None:
                futures.append(future)
        return futures

    async def _acknowledged(self, futures: list[asyncio.Future[Any]]) -> None:
        done, pending = await asyncio.wait(futures, timeout=self.ack_timeout)
        for future in done:
            if not future.cancelled():
                future.exception()  # retrieved: a failed link is the link layer's to report
        if pending:
            self.stats["route_ack_timeouts"] += 1
            _limited.log("route ack timeout", logging.WARNING,
                         "a route was not acknowledged by %d node(s) within %.1f s; SUBACK sent anyway",
                         len(pending), self.ack_timeout)

    # ------------------------------------------------------------------ snapshots

    def link_up(self, node: str) -> None:
        """Send ``node`` a full snapshot (replacing one still under way)."""
        self._snapshots.start(node, self._stream_snapshot(node))

    def link_down(self, node: str) -> None:
        """Stop streaming to ``node``; the next link-up starts again."""
        self._snapshots.stop(node)

    async def close(self) -> None:
        """Stop every snapshot under way."""
        await self._snapshots.close()

    async def _stream_snapshot(self, node: str) -> None:
        snapshot_id = next(self._snapshot_ids)
        links = self.links
        interest = self.interest
        try:
            links.send(node, ROUTES_BEGIN, encode_routes_begin(snapshot_id), reliable=True)
            filters = interest.filters()
            unacked: list[asyncio.Future[Any]] = []
            for start in range(0, len(filters), self.chunk_size):
                chunk = [(f, interest.count(f)) for f in filters[start:start + self.chunk_size]]
                future = links.send(node, ROUTES_CHUNK, encode_routes_chunk(snapshot_id, chunk), reliable=True)
                if future is not None:
                    unacked.append(future)
                if len(unacked) >= self.window:
                    await unacked.pop(0)
                await asyncio.sleep(0)  # never hold the loop for more than one chunk
            final = links.send(node, ROUTES_END, encode_routes_end(snapshot_id), reliable=True)
            if final is not None:
                unacked.append(final)
            for future in unacked:
                await future
            self.stats["snapshots_sent"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the link broke under us: the next link-up sends a new snapshot
            _limited.log("snapshot failed", logging.INFO, "route snapshot to %s stopped: %s", node, error)
        finally:
            self._snapshots.finished(node)
