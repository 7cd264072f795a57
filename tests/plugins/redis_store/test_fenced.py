"""The fenced store of a cluster against a real redis-server: one owner per session, fenced by epoch."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis

from hookmq.mqtt.packets import Publish
from hookmq.plugins.redis_store.fenced import COMPLETED_KEPT, FencedRedisStore
from hookmq.plugins.redis_store.settings import RedisStoreSettings
from hookmq.store.records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from hookmq.testing.redis import RedisServer
from hookmq.testing.store_contract import StoreContract, StoreFactory


class TestFencedRedisStoreContract(StoreContract):
    """The fenced store is a complete store: the contract suite, writing with no claim at all."""

    @pytest.fixture
    def store_factory(self, redis_server: RedisServer) -> StoreFactory:
        options = RedisStoreSettings(url=redis_server.url, prefix="fenced-contract:")
        return lambda: FencedRedisStore(options)


@pytest_asyncio.fixture
async def two_nodes(redis_server: RedisServer) -> AsyncIterator[tuple[FencedRedisStore, FencedRedisStore]]:
    """The stores of two nodes sharing one Redis."""
    options = RedisStoreSettings(url=redis_server.url, prefix="t:")
    a, b = FencedRedisStore(options), FencedRedisStore(options)
    await a.open()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


def message(payload: bytes) -> StoredMessage:
    return StoredMessage(Publish("q/t", payload, 1), 1.0)


async def test_a_claim_raises_the_epoch_and_names_the_owner_in_one_step(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore], redis_server: RedisServer) -> None:
    a, b = two_nodes
    first = await a.claim("c", "A")
    assert (first.epoch, first.previous, first.previous_epoch) == (1, None, 0)
    second = await b.claim("c", "B")
    assert (second.epoch, second.previous, second.previous_epoch) == (2, "A", 1)
    assert await a.owner("c") == ("B", 2)
    raw = redis.Redis.from_url(redis_server.url)
    assert raw.hgetall("t:{c:c}:owner") == {b"node": b"B", b"epoch": b"2"}  # the hash tag keeps one slot


async def test_concurrent_claims_each_get_their_own_epoch(two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    names = ["A", "B"] * 20
    claims = await asyncio.gather(*((a if name == "A" else b).claim("race", name) for name in names))
    assert sorted(claim.epoch for claim in claims) == list(range(1, 41))  # never two claims with one epoch
    latest = max(range(40), key=lambda i: claims[i].epoch)
    assert await a.owner("race") == (names[latest], 40)  # the last claim owns it
    # Each claim saw the one before it: a chain with no gap.
    by_epoch = sorted(zip(claims, names, strict=True), key=lambda pair: pair[0].epoch)
    for (before, name), (after, _) in itertools.pairwise(by_epoch):
        assert (after.previous, after.previous_epoch) == (name, before.epoch)


async def test_a_stale_owners_writes_are_refused_by_the_store(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    refused: list[tuple[str, int, int]] = []
    a.on_fenced(lambda cid, carried, held: refused.append((cid, carried, held)))
    await a.claim("s", "A")
    await a.save_session(SessionRecord("s", 5, False, 300, node="A"))
    await a.save_subscription("s", SubscriptionRecord("old/#"))
    await b.claim("s", "B")  # B takes over: epoch 2
    await b.save_session(SessionRecord("s", 5, False, 600, node="B"))
    # A was paused meanwhile and now writes with epoch 1: every kind of write is refused.
    await a.save_session(SessionRecord("s", 5, False, 1, node="A"))
    await a.save_subscription("s", SubscriptionRecord("stale/#"))
    await a.save_outgoing("s", OutgoingRecord(7, message(b"x")))
    await a.save_incoming("s", 9)
    assert await a.queue_append("s", message(b"stale"), 10) == message(b"stale")  # not stored
    await a.delete_session("s")
    await a.flush()
    stored = await b.load_session("s")
    assert stored is not None and (stored.node, stored.expiry_interval) == ("B", 600)
    assert [s.topic_filter for s in await b.load_subscriptions("s")] == ["old/#"]
    assert await b.load_outgoing("s") == [] and await b.load_incoming("s") == []
    assert await b.queue_length("s") == 0
    # The refusals were reported once each (A stopped holding the epoch after the first one).
    assert refused[0] == ("s", 1, 2) and all(r[2] == 2 for r in refused)
    assert sum(a.refused.values()) == 6 and a.holds("s") is None
    # The new owner writes and deletes as it likes.
    await b.queue_append("s", message(b"owner"), 10)
    assert [m.publish.payload for m in await b.queue_peek("s")] == [b"owner"]
    assert await a.queue_pop("s") == []  # the stale node pops nothing
    await b.delete_session("s")
    await b.flush()
    assert await b.load_session("s") is None


async def test_a_deleted_session_keeps_its_epoch_so_a_late_write_cannot_resurrect_it(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    await a.claim("d", "A")
    await b.claim("d", "B")
    await b.save_session(SessionRecord("d", 5, False, 60))
    await b.delete_session("d")
    await a.save_session(SessionRecord("d", 5, False, 60))  # A's late write after the delete
    await a.flush()
    assert await b.load_session("d") is None
    assert await b.list_sessions() == []
    assert await b.owner("d") == ("B", 2)


async def test_release_clears_the_owner_only_for_the_current_epoch(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    await a.claim("r", "A")
    await b.claim("r", "B")
    assert not await a.release("r")  # A's epoch is old: nothing to release, B stays owner
    assert await b.owner("r") == ("B", 2)
    assert await b.release("r")
    assert await b.owner("r") == (None, 2)  # nobody owns it; the epoch stays
    await b.save_session(SessionRecord("r"))  # released: B carries no epoch any more
    await b.flush()
    assert await b.load_session("r") is None


async def test_the_owner_pops_its_queue_within_the_bound(two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, _ = two_nodes
    await a.claim("q", "A")
    for n in range(4):
        dropped = await a.queue_append("q", message(bytes([n])), 3)
        assert dropped == (message(b"\x00") if n == 3 else None)
    assert [m.publish.payload for m in await a.queue_pop("q", 2)] == [b"\x01", b"\x02"]
    assert [m.publish.payload for m in await a.queue_pop("q")] == [b"\x03"]


async def test_a_completed_messages_identity_is_kept_fenced_bounded_and_deleted_with_the_session(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    await a.claim("i", "A")
    await a.save_session(SessionRecord("i", 5, False, 300))
    forwarded = StoredMessage(Publish("q/t", b"x", 2), 1.0, identity=b"node2/1")
    await a.save_outgoing("i", OutgoingRecord(3, forwarded))
    await a.flush()
    assert [r.message.identity for r in await b.load_outgoing("i")] == [b"node2/1"]
    await a.complete_outgoing("i", 3, b"node2/1")
    await a.flush()
    assert await b.load_outgoing("i") == []
    assert await b.load_completed("i") == [b"node2/1"]
    for n in range(COMPLETED_KEPT + 5):
        await a.complete_outgoing("i", 4, b"n%d" % n)
    await a.flush()
    kept = await b.load_completed("i")
    assert len(kept) == COMPLETED_KEPT and kept[0] == b"n5" and kept[-1] == b"n%d" % (COMPLETED_KEPT + 4)
    await b.claim("i", "B")
    await a.complete_outgoing("i", 5, b"stale")  # the old owner's write is refused like any other
    await a.flush()
    assert b"stale" not in await b.load_completed("i")
    await b.delete_session("i")
    await b.flush()
    assert await b.load_completed("i") == []


async def test_a_pending_qos2_id_keeps_its_identity_until_received_or_released(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    await a.claim("p", "A")
    await a.save_incoming_pending("p", 7, b"I7")
    await a.save_incoming_pending("p", 8, b"I8")
    await a.flush()
    assert await b.load_incoming_pending("p") == {7: b"I7", 8: b"I8"}
    assert await b.load_incoming("p") == []  # pending is not received
    await a.save_incoming("p", 7)  # its forwards acknowledged: received, no longer pending
    await a.delete_incoming("p", 8)  # released (or refused): gone either way
    await a.flush()
    assert await b.load_incoming_pending("p") == {}
    assert await b.load_incoming("p") == [7]
    await b.claim("p", "B")
    await a.save_incoming_pending("p", 9, b"stale")  # refused like any write of the old owner
    await a.flush()
    assert await b.load_incoming_pending("p") == {}
