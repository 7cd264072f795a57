"""One owner per session across nodes: fast alternating reconnects, stale owners, offline queues, Redis outages."""

from __future__ import annotations

import asyncio
import logging

import pytest
from session_nodes import StartNodes, bounded, disconnect_reason, eventually, messages

from hookmq.mqtt.packets import Disconnect, Properties, Subscribe, Subscription, SubscriptionOptions
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer

PERSISTENT = Properties(session_expiry_interval=300)


async def test_alternating_fast_reconnects_converge_on_one_live_connection(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    nodes = [a, b] * 5
    clients: list[RawClient] = []
    for node in nodes:  # each CONNECT while the previous connection may still be up
        client, connack = await bounded(RawClient.connect("127.0.0.1", node.port, "roam", 5, clean_start=False,
                                                          properties=PERSISTENT))
        assert connack.reason_code == 0
        clients.append(client)
    for earlier in clients[:-1]:
        assert await disconnect_reason(earlier) == 0x8E
    last_node = nodes[-1]
    assert await eventually(lambda: "roam" in last_node.broker.connected and "roam" not in a.broker.sessions)
    await asyncio.sleep(0.5)
    counts = (a.sessions.counts["takeovers_handled"], b.sessions.counts["takeovers_handled"])
    await asyncio.sleep(1.0)  # no ping-pong: nothing more happens once the client stays put
    assert (a.sessions.counts["takeovers_handled"], b.sessions.counts["takeovers_handled"]) == counts
    assert sum(counts) == len(nodes) - 1  # each CONNECT ended the one before it, once
    store = b.sessions.store
    assert store is not None and await store.owner("roam") == ("B", len(nodes))
    await clients[-1].subscribe("still/here", 1)  # the live connection works and its writes are accepted
    assert sum(store.refused.values()) == 0
    pub = await a.client("pub")
    await eventually(lambda: any(r.topic_filter == "still/here" for r in a.broker.routes("B")))
    await pub.publish("still/here", b"ok", qos=1)
    [got] = await messages(clients[-1], 1)
    assert got.payload == b"ok"


async def test_a_stale_owners_write_is_refused_and_its_connection_ended(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    old = await a.client("p", clean_start=False, properties=PERSISTENT)
    await old.subscribe("p/one", 1)
    # B claims the id while A does not hear of it (what a partition does): B now holds epoch 2.
    b_store = b.sessions.store
    assert b_store is not None
    claim = await b_store.claim("p", "B")
    assert (claim.epoch, claim.previous) == (2, "A")
    # A's next write of that session carries epoch 1: Redis refuses it, and A ends its stale copy.
    await old.send(Subscribe(7, (Subscription("p/two", SubscriptionOptions(1)),)))
    received = await old.closed_within(5)
    assert [type(p) for p in received] == [Disconnect] and received[0].reason_code == 0x8E  # and no SUBACK
    assert [s.topic_filter for s in await b_store.load_subscriptions("p")] == ["p/one"]  # p/two refused
    a_store = a.sessions.store
    assert a_store is not None and a_store.refused["save_subscription"] >= 1
    assert await eventually(lambda: "p" not in a.broker.sessions)


async def test_partition_healed_the_newer_epoch_stays_the_older_connection_ends_with_0x8e(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    old = await a.client("h", clean_start=False, properties=PERSISTENT)
    b_store = b.sessions.store
    assert b_store is not None
    await b_store.claim("h", "B")  # claimed on the other side meanwhile; A's connection idles (no write)
    assert await a.sessions.verify_ownership() == 1  # what A runs when a link comes up after a heal
    assert await disconnect_reason(old) == 0x8E
    assert "h" not in a.broker.sessions


async def test_offline_queue_filled_from_every_node_delivered_once(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    a, b, c = await start_nodes(["A", "B", "C"], redis_server.url)
    sub = await a.client("off", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("o/#", 1)
    await sub.disconnect()
    await eventually(lambda: a.broker.sessions["off"].client is None)
    for node in (b, c):
        await eventually(lambda node=node: any(r.topic_filter == "o/#" for r in node.broker.routes("A")))  # type: ignore[misc]
    sent = []
    for node in (a, b, c):
        pub = await node.client(f"pub-{node.name}")
        for n in range(20):
            payload = f"{node.name}{n}".encode()
            await pub.publish(f"o/{node.name}", payload, qos=1)
            sent.append(payload)
        await pub.disconnect()
    back, connack = await bounded(RawClient.connect("127.0.0.1", c.port, "off", 5, clean_start=False,
                                                    properties=PERSISTENT))
    assert connack.session_present
    got = await messages(back, len(sent), timeout=10)
    assert sorted(m.payload for m in got) == sorted(sent)  # every one, once
    assert await back.nothing_within(0.5)


async def store_state(watcher: RawClient) -> bytes:
    """The latest `$SYS/cluster/sessions/store` state that changed (skips a retained one repeated)."""
    first = await watcher.receive_message()
    while True:
        try:
            later = await watcher.receive_message(0.5)
        except TimeoutError:
            return bytes(first.payload)
        first = later


@pytest.mark.parametrize("level", [4, 5])
async def test_redis_unavailable_refuses_persistent_connects_and_recovers(
        redis_server: RedisServer, start_nodes: StartNodes, level: int, caplog: pytest.LogCaptureFixture) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    watcher = await a.client("sys-watcher")
    await watcher.subscribe("$SYS/cluster/sessions/store", 0)
    sub = await b.client("live-sub")
    await sub.subscribe("live/t", 0)
    await eventually(lambda: any(r.topic_filter == "live/t" for r in a.broker.routes("B")))
    redis_server.kill()
    persistent = PERSISTENT if level == 5 else Properties()
    with caplog.at_level(logging.ERROR, logger="hookmq.plugins.gossip.sessions"):
        refused, connack = await bounded(RawClient.connect("127.0.0.1", a.port, "needs-store", level,
                                                           clean_start=False, properties=persistent), 10)
    assert connack.reason_code == (0x88 if level == 5 else 3)
    await refused.closed_within(5)
    assert "shared store is unavailable" in caplog.text
    assert await store_state(watcher) == b"unavailable"
    # Live routing between connected clients goes on: it needs only membership and the links.
    pub = await a.client("live-pub", level)
    await pub.publish("live/t", b"still routed", qos=0)
    [got] = await messages(sub, 1)
    assert got.payload == b"still routed"
    redis_server.restart()

    async def connects() -> bool:
        for _ in range(100):  # every CONNECT is answered, also while the store's backlog retries
            client, connack = await RawClient.connect("127.0.0.1", a.port, "needs-store", level,
                                                      clean_start=False, properties=persistent)
            assert connack.reason_code in (0, 0x88 if level == 5 else 3)
            if connack.reason_code == 0:
                await client.disconnect()
                return True
            await client.close()
            await asyncio.sleep(0.2)
        return False

    assert await bounded(connects(), 25)  # recovers by itself
    assert await store_state(watcher) == b"available"


async def test_a_session_expires_once_on_its_owner(redis_server: RedisServer, start_nodes: StartNodes) -> None:
    [a] = await start_nodes(["A"], redis_server.url)
    client = await a.client("e", clean_start=False, properties=Properties(session_expiry_interval=2))
    await client.subscribe("e/t", 1)
    await client.disconnect()
    assert await eventually(lambda: "e" in a.broker.sessions and a.broker.sessions["e"].client is None)
    # B starts now: it reads every stored session, and keeps only those it owns (none).
    [b] = await start_nodes(["B"], redis_server.url)
    assert await eventually(lambda: a.links.is_up("B") and b.links.is_up("A"), 20)
    assert "e" not in b.broker.sessions
    assert await eventually(lambda: not [r for r in a.broker.routes("B") if r.topic_filter == "e/t"])
    assert await eventually(lambda: "e" not in a.broker.sessions, 10)  # expired on A, its owner
    store = a.sessions.store
    assert store is not None and await store.load_session("e") is None
    assert await store.load_subscriptions("e") == []
    b_store = b.sessions.store
    assert b_store is not None and sum(b_store.refused.values()) == 0  # B never tried to expire it too
