"""How the engine keeps persistent sessions and retained messages in the configured store.

The engine changes its in-memory state synchronously on the message path and records each
change here as an operation. One writer task applies the operations to the store in order,
so the message path never waits for storage, except where `durability = "ack_after_write"`
asks it to: then a QoS 1/2 acknowledgement waits for `barrier()`, which returns once every
operation recorded before it is durable.

With the memory backend the engine's own state is the store, so nothing is recorded.
Only persistent sessions (session expiry > 0) are written; clean sessions never touch storage.

State owned: the store, the queue of recorded operations with their sequence numbers, the
durable point, and which inflight saves can still be cancelled. Who changes it: every part
records operations through the methods below (the router, the delivery path, the connection
handler, the session lifecycle); only the writer task applies them and moves the durable
point. Reading the store back (at start, or a session another process stored) returns plain
sessions and messages: installing them is the caller's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..exits import EXIT_USAGE, SetupError, StoreOpenError
from ..mqtt.packets import NO_PROPERTIES, Publish
from ..mqtt.trie import SubscriberEntry
from ..store.errors import StoreError
from ..store.records import (
    OutgoingRecord,
    OutgoingState,
    SessionRecord,
    SessionState,
    StoredMessage,
    SubscriptionRecord,
)
from .message import Message
from .session import AWAIT_PUBCOMP, Outgoing, Queued, Session

if TYPE_CHECKING:
    from ..config import Config
    from ..hooks import HookFacade
    from ..store.base import Store
    from .stats import Stats

log = logging.getLogger("hookmq.persistence")

Operation = Callable[[], Awaitable[Any]]

#: Seconds the writer waits to collect operations in `async` durability.
WRITE_BEHIND_DELAY = 0.1

#: Operations kept while the store is unreachable before new ones are dropped (and counted).
MAX_PENDING_WRITES = 200_000


class _Op:
    """One recorded store call; a cancelled one keeps its place in the order but does nothing."""

    __slots__ = ("fn", "outgoing", "seq")

    def __init__(self, seq: int, fn: Operation, outgoing: tuple[str, int] | None) -> None:
        self.seq = seq
        self.fn: Operation | None = fn
        self.outgoing = outgoing

    def cancel(self) -> None:
        self.fn = None

    def start(self) -> Awaitable[Any]:
        assert self.fn is not None
        return self.fn()


class StorageFailed(Exception):
    """The store could not make a write durable; the engine must not acknowledge."""


class BackendNotRegistered(SetupError, RuntimeError):
    """``[storage] backend`` names a backend no enabled plugin registers (a configuration error)."""

    exit_status = EXIT_USAGE


def _cannot_open(backend: str, error: BaseException) -> str:
    """``cannot open the redis store: cannot reach redis://...``: the backend named once."""
    text = str(error) or type(error).__name__
    return f"cannot open the {backend} store: {text.removeprefix(f'{backend} store: ')}"


class Loaded:
    """What the store held at start: sessions (subscriptions in each) and retained messages."""

    __slots__ = ("retained", "sessions")

    def __init__(self) -> None:
        self.sessions: list[Session] = []
        #: Retained messages with the version each gets (its receive time, in nanoseconds).
        self.retained: list[tuple[Message, int]] = []


