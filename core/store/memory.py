"""The in-memory store: plain dicts, nothing survives the process. The default backend."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from .base import DropPolicy, Store
from .errors import StoreClosed
from .records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _ClientState:
    """Everything kept for one client id besides its session record."""

    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)
    outgoing: dict[int, OutgoingRecord] = field(default_factory=dict)
    incoming: set[int] = field(default_factory=set)
    queue: deque[StoredMessage] = field(default_factory=deque)

    def is_empty(self) -> bool:
        return not (self.subscriptions or self.outgoing or self.incoming or self.queue)


def _take(queue: deque[StoredMessage], count: int | None) -> list[StoredMessage]:
    """The first ``count`` items (all when ``None``) without removing them."""
    limit = len(queue) if count is None else min(count, len(queue))
    return [queue[index] for index in range(limit)]


class MemoryStore(Store):
    """Keeps everything in dicts; every write is "durable" as soon as it returns."""

    name: ClassVar[str] = "memory"

    def describe(self) -> str:
        """The banner's words: nothing outlives the process."""
        return "memory (in this process only: sessions and retained messages are lost when it stops)"

    def __init__(self) -> None:
        """Create an empty, closed store."""
        self._open = False
        self._sessions: dict[str, SessionRecord] = {}
        self._clients: dict[str, _ClientState] = {}
        self._retained: dict[str, StoredMessage] = {}
        self._counters: dict[str, int | float | str] = {}

    def _check(self) -> None:
        if not self._open:
            raise StoreClosed("memory store is not open")

    def _client(self, client_id: str) -> _ClientState:
        state = self._clients.get(client_id)
        if state is None:
            state = self._clients[client_id] = _ClientState()
        return state

    def _existing(self, client_id: str) -> _ClientState:
        """The client's state or an empty throw-away one, so reads never create entries."""
        return self._clients.get(client_id) or _ClientState()

    async def open(self) -> None:
        """Mark the store usable."""
        self._open = True

    async def close(self) -> None:
        """Mark the store unusable; the data stays for a later ``open`` of the same object."""
        self._open = False

    async def flush(self) -> None:
        """Nothing is ever pending."""
        self._check()

    async def clear(self) -> None:
        """Drop everything."""
        self._check()
        self._sessions.clear()
        self._clients.clear()
        self._retained.clear()
        self._counters.clear()

    async def save_session(self, record: SessionRecord) -> None:
        """Insert or replace the client's session."""
        self._check()
        self._sessions[record.client_id] = record

    async def load_session(self, client_id: str) -> SessionRecord | None:
        """The client's session or ``None``."""
        self._check()
        return self._sessions.get(client_id)

    async def delete_session(self, client_id: str) -> None:
        """Forget the client and all its state."""
        self._check()
        self._sessions.pop(client_id, None)
        self._clients.pop(client_id, None)

    async def list_sessions(self) -> list[SessionRecord]:
        """Every session."""
        self._check()
        return list(self._sessions.values())

    async def save_subscription(self, client_id: str, subscription: SubscriptionRecord) -> None:
        """Insert or replace by topic filter, keeping a replaced one's position."""
        self._check()
        self._client(client_id).subscriptions[subscription.topic_filter] = subscription

    async def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        """Remove one subscription."""
        self._check()
        self._existing(client_id).subscriptions.pop(topic_filter, None)

    async def load_subscriptions(self, client_id: str) -> list[SubscriptionRecord]:
        """The client's subscriptions in first-made order."""
        self._check()
        return list(self._existing(client_id).subscriptions.values())

    async def load_all_subscriptions(self) -> dict[str, list[SubscriptionRecord]]:
        """Every client's subscriptions; clients without any are left out."""
        self._check()
        return {cid: list(s.subscriptions.values()) for cid, s in self._clients.items() if s.subscriptions}

    async def save_outgoing(self, client_id: str, record: OutgoingRecord) -> None:
        """Insert or update by packet id (dict order keeps the first insertion's place)."""
        self._check()
        self._client(client_id).outgoing[record.packet_id] = record

    async def delete_outgoing(self, client_id: str, packet_id: int) -> None:
        """Remove one outgoing record."""
        self._check()
        self._existing(client_id).outgoing.pop(packet_id, None)

    async def load_outgoing(self, client_id: str) -> list[OutgoingRecord]:
        """Outgoing records in first-saved order."""
        self._check()
        return list(self._existing(client_id).outgoing.values())

    async def save_incoming(self, client_id: str, packet_id: int) -> None:
        """Remember a QoS 2 packet id."""
        self._check()
        self._client(client_id).incoming.add(packet_id)

    async def delete_incoming(self, client_id: str, packet_id: int) -> None:
        """Forget a QoS 2 packet id."""
        self._check()
        self._existing(client_id).incoming.discard(packet_id)

    async def load_incoming(self, client_id: str) -> list[int]:
        """QoS 2 packet ids, ascending."""
        self._check()
        return sorted(self._existing(client_id).incoming)

    async def queue_append(
        self, client_id: str, message: StoredMessage, limit: int, policy: DropPolicy = "drop_oldest"
    ) -> StoredMessage | None:
        """Append with the bound and drop policy of :meth:`Store.queue_append`."""
        self._check()
        if limit <= 0:
            return message
        queue = self._client(client_id).queue
        if len(queue) < limit:
            queue.append(message)
            return None
        if policy == "drop_newest":
            return message
        dropped = queue.popleft()
        queue.append(message)
        # A limit lowered since earlier appends: trim so the bound holds again.
        while len(queue) > limit:
            queue.popleft()
        return dropped

    async def queue_peek(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """The head of the queue, not removed."""
        self._check()
        return _take(self._existing(client_id).queue, count)

    async def queue_pop(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """Remove and return the head of the queue."""
        self._check()
        queue = self._existing(client_id).queue
        taken = _take(queue, count)
        for _ in taken:
            queue.popleft()
        return taken

    async def queue_length(self, client_id: str) -> int:
        """Queued message count."""
        self._check()
        return len(self._existing(client_id).queue)

    async def save_retained(self, message: StoredMessage) -> None:
        """Insert or replace the retained message of its topic."""
        self._check()
        self._retained[message.publish.topic] = message

    async def delete_retained(self, topic: str) -> None:
        """Remove a retained message."""
        self._check()
        self._retained.pop(topic, None)

    async def load_retained(self) -> list[StoredMessage]:
        """Every retained message."""
        self._check()
        return list(self._retained.values())

    async def save_counters(self, counters: dict[str, int | float | str]) -> None:
        """Replace the ``$SYS`` figures."""
        self._check()
        self._counters = dict(counters)

    async def load_counters(self) -> dict[str, int | float | str]:
        """The ``$SYS`` figures."""
        self._check()
        return dict(self._counters)
