"""The store contract suite: the semantics every :class:`hookmq.store.base.Store` must honour.

Import it into a test module and subclass it with a ``store_factory`` fixture. The factory
returns a *new, unopened* store object each call, all of them over the same underlying
storage (same file, same Redis database and prefix), so the suite can close a store and open
another one to check that state survives::

    import pytest
    from hookmq.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(path=tmp_path / "state")

Set ``persistent = False`` on the subclass for a store that keeps nothing across objects
(the reopen tests are then skipped). The suite clears the store before each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from ..mqtt.packets import Properties, Publish, SubscriptionOptions, Will
from ..store.base import Store
from ..store.errors import StoreError
from ..store.records import NEVER_EXPIRES, OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord

__all__ = ["StoreContract", "sample_message", "sample_session"]

#: Builds a new, unopened store over the storage under test.
StoreFactory = Callable[[], Store]

_RICH_PROPERTIES = Properties(
    payload_format_indicator=1,
    message_expiry_interval=3600,
    content_type="application/json",
    response_topic="reply/here",
    correlation_data=b"\x00\x01corr",
    subscription_identifiers=(7, 268_435_455),
    user_properties=(("k", "v"), ("k", "v2"), ("ünï", "ℂødé")),
)


def sample_message(topic: str = "a/b", payload: bytes = b"payload", **publish: object) -> StoredMessage:
    """A stored message with every field set to something non-default."""
    fields: dict[str, object] = {"qos": 1, "packet_id": 0, "properties": _RICH_PROPERTIES, **publish}
    return StoredMessage(
        publish=Publish(topic=topic, payload=payload, **fields),  # type: ignore[arg-type]
        received_at=1_700_000_000.25,
        expiry_at=1_700_003_600.25,
    )


def sample_session(client_id: str = "client-1", **changes: object) -> SessionRecord:
    """A disconnected persistent session with a delayed will and CONNECT properties."""
    values: dict[str, object] = {
        "protocol_level": 5,
        "clean_start": False,
        "expiry_interval": 300,
        "disconnected_at": 1_700_000_100.5,
        "will": Will(
            topic="last/will",
            payload=b"\xffgone\x00",
            qos=2,
            retain=True,
            properties=Properties(will_delay_interval=30, content_type="text/plain", user_properties=(("a", "b"),)),
        ),
        "will_delay": 30,
        "username": "alice",
        "keep_alive": 60,
        "properties": Properties(session_expiry_interval=300, receive_maximum=20, maximum_packet_size=65_536),
        "node": "node-a",
        **changes,
    }
    return SessionRecord(client_id=client_id, **values)  # type: ignore[arg-type]


class StoreContract:
    """Subclass with a ``store_factory`` fixture to run the contract against a store."""

    #: Whether state written through one store object is read back by a new one.
    persistent: bool = True

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override: return a callable building a new, unopened store over the storage under test."""
        raise NotImplementedError("subclasses of StoreContract must define a store_factory fixture")

    @pytest_asyncio.fixture
    async def store(self, store_factory: StoreFactory) -> AsyncIterator[Store]:
        """An open, empty store, closed after the test."""
        opened = store_factory()
        await opened.open()
        await opened.clear()
        try:
            yield opened
        finally:
            await opened.close()

    async def reopen(self, store: Store, store_factory: StoreFactory) -> Store:
        """Close ``store`` and open a new store object over the same storage."""
        if not self.persistent:
            pytest.skip("store is not persistent")
        await store.close()
        again = store_factory()
        await again.open()
        return again

    # -- lifecycle ---------------------------------------------------------------------------

    async def test_name_is_set(self, store: Store) -> None:
        assert isinstance(store.name, str) and store.name and store.name != "abstract"

    async def test_flush_after_writes(self, store: Store) -> None:
        await store.save_retained(sample_message("t"))
        await store.flush()
        assert [m.publish.topic for m in await store.load_retained()] == ["t"]

    async def test_closed_store_refuses_operations(self, store_factory: StoreFactory) -> None:
        closed = store_factory()
        await closed.open()
        await closed.close()
        with pytest.raises(StoreError):
            await closed.save_session(sample_session())

    async def test_clear_removes_everything(self, store: Store) -> None:
        await self._write_everything(store)
        await store.clear()
        assert await store.list_sessions() == []
        assert await store.load_all_subscriptions() == {}
        assert await store.load_outgoing("c1") == []
        assert await store.load_incoming("c1") == []
        assert await store.queue_length("c1") == 0
        assert await store.load_retained() == []
        assert await store.load_counters() == {}

    # -- sessions ----------------------------------------------------------------------------

    async def test_session_round_trip_keeps_every_field(self, store: Store) -> None:
        record = sample_session()
        await store.save_session(record)
        assert await store.load_session("client-1") == record

    async def test_connected_session_without_will(self, store: Store) -> None:
        record = SessionRecord(client_id="plain", protocol_level=4, clean_start=True)
        await store.save_session(record)
        loaded = await store.load_session("plain")
        assert loaded == record
        assert loaded is not None and loaded.connected and loaded.will is None

    async def test_missing_session_is_none(self, store: Store) -> None:
        assert await store.load_session("nobody") is None

    async def test_save_session_replaces(self, store: Store) -> None:
        await store.save_session(sample_session(disconnected_at=None))
        await store.save_session(sample_session(expiry_interval=NEVER_EXPIRES, will=None))
        loaded = await store.load_session("client-1")
        assert loaded is not None
        assert loaded.expiry_interval == NEVER_EXPIRES and loaded.will is None
        assert loaded.expires_at() is None

    async def test_list_sessions(self, store: Store) -> None:
        ids = [f"c{i}" for i in range(5)]
        for client_id in ids:
            await store.save_session(sample_session(client_id))
        assert sorted(s.client_id for s in await store.list_sessions()) == ids

    async def test_expiry_and_will_fields_survive(self, store: Store) -> None:
        await store.save_session(sample_session(disconnected_at=1000.0, expiry_interval=20, will_delay=60))
        loaded = await store.load_session("client-1")
        assert loaded is not None
        assert loaded.expires_at() == 1020.0
        assert loaded.will_due_at() == 1020.0  # the session ends before the will delay
        assert not loaded.is_expired(1019.9) and loaded.is_expired(1020.0)

    async def test_delete_session_removes_all_client_state(self, store: Store) -> None:
        await self._write_client(store, "gone")
        await self._write_client(store, "kept")
        await store.delete_session("gone")
        assert await store.load_session("gone") is None
        assert await store.load_subscriptions("gone") == []
        assert await store.load_outgoing("gone") == []
        assert await store.load_incoming("gone") == []
        assert await store.queue_length("gone") == 0
        assert "gone" not in await store.load_all_subscriptions()
        assert await store.load_session("kept") is not None
        assert len(await store.load_subscriptions("kept")) == 2
        assert await store.queue_length("kept") == 1

    async def test_delete_missing_session_is_harmless(self, store: Store) -> None:
        await store.delete_session("nobody")
        assert await store.list_sessions() == []

    # -- subscriptions -----------------------------------------------------------------------

    async def test_subscription_round_trip(self, store: Store) -> None:
        full = SubscriptionRecord(
            "$share/group/sensors/+/temp",
            SubscriptionOptions(qos=2, no_local=True, retain_as_published=True, retain_handling=2),
            identifier=268_435_455,
        )
        plain = SubscriptionRecord("a/#")
        await store.save_subscription("c1", full)
        await store.save_subscription("c1", plain)
        assert _by_filter(await store.load_subscriptions("c1")) == {full.topic_filter: full, "a/#": plain}

    async def test_subscription_replaced_by_filter(self, store: Store) -> None:
        await store.save_subscription("c1", SubscriptionRecord("a/b", SubscriptionOptions(qos=0), 1))
        await store.save_subscription("c1", SubscriptionRecord("a/b", SubscriptionOptions(qos=2), None))
        assert await store.load_subscriptions("c1") == [SubscriptionRecord("a/b", SubscriptionOptions(qos=2))]

    async def test_delete_subscription(self, store: Store) -> None:
        await store.save_subscription("c1", SubscriptionRecord("a"))
        await store.save_subscription("c1", SubscriptionRecord("b"))
        await store.delete_subscription("c1", "a")
        await store.delete_subscription("c1", "never-subscribed")
        await store.delete_subscription("nobody", "a")
        assert await store.load_subscriptions("c1") == [SubscriptionRecord("b")]

    async def test_subscriptions_per_client_and_all(self, store: Store) -> None:
        await store.save_subscription("c1", SubscriptionRecord("x/1"))
        await store.save_subscription("c2", SubscriptionRecord("x/2"))
        await store.save_subscription("c2", SubscriptionRecord("x/3"))
        await store.save_subscription("c3", SubscriptionRecord("x/4"))
        await store.delete_subscription("c3", "x/4")
        every = await store.load_all_subscriptions()
        assert {cid: sorted(s.topic_filter for s in subs) for cid, subs in every.items() if subs} == {
            "c1": ["x/1"],
            "c2": ["x/2", "x/3"],
        }
        assert await store.load_subscriptions("c3") == []

    # -- outgoing inflight -------------------------------------------------------------------

    async def test_outgoing_round_trip(self, store: Store) -> None:
        record = OutgoingRecord(
            packet_id=65_535, message=sample_message(qos=2, packet_id=65_535, dup=True), state="publish", sent_count=3
        )
        await store.save_outgoing("c1", record)
        assert await store.load_outgoing("c1") == [record]

    async def test_outgoing_order_is_first_save_order(self, store: Store) -> None:
        ids = [9, 3, 65_535, 1, 200]
        for packet_id in ids:
            await store.save_outgoing("c1", _outgoing(packet_id))
        # Moving to PUBREL must not move the message to the back of the resend order.
        await store.save_outgoing("c1", _outgoing(3, state="pubrel", sent_count=1))
        loaded = await store.load_outgoing("c1")
        assert [r.packet_id for r in loaded] == ids
        assert loaded[1].state == "pubrel" and loaded[1].sent_count == 1

    async def test_delete_outgoing(self, store: Store) -> None:
        for packet_id in (1, 2, 3):
            await store.save_outgoing("c1", _outgoing(packet_id))
        await store.save_outgoing("c2", _outgoing(2))
        await store.delete_outgoing("c1", 2)
        await store.delete_outgoing("c1", 99)
        assert [r.packet_id for r in await store.load_outgoing("c1")] == [1, 3]
        assert [r.packet_id for r in await store.load_outgoing("c2")] == [2]

    async def test_outgoing_packet_id_reused_after_delete(self, store: Store) -> None:
        await store.save_outgoing("c1", _outgoing(1))
        await store.save_outgoing("c1", _outgoing(2))
        await store.delete_outgoing("c1", 1)
        await store.save_outgoing("c1", _outgoing(1, topic="again"))
        loaded = await store.load_outgoing("c1")
        assert [(r.packet_id, r.message.publish.topic) for r in loaded] == [(2, "t/2"), (1, "again")]

    # -- incoming QoS 2 ----------------------------------------------------------------------

    async def test_incoming_packet_ids(self, store: Store) -> None:
        for packet_id in (500, 1, 65_535, 1):
            await store.save_incoming("c1", packet_id)
        await store.save_incoming("c2", 7)
        await store.delete_incoming("c1", 500)
        await store.delete_incoming("c1", 4)
        assert await store.load_incoming("c1") == [1, 65_535]
        assert await store.load_incoming("c2") == [7]
        assert await store.load_incoming("c3") == []

    # -- offline queue -----------------------------------------------------------------------

    async def test_queue_keeps_order_and_content(self, store: Store) -> None:
        messages = [sample_message(f"q/{i}", payload=bytes([i]) * i) for i in range(5)]
        for message in messages:
            assert await store.queue_append("c1", message, limit=10) is None
        assert await store.queue_length("c1") == 5
        assert await store.queue_peek("c1", 2) == messages[:2]
        assert await store.queue_length("c1") == 5
        assert await store.queue_pop("c1", 2) == messages[:2]
        assert await store.queue_pop("c1") == messages[2:]
        assert await store.queue_length("c1") == 0
        assert await store.queue_pop("c1") == []

    async def test_queue_drop_oldest(self, store: Store) -> None:
        for i in range(3):
            await store.queue_append("c1", sample_message(f"q/{i}"), limit=3)
        dropped = await store.queue_append("c1", sample_message("q/3"), limit=3, policy="drop_oldest")
        assert dropped is not None and dropped.publish.topic == "q/0"
        assert [m.publish.topic for m in await store.queue_peek("c1")] == ["q/1", "q/2", "q/3"]

    async def test_queue_drop_newest(self, store: Store) -> None:
        for i in range(3):
            await store.queue_append("c1", sample_message(f"q/{i}"), limit=3, policy="drop_newest")
        refused = sample_message("q/3")
        assert await store.queue_append("c1", refused, limit=3, policy="drop_newest") == refused
        assert [m.publish.topic for m in await store.queue_peek("c1")] == ["q/0", "q/1", "q/2"]

    async def test_queue_limit_zero_stores_nothing(self, store: Store) -> None:
        message = sample_message()
        assert await store.queue_append("c1", message, limit=0) == message
        assert await store.queue_length("c1") == 0

    async def test_queue_lowered_limit_is_enforced(self, store: Store) -> None:
        for i in range(5):
            await store.queue_append("c1", sample_message(f"q/{i}"), limit=5)
        await store.queue_append("c1", sample_message("q/5"), limit=2)
        assert [m.publish.topic for m in await store.queue_peek("c1")] == ["q/4", "q/5"]

    async def test_queues_are_per_client(self, store: Store) -> None:
        await store.queue_append("c1", sample_message("one"), limit=5)
        await store.queue_append("c2", sample_message("two"), limit=5)
        assert [m.publish.topic for m in await store.queue_pop("c2")] == ["two"]
        assert await store.queue_length("c1") == 1

    async def test_queued_message_keeps_expiry(self, store: Store) -> None:
        message = StoredMessage(Publish("e", b"x", qos=0), received_at=10.0, expiry_at=None)
        expiring = StoredMessage(Publish("e", b"y", qos=1), received_at=10.0, expiry_at=15.5)
        await store.queue_append("c1", message, limit=5)
        await store.queue_append("c1", expiring, limit=5)
        loaded = await store.queue_pop("c1")
        assert loaded == [message, expiring]
        assert not loaded[0].is_expired(1e12) and loaded[1].is_expired(15.5)
        assert loaded[1].remaining_expiry(10.0) == 6

    # -- retained ----------------------------------------------------------------------------

    async def test_retained_save_replace_delete(self, store: Store) -> None:
        await store.save_retained(sample_message("r/1", retain=True))
        await store.save_retained(sample_message("r/2", b"old", retain=True))
        await store.save_retained(sample_message("r/2", b"new", retain=True))
        await store.save_retained(sample_message("r/ünïcødé", b"", retain=True))
        await store.delete_retained("r/1")
        await store.delete_retained("never")
        loaded = {m.publish.topic: m for m in await store.load_retained()}
        assert sorted(loaded) == ["r/2", "r/ünïcødé"]
        assert loaded["r/2"] == sample_message("r/2", b"new", retain=True)

    # -- $SYS counters -----------------------------------------------------------------------

    async def test_counters_round_trip_and_replace(self, store: Store) -> None:
        assert await store.load_counters() == {}
        await store.save_counters({"messages_received": 10, "uptime": 1.5, "version": "0.1.0"})
        await store.save_counters({"messages_received": 2**40, "started": 1_700_000_000.125, "version": "0.2"})
        loaded = await store.load_counters()
        assert loaded == {"messages_received": 2**40, "started": 1_700_000_000.125, "version": "0.2"}
        assert isinstance(loaded["messages_received"], int)

    # -- concurrency -------------------------------------------------------------------------

    async def test_concurrent_writes_all_land(self, store: Store) -> None:
        await asyncio.gather(*(store.save_outgoing("c1", _outgoing(i)) for i in range(1, 301)))
        await asyncio.gather(*(store.save_incoming("c1", i) for i in range(1, 101)))
        assert [r.packet_id for r in await store.load_outgoing("c1")] == list(range(1, 301))
        assert await store.load_incoming("c1") == list(range(1, 101))

    # -- persistence -------------------------------------------------------------------------

    async def test_state_survives_reopen(self, store: Store, store_factory: StoreFactory) -> None:
        await self._write_everything(store)
        again = await self.reopen(store, store_factory)
        try:
            assert await again.load_session("c1") == sample_session("c1")
            assert _by_filter(await again.load_subscriptions("c1")) == _by_filter(_client_subscriptions())
            assert await again.load_outgoing("c1") == [_outgoing(5), _outgoing(2, state="pubrel", sent_count=1)]
            assert await again.load_incoming("c1") == [4, 8]
            assert await again.queue_peek("c1") == [sample_message("queued")]
            assert await again.load_retained() == [sample_message("ret", retain=True)]
            assert await again.load_counters() == {"clients_total": 3, "version": "x"}
        finally:
            await again.close()

    # -- helpers -----------------------------------------------------------------------------

    async def _write_client(self, store: Store, client_id: str) -> None:
        await store.save_session(sample_session(client_id))
        for subscription in _client_subscriptions():
            await store.save_subscription(client_id, subscription)
        await store.save_outgoing(client_id, _outgoing(5))
        await store.save_outgoing(client_id, _outgoing(2, state="pubrel", sent_count=1))
        await store.save_incoming(client_id, 8)
        await store.save_incoming(client_id, 4)
        await store.queue_append(client_id, sample_message("queued"), limit=10)

    async def _write_everything(self, store: Store) -> None:
        await self._write_client(store, "c1")
        await store.save_retained(sample_message("ret", retain=True))
        await store.save_counters({"clients_total": 3, "version": "x"})
        await store.flush()


def _client_subscriptions() -> list[SubscriptionRecord]:
    return [SubscriptionRecord("a/+", SubscriptionOptions(qos=1), 3), SubscriptionRecord("$share/g/b/#")]


def _outgoing(packet_id: int, *, state: str = "publish", sent_count: int = 0, topic: str | None = None) -> OutgoingRecord:
    message = sample_message(topic or f"t/{packet_id}", qos=2, packet_id=packet_id)
    return OutgoingRecord(packet_id=packet_id, message=message, state=state, sent_count=sent_count)  # type: ignore[arg-type]


def _by_filter(subscriptions: list[SubscriptionRecord]) -> dict[str, SubscriptionRecord]:
    return {s.topic_filter: s for s in subscriptions}