class Persistence:
    """The engine's write-behind (or write-through) link to its store."""

    def __init__(self, config: Config, stats: Stats, hooks: HookFacade) -> None:
        self.config = config
        self.settings = config.mqtt
        self.stats = stats
        self.hooks = hooks
        self.store: Store | None = None
        self.active = False
        self.must_wait = False
        self.shared = False
        #: Recorded operations not yet applied, with their sequence numbers, oldest first.
        self._ops: deque[_Op] = deque()
        #: Saves of inflight messages still in the queue, by (client id, packet id): cancellable.
        self._unapplied_saves: dict[tuple[str, int], list[_Op]] = {}
        #: Inflight messages with a save handed to the store: their completion must delete it.
        self._applied_saves: set[tuple[str, int]] = set()
        self._issued = 0
        #: Every operation with a sequence number up to this one is durable.
        self._durable = 0
        #: Sequence number of the oldest operation that failed and awaits its retry (0: none).
        self._failing = 0
        #: Operations refused because the backlog was full during a long outage.
        self.dropped_writes = 0
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        #: The last storage error, for logs, `$SYS` and the dashboard.
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        """Operations recorded and not yet applied to the store."""
        return len(self._ops)

    @property
    def issued(self) -> int:
        """Sequence number of the last recorded operation (compare before and after a change)."""
        return self._issued

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> Loaded:
        """Select, open and read the configured store; returns what it held.

        :raises StoreOpenError: the store cannot be opened or read (one line naming it).
        :raises BackendNotRegistered: no enabled plugin offers ``[storage] backend``.
        """
        storage = self.config.storage
        store = await self._create_store(storage.backend)
        try:
            await store.open()
        except (StoreError, OSError) as error:
            raise StoreOpenError(_cannot_open(storage.backend, error)) from error
        self.store = store
        self.active = storage.backend != "memory"
        self.must_wait = self.active and storage.durability == "ack_after_write"
        #: Whether other broker processes may change the same state (then sessions are re-read).
        self.shared = self.active and bool(getattr(self.store, "shared", storage.backend == "redis"))
        loaded = Loaded()
        if self.active:
            try:
                await self._load(loaded)
            except (StoreError, OSError) as error:
                await store.close()
                self.store = None
                raise StoreOpenError(_cannot_open(storage.backend, error)) from error
            self._writer = asyncio.create_task(self._write_loop(), name="hookmq-store-writer")
        return loaded

    async def _create_store(self, backend: str) -> Store:
        """Build the store registered under ``backend`` by a `register_stores` implementation."""
        factories: dict[str, Callable[[Any], Store]] = {}

        def register(name: str, factory: Callable[[Any], Store]) -> None:
            factories[name] = factory

        await self.hooks.per_plugin("register_stores", register=register)
        if backend not in factories:
            known = ", ".join(sorted(factories)) or "none"
            raise BackendNotRegistered(
                f"storage backend {backend!r} is not registered by any enabled plugin (known: {known})"
            )
        return factories[backend](self.config)

    async def close(self) -> None:
        """Apply what is pending, then close the store."""
        if self._writer is not None:
            try:
                await asyncio.wait_for(self.barrier(), timeout=10)
            except (StorageFailed, TimeoutError) as exc:
                log.error("state not fully stored at shutdown: %s", exc)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self.store is not None:
            store, self.store = self.store, None
            if self.active:
                try:
                    await store.save_counters(_counters(self.stats))
                except Exception as exc:  # the broker is stopping: report, do not raise
                    log.error("could not save counters: %s", exc)
            await store.close()

    async def _load(self, loaded: Loaded) -> None:
        """Read sessions, subscriptions, inflight, queues, retained messages and counters at start."""
        store = self.store
        assert store is not None
        now = time.time()
        for stored in await store.load_retained():
            loaded.retained.append((_message(stored), int(stored.received_at * 1e9)))
        subscriptions = await store.load_all_subscriptions()
        for record in await store.list_sessions():
            session = _session(record, now)
            for sub in subscriptions.get(record.client_id, []):
                entry = SubscriberEntry(record.client_id, sub.topic_filter, sub.options, sub.identifier)
                session.subscriptions[sub.topic_filter] = entry
            await self._load_messages(session)
            loaded.sessions.append(session)
        counters = await store.load_counters()
        for key in ("messages_received", "messages_sent", "clients_total", "clients_maximum"):
            value = counters.get(key)
            if isinstance(value, int):
                setattr(self.stats, key, value)

    async def _load_messages(self, session: Session) -> None:
        """Inflight both ways and the offline queue of one session."""
        store = self.store
        assert store is not None
        client_id = session.client_id
        outgoing = await store.load_outgoing(client_id)
        _restore_messages(session, outgoing, await store.load_incoming(client_id), await store.queue_peek(client_id))
        load_completed = getattr(store, "load_completed", None)  # see `outgoing_done`
        if load_completed is not None:
            for identity in await load_completed(client_id):
                session.note_completed(identity)
        load_pending = getattr(store, "load_incoming_pending", None)  # see `incoming_pending`
        if load_pending is not None:
            session.resend_identities = await load_pending(client_id) or None
        for record in outgoing:
            self._applied_saves.add((client_id, record.packet_id))

    def may_load(self) -> bool:
        """Whether `load_session` may find anything (a store is open): False means it returns None at once."""
        return self.active and self.store is not None

    async def load_session(self, client_id: str) -> Session | None:
        """A persistent session another broker process stored, for resumption here.

        Its subscriptions are in ``session.subscriptions``, not yet in any trie.
        """
        if not self.may_load():
            return None
        assert self.store is not None
        await self.barrier()
        record = await self.store.load_session(client_id)
        if record is None or record.is_expired(time.time()):
            return None
        session = _session(record, time.time())
        for sub in await self.store.load_subscriptions(client_id):
            entry = SubscriberEntry(client_id, sub.topic_filter, sub.options, sub.identifier)
            session.subscriptions[sub.topic_filter] = entry
        await self._load_messages(session)
        return session

    async def resumed_elsewhere(self, session: Session) -> bool:
        """Whether the stored copy of a session shows a later connection than ours (shared stores)."""
        store = self.store
        if store is None:
            return False
        try:
            record = await store.load_session(session.client_id)
        except Exception as exc:  # cannot tell: keep the session rather than risk deleting a live one
            log.warning("could not check session %s in the store: %s", session.client_id, exc)
            return True
        if record is None:
            return False
        ours = session.disconnected_at or 0.0
        return record.disconnected_at is None or record.disconnected_at > ours + 0.001

    # ------------------------------------------------------------------ the writer

    def _record(self, fn: Operation, outgoing: tuple[str, int] | None = None) -> None:
        if len(self._ops) >= MAX_PENDING_WRITES:
            # A long outage: keep the broker's memory bounded; say what is lost.
            self.dropped_writes += 1
            if self.dropped_writes == 1 or self.dropped_writes % 10_000 == 0:
                log.error("store backlog full (%d writes): %d writes dropped", MAX_PENDING_WRITES,
                          self.dropped_writes)
            return
        self._issued += 1
        op = _Op(self._issued, fn, outgoing)
        self._ops.append(op)
        if outgoing is not None:
            self._unapplied_saves.setdefault(outgoing, []).append(op)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        """Apply pending operations in batches; retry failures in order, with back-off.

        A batch is started in recording order and awaited together, so the store can group it
        into one commit or pipeline (each operation is one store call, and the stores queue
        their calls first-in, first-out). An operation that fails stays at the head and pins
        the durable point: nothing after it counts as durable before it succeeds.
        """
        backoff = 0.1
        while True:
            await self._wakeup.wait()
            if not self.must_wait:
                # Write-behind: gather for a moment, so saves of messages acknowledged meanwhile
                # cancel out instead of reaching the store (widens the loss window by this much).
                await asyncio.sleep(WRITE_BEHIND_DELAY)
            self._wakeup.clear()
            while self._ops:
                batch = [op for op in self._ops if op.fn is not None]
                last_seq = self._ops[-1].seq
                self._ops.clear()
                for op in batch:
                    self._taken(op)
                results = await asyncio.gather(*(op.start() for op in batch), return_exceptions=True)
                failed = [op for op, result in zip(batch, results, strict=True) if isinstance(result, BaseException)]
                if failed:
                    error = next(r for r in results if isinstance(r, BaseException))
                    self.last_error = f"{type(error).__name__}: {error}"
                    self._failing = failed[0].seq
                    self._ops.extendleft(reversed(failed))
                    self._durable = max(self._durable, failed[0].seq - 1)
                    self._progress.set()
                    self._progress.clear()
                    log.error("%d store writes failed (retrying in %.1fs): %s", len(failed), backoff,
                              self.last_error)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                self.last_error = None
                self._failing = 0
                self._durable = (self._ops[0].seq - 1) if self._ops else last_seq
                self._progress.set()
                self._progress.clear()
                if not self.must_wait:
                    break  # write-behind: gather the next batch for a moment too

    def _taken(self, op: _Op) -> None:
        """An operation leaves the queue for the store: a save can no longer be cancelled."""
        key = op.outgoing
        if key is None:
            return
        waiting = self._unapplied_saves.get(key)
        if waiting is not None and op in waiting:
            waiting.remove(op)
            if not waiting:
                del self._unapplied_saves[key]
        self._applied_saves.add(key)

    async def barrier(self, target: int | None = None) -> None:
        """Return once every operation up to ``target`` (default: all so far) is durable.

        Raises `StorageFailed` while an operation at or before ``target`` cannot be stored.
        """
        if not self.active or self.store is None:
            return
        if target is None:
            target = self._issued
        # Each recorded operation is applied by awaiting the store call, which in
        # `ack_after_write` returns once committed: past the durable point, nothing to flush.
        while self._durable < target:
            if self._failing and self._failing <= target:
                raise StorageFailed(self.last_error or "store write failed")
            await self._progress.wait()

    # ------------------------------------------------------------------ what the engine records

    def save_session(self, session: Session) -> None:
        """The session's own record (expiry, will, connected or not)."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            record = _record(session)
            self._record(lambda: store.save_session(record))

    def delete_session(self, session: Session) -> None:
        """Everything of a session that ended."""
        if self.active:
            store = self.store
            assert store is not None
            client_id = session.client_id
            self._applied_saves = {key for key in self._applied_saves if key[0] != client_id}
            self._record(lambda: store.delete_session(client_id))

    def save_subscription(self, session: Session, entry: SubscriberEntry) -> None:
        """A new or replaced subscription."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            record = SubscriptionRecord(entry.topic_filter, entry.options, entry.identifier)
            self._record(lambda: store.save_subscription(session.client_id, record))

    def delete_subscription(self, session: Session, topic_filter: str) -> None:
        """A removed subscription."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            self._record(lambda: store.delete_subscription(session.client_id, topic_filter))

    def save_outgoing(self, session: Session, out: Outgoing) -> None:
        """A message that took (or changed) an inflight slot towards the client."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            client_id = session.client_id
            message, qos, retain, ids = out.message, out.qos, out.retain, out.subscription_ids
            state: OutgoingState = "pubrel" if out.state == AWAIT_PUBCOMP else "publish"
            packet_id, sends = out.packet_id, out.sends

            def save() -> Awaitable[Any]:
                # Built when applied, so a save cancelled by its acknowledgement costs nothing.
                record = OutgoingRecord(packet_id, _stored(message, qos, retain, ids), state, sends)
                return store.save_outgoing(client_id, record)

            key = (client_id, packet_id)
            self._record(save, key)

    def outgoing_done(self, session: Session, packet_id: int, identity: bytes | None = None) -> None:
        """An inflight message completed or was dropped.

        When its saves are still waiting to be applied, they are cancelled and nothing is
        written: a message the client acknowledged before it was stored needs no storing. A
        completed message from another node (``identity``) is deleted with its identity noted,
        where the store keeps those (``complete_outgoing``, a cluster's shared store): a copy
        re-routed after its first node's crash is then recognised by whichever node loads the
        session.
        """
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            client_id = session.client_id
            key = (client_id, packet_id)
            for op in self._unapplied_saves.pop(key, ()):
                op.cancel()
            complete = getattr(store, "complete_outgoing", None) if identity is not None else None
            if complete is not None:
                self._applied_saves.discard(key)
                self._record(lambda: complete(client_id, packet_id, identity))
            elif key in self._applied_saves:
                self._applied_saves.discard(key)
                self._record(lambda: store.delete_outgoing(client_id, packet_id))

    def keeps_pending(self, session: Session) -> bool:
        """Whether a QoS 2 id forwarded from this session is stored as pending first (`incoming_pending`)."""
        return self.must_wait and session.persistent and hasattr(self.store, "save_incoming_pending")

    def incoming_pending(self, session: Session, packet_id: int, identity: bytes) -> None:
        """A QoS 2 id from the client whose message is being forwarded under ``identity``, not yet received.

        Stores that keep these (``save_incoming_pending``, a cluster's shared store) replace it
        with the received id (`incoming`) or drop it when released.
        """
        save = getattr(self.store, "save_incoming_pending", None)
        if self.active and session.persistent and save is not None:
            client_id = session.client_id
            self._record(lambda: save(client_id, packet_id, identity))

    def incoming(self, session: Session, packet_id: int, added: bool) -> None:
        """A QoS 2 packet id from the client awaiting PUBREL (added) or released."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            if added:
                self._record(lambda: store.save_incoming(session.client_id, packet_id))
            else:
                self._record(lambda: store.delete_incoming(session.client_id, packet_id))

    def queue_append(self, session: Session, item: Queued) -> None:
        """A message queued for the session (the store applies the same bound and policy)."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            settings = self.settings
            stored = _stored(item.message, item.qos, item.retain, item.subscription_ids)
            self._record(lambda: store.queue_append(session.client_id, stored, settings.max_queued_messages,
                                                    settings.queue_drop_policy))

    def queue_popped(self, session: Session, count: int) -> None:
        """``count`` messages left the head of the queue (sent or expired)."""
        if self.active and session.persistent and count:
            store = self.store
            assert store is not None
            self._record(lambda: store.queue_pop(session.client_id, count))

    def queue_rewritten(self, session: Session) -> None:
        """The queue changed other than at its ends: store it again as it now is.

        One store call per operation, so the store's first-in, first-out order keeps them apart.
        """
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            client_id = session.client_id
            settings = self.settings
            self._record(lambda: store.queue_pop(client_id))
            for queued in session.queue:
                stored = _stored(queued.message, queued.qos, queued.retain, queued.subscription_ids)
                self._record(lambda stored=stored: store.queue_append(  # type: ignore[misc]
                    client_id, stored, settings.max_queued_messages, settings.queue_drop_policy))

    def forget(self, client_id: str) -> None:
        """Delete whatever the store holds for a client id (clean start, possibly from another node)."""
        if self.active:
            store = self.store
            assert store is not None
            self._record(lambda: store.delete_session(client_id))

    def released(self, client_id: str) -> None:
        """A session left this broker while its stored copy stays (a shared store): stop tracking its saves."""
        self._applied_saves = {key for key in self._applied_saves if key[0] != client_id}

    def save_all(self, session: Session) -> None:
        """Record a whole session that arrived from elsewhere, replacing what the store held."""
        if self.active and session.persistent:
            store = self.store
            assert store is not None
            client_id = session.client_id
            self.released(client_id)
            self.forget(client_id)
            self.save_session(session)
            for entry in session.subscriptions.values():
                self.save_subscription(session, entry)
            for out in session.inflight.values():
                self.save_outgoing(session, out)
            for packet_id in sorted(session.incoming_qos2):
                self.incoming(session, packet_id, True)
            for item in session.queue:
                self.queue_append(session, item)

    def retained(self, message: Message, stored: bool) -> None:
        """A retained message set (stored) or cleared."""
        if self.active:
            store = self.store
            assert store is not None
            if stored:
                record = _stored(message, message.qos, True, ())
                self._record(lambda: store.save_retained(record))
            else:
                topic = message.topic
                self._record(lambda: store.delete_retained(topic))

    def counters(self) -> None:
        """The `$SYS` figures, on each `$SYS` tick."""
        if self.active:
            store = self.store
            assert store is not None
            figures = _counters(self.stats)
            self._record(lambda: store.save_counters(figures))


