"""Retained messages across nodes: every node's cache kept current with versions.

Each local change (`on_retain_message`, with the version the broker gave it) is sent to every
peer whose link is up (a ``RETAINED`` frame) and, with a shared Redis store, written to the
versioned key space there (`hookmq.plugins.redis_store.versioned`), which is the truth: a
compare-and-set on the version, so an old update never wins and a cleared topic stays cleared.
The retained publish is acknowledged (and its publisher's next packet read) only once the
peers have it, so a subscriber anywhere gets a retained message published a moment ago.

When a link comes up each side streams its whole retained set, tombstones included, in chunks;
without a shared store that is how live nodes exchange retained messages. A node starting with
a shared store first reads the versioned key space, which overrides the plain records the
engine loaded (the newer version wins; a tombstone clears).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from hookmq import Message, RetainedVersion
from hookmq.mqtt.packets import Publish
from hookmq.ratelimit import LogLimiter

from .frames import RETAINED, RetainedState, decode, encode_publish_body, encode_retained
from .links import DataLinks
from .streams import NodeStreams

__all__ = ["RetainedSync", "VersionedStore"]

log = logging.getLogger("hookmq.plugins.gossip.routing")
_limited = LogLimiter(log)

#: Bytes of retained messages per snapshot frame (at least one message each).
CHUNK_BYTES = 256 * 1024


class VersionedStore(Protocol):
    """A shared store of retained states with a version each (Redis in practice)."""

    async def put(self, topic: str, version: int, message: bytes | None) -> bool: ...

    async def load(self) -> list[tuple[str, int, bytes | None]]: ...

    async def close(self) -> None: ...


class RetainedSync:
    """This node's side of the cluster's retained set."""

    def __init__(self, broker: Any, links: DataLinks, store: VersionedStore | None = None, *,
                 ack_timeout: float = 5.0) -> None:
        self.broker = broker
        self.links = links
        self.store = store
        self.ack_timeout = ack_timeout
        self._snapshots = NodeStreams()
        self.stats: dict[str, int] = {"retained_sent": 0, "retained_applied": 0, "retained_stale": 0,
                                      "retained_store_errors": 0, "retained_ack_timeouts": 0}

    async def load_from_store(self) -> int:
        """Take the shared store's versioned states in; returns how many changed the cache."""
        if self.store is None:
            return 0
        states = await self.store.load()
        entries = []
        for topic, version, data in states:
            message = _message_from_bytes(topic, data) if data else None
            if data and message is None:
                continue
            entries.append(RetainedVersion(topic, message, version))
        return len(self.broker.replace_retained(entries))

    # ------------------------------------------------------------------ local changes

    async def changed(self, packet: Publish, stored: bool, version: int) -> None:
        """A retained message was set or cleared here: tell the store and every peer, and wait for them."""
        publish = None
        if stored:
            current = self.broker.retained_message(packet.topic)  # with its remaining expiry, which the hook lacks
            publish = encode_publish_body(current if current is not None else packet)
        body = encode_retained([(packet.topic, version, publish)])
        waits: list[asyncio.Future[Any]] = []
        for node in self.links.peers():
            if self.links.is_up(node):
                future = self.links.send(node, RETAINED, body, reliable=True)
                self.stats["retained_sent"] += 1
                if future is not None:
                    waits.append(future)
        if self.store is not None:
            waits.append(asyncio.ensure_future(self._store_put(packet.topic, version, publish)))
        if not waits:
            return
        done, pending = await asyncio.wait(waits, timeout=self.ack_timeout)
        for future in done:
            if not future.cancelled():
                future.exception()
        if pending:
            self.stats["retained_ack_timeouts"] += 1
            _limited.log("retained timeout", logging.WARNING,
                         "a retained change of %r was not confirmed by %d peer(s) or the store within %.1f s",
                         packet.topic, len(pending), self.ack_timeout)

    async def _store_put(self, topic: str, version: int, publish: bytes | None) -> None:
        assert self.store is not None
        try:
            await self.store.put(topic, version, publish)
        except Exception as error:  # Redis down: the peers still have it; the next change or snapshot repairs
            self.stats["retained_store_errors"] += 1
            _limited.log("retained store", logging.WARNING, "versioned retained write failed: %s", error)

    # ------------------------------------------------------------------ from peers

    def received(self, states: tuple[RetainedState, ...]) -> None:
        """Apply retained states from a peer (only newer versions win)."""
        now = time.time()
        entries = []
        for state in states:
            message = None
            if state.publish is not None:
                if not state.publish.payload:
                    message = None
                else:
                    message = Message.from_publish(state.publish, None, now, None)
            entries.append(RetainedVersion(state.topic, message, state.version))
        applied = self.broker.replace_retained(entries)
        self.stats["retained_applied"] += len(applied)
        self.stats["retained_stale"] += len(entries) - len(applied)

    # ------------------------------------------------------------------ snapshots

    def link_up(self, node: str) -> None:
        """Stream the whole retained set to ``node``."""
        self._snapshots.start(node, self._stream(node))

    def link_down(self, node: str) -> None:
        """Stop streaming to ``node``."""
        self._snapshots.stop(node)

    async def close(self) -> None:
        """Stop snapshots and close the store connection."""
        await self._snapshots.close()
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()

    async def _stream(self, node: str) -> None:
        try:
            now = time.time()
            batch: list[tuple[str, int, bytes | None]] = []
            size = 0
            unacked: list[asyncio.Future[Any]] = []
            for entry in self.broker.retained_versions():
                if entry.topic.startswith("$"):
                    continue  # $SYS stays on its node
                message = entry.message
                if message is not None and message.expired(now):
                    continue
                data = encode_publish_body(message.to_publish(message.qos, True, 0, now)) if message else None
                batch.append((entry.topic, entry.version, data))
                size += len(entry.topic) + (len(data) if data else 0) + 16
                if size >= CHUNK_BYTES:
                    unacked.extend(self._send_batch(node, batch))
                    batch, size = [], 0
                    if len(unacked) >= 8:
                        await unacked.pop(0)
                    await asyncio.sleep(0)
            if batch:
                unacked.extend(self._send_batch(node, batch))
            for future in unacked:
                await future
        except asyncio.CancelledError:
            raise
        except Exception as error:
            _limited.log("retained snapshot", logging.INFO, "retained snapshot to %s stopped: %s", node, error)
        finally:
            self._snapshots.finished(node)

    def _send_batch(self, node: str, batch: list[tuple[str, int, bytes | None]]) -> list[asyncio.Future[Any]]:
        future = self.links.send(node, RETAINED, encode_retained(batch), reliable=True)
        self.stats["retained_sent"] += len(batch)
        return [future] if future is not None else []


def _message_from_bytes(topic: str, data: bytes) -> Message | None:
    """A retained message from the store's bytes (an encoded PUBLISH), or None when unreadable."""
    try:
        states = decode(RETAINED, encode_retained([(topic, 0, data)]))
    except Exception:
        _limited.log("retained unreadable", logging.WARNING, "unreadable retained state of %r in the store", topic)
        return None
    assert isinstance(states, tuple)
    publish = states[0].publish
    if publish is None or not publish.payload:
        return None
    return Message.from_publish(publish, None, time.time(), None)
