"""The async store interface the engine persists its state through.

A store is opened once by the broker, then called by the engine on the connect, subscribe,
publish, acknowledge and disconnect paths (see docs/storage.md "How the engine calls the store").
Every method is a coroutine; a backend that cannot reach its storage raises
:class:`~hookmq.store.errors.StoreUnavailable`.

Semantics every backend must honour are pinned down by the contract suite in
:mod:`hookmq.testing.store_contract`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Protocol

from .records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from .settings import StorageSettings

__all__ = ["DropPolicy", "HasStorageSettings", "Store", "StoreFactory"]

#: Which message an append to a full queue drops: the oldest queued one, or the new one.
DropPolicy = Literal["drop_oldest", "drop_newest"]


class HasStorageSettings(Protocol):
    """What a store factory reads from the broker configuration (``hookmq.config.Config``)."""

    @property
    def storage(self) -> StorageSettings:
        """The validated ``[storage]`` table."""
        ...


#: What ``register_stores`` registers: builds a (not yet opened) store from the broker configuration.
StoreFactory = Callable[[Any], "Store"]


class Store(ABC):
    """Persistent broker state: sessions, subscriptions, inflight, offline queues, retained, ``$SYS``.

    State belonging to a client is keyed by its client id. Methods that write return once the
    write is durable (``ack_after_write``) or queued (``async`` durability; then
    :meth:`flush` is the durability point). Reads always see earlier writes of the same store
    object, whether committed yet or not.
    """

    #: Backend name, as used in ``[storage] backend``.
    name: ClassVar[str] = "abstract"

    def describe(self) -> str:
        """Where this store keeps its data, in a few words for the startup banner; never a secret.

        The default is the backend name; a backend should say where (a file, a server URL
        without its password).
        """
        return self.name

    # -- lifecycle ---------------------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None:
        """Connect to or create the storage; called once before any other method."""

    @abstractmethod
    async def close(self) -> None:
        """Flush pending writes and release every resource; the store is unusable afterwards."""

    @abstractmethod
    async def flush(self) -> None:
        """Return once every write issued before the call is durable."""

    @abstractmethod
    async def clear(self) -> None:
        """Delete all state of this store (all clients, retained messages, counters)."""

    # -- sessions ----------------------------------------------------------------------------

    @abstractmethod
    async def save_session(self, record: SessionRecord) -> None:
        """Insert or replace the session of ``record.client_id``."""

    @abstractmethod
    async def load_session(self, client_id: str) -> SessionRecord | None:
        """The stored session of ``client_id``, or ``None``."""

    @abstractmethod
    async def delete_session(self, client_id: str) -> None:
        """Forget the client entirely: session, subscriptions, inflight both ways and queue."""

    @abstractmethod
    async def list_sessions(self) -> list[SessionRecord]:
        """Every stored session (for restart, expiry sweeps and pending wills)."""

    # -- subscriptions -----------------------------------------------------------------------

    @abstractmethod
    async def save_subscription(self, client_id: str, subscription: SubscriptionRecord) -> None:
        """Insert, or replace the one with the same topic filter."""

    @abstractmethod
    async def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        """Remove one subscription; no error when it does not exist."""

    @abstractmethod
    async def load_subscriptions(self, client_id: str) -> list[SubscriptionRecord]:
        """The client's subscriptions, in any order."""

    @abstractmethod
    async def load_all_subscriptions(self) -> dict[str, list[SubscriptionRecord]]:
        """Every client's subscriptions (to rebuild the trie at start)."""

    # -- inflight towards the client (outgoing) ----------------------------------------------

    @abstractmethod
    async def save_outgoing(self, client_id: str, record: OutgoingRecord) -> None:
        """Insert or update by packet id; an update keeps the record's place in the order."""

    @abstractmethod
    async def delete_outgoing(self, client_id: str, packet_id: int) -> None:
        """Remove on PUBACK / PUBCOMP (or a drop); no error when absent."""

    @abstractmethod
    async def load_outgoing(self, client_id: str) -> list[OutgoingRecord]:
        """The client's unacknowledged messages in the order they were first saved (resend order)."""

    # -- inflight from the client (incoming QoS 2) --------------------------------------------

    @abstractmethod
    async def save_incoming(self, client_id: str, packet_id: int) -> None:
        """Remember a QoS 2 packet id whose PUBLISH was handled and whose PUBREL is awaited."""

    @abstractmethod
    async def delete_incoming(self, client_id: str, packet_id: int) -> None:
        """Forget the packet id once PUBREL arrived; no error when absent."""

    @abstractmethod
    async def load_incoming(self, client_id: str) -> list[int]:
        """The packet ids awaiting PUBREL, ascending."""

    # -- offline queue -----------------------------------------------------------------------

    @abstractmethod
    async def queue_append(
        self, client_id: str, message: StoredMessage, limit: int, policy: DropPolicy = "drop_oldest"
    ) -> StoredMessage | None:
        """Append ``message`` to the client's queue bounded to ``limit`` messages.

        When the queue is full, ``drop_oldest`` removes the head and ``drop_newest`` refuses
        ``message``; the dropped message is returned (``None`` when nothing was dropped).
        ``limit`` 0 stores nothing and returns ``message``.
        """

    @abstractmethod
    async def queue_peek(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """Up to ``count`` (all when ``None``) messages from the head, without removing them."""

    @abstractmethod
    async def queue_pop(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """Remove and return up to ``count`` (all when ``None``) messages from the head, oldest first."""

    @abstractmethod
    async def queue_length(self, client_id: str) -> int:
        """How many messages are queued for the client."""

    # -- retained messages -------------------------------------------------------------------

    @abstractmethod
    async def save_retained(self, message: StoredMessage) -> None:
        """Insert or replace the retained message of ``message.publish.topic``."""

    @abstractmethod
    async def delete_retained(self, topic: str) -> None:
        """Remove the retained message of ``topic``; no error when absent."""

    @abstractmethod
    async def load_retained(self) -> list[StoredMessage]:
        """Every retained message (any order)."""

    # -- $SYS counters -----------------------------------------------------------------------

    @abstractmethod
    async def save_counters(self, counters: dict[str, int | float | str]) -> None:
        """Replace the stored ``$SYS`` figures (called on each ``$SYS`` tick and at stop)."""

    @abstractmethod
    async def load_counters(self) -> dict[str, int | float | str]:
        """The last saved ``$SYS`` figures; empty when none were saved."""