def _restore_messages(session: Session, outgoing: list[OutgoingRecord], incoming: list[int] | tuple[int, ...],
                      queue: list[StoredMessage] | tuple[StoredMessage, ...]) -> None:
    """Put stored inflight messages (both ways) and queued messages back into a session."""
    for record in outgoing:
        publish = record.message.publish
        out = Outgoing(record.packet_id, _message(record.message), publish.qos, publish.retain,
                       publish.properties.subscription_identifiers)
        out.state = AWAIT_PUBCOMP if record.state == "pubrel" else 0
        out.sends = record.sent_count
        session.inflight[record.packet_id] = out
        session.next_packet_id = record.packet_id % 65_535 + 1
    if incoming:
        session.hold_qos2(incoming)
    if queue:
        session.restore_queued(Queued(_message(stored), stored.publish.qos, stored.publish.retain,
                                      stored.publish.properties.subscription_identifiers) for stored in queue)


def state_of(session: Session) -> SessionState:
    """A session as the store records it (its connection, if any, counts as still attached)."""
    return SessionState(
        session=_record(session),
        subscriptions=tuple(SubscriptionRecord(e.topic_filter, e.options, e.identifier)
                            for e in session.subscriptions.values()),
        outgoing=tuple(
            OutgoingRecord(out.packet_id, _stored(out.message, out.qos, out.retain, out.subscription_ids),
                           "pubrel" if out.state == AWAIT_PUBCOMP else "publish", out.sends)
            for out in session.inflight.values()
        ),
        incoming=tuple(sorted(session.incoming_qos2)),
        queue=tuple(_stored(item.message, item.qos, item.retain, item.subscription_ids) for item in session.queue),
    )


def session_from_state(state: SessionState, now: float) -> Session:
    """The session a `SessionState` describes, disconnected; its subscriptions are not in any trie."""
    session = _session(state.session, now)
    client_id = session.client_id
    for sub in state.subscriptions:
        session.subscriptions[sub.topic_filter] = SubscriberEntry(client_id, sub.topic_filter, sub.options,
                                                                  sub.identifier)
    _restore_messages(session, list(state.outgoing), state.incoming, state.queue)
    return session


def _stored(message: Message, qos: int, retain: bool, ids: tuple[int, ...]) -> StoredMessage:
    """The store's form of a message as one subscriber receives it."""
    publish = message.to_publish(qos, retain, 0, None, ids)
    return StoredMessage(publish, time.time(), message.expiry_at, message.identity)


def _message(stored: StoredMessage) -> Message:
    """Back from the store's form to the engine's."""
    publish: Publish = stored.publish
    props = publish.properties
    if props is not NO_PROPERTIES and props.subscription_identifiers:
        from dataclasses import replace

        props = replace(props, subscription_identifiers=())
    return Message(publish.topic, publish.payload, publish.qos, publish.retain, props, stored.expiry_at,
                   identity=stored.identity)


def _record(session: Session) -> SessionRecord:
    return SessionRecord(
        client_id=session.client_id,
        protocol_level=session.protocol_level,
        clean_start=False,
        expiry_interval=session.expiry_interval,
        disconnected_at=session.disconnected_at,
        will=session.will,
        will_delay=session.will_delay,
        username=session.username,
    )


def _session(record: SessionRecord, now: float) -> Session:
    """A stored session; one the store thinks connected was cut off by a crash: disconnected now."""
    session = Session(record.client_id, record.protocol_level, record.username, record.expiry_interval,
                      record.disconnected_at if record.disconnected_at is not None else now,
                      record.will, record.will_delay)
    if session.will is not None:
        assert session.disconnected_at is not None
        session.will_due_at = session.disconnected_at + min(session.will_delay, session.expiry_interval)
    return session


def _counters(stats: Stats) -> dict[str, int | float | str]:
    return {
        "messages_received": stats.messages_received,
        "messages_sent": stats.messages_sent,
        "clients_total": stats.clients_total,
        "clients_maximum": stats.clients_maximum,
        "saved_at": time.time(),
    }
