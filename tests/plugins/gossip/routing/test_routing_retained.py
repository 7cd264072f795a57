"""Retained messages across nodes: set, cleared and updated on one node, seen from the others at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from routing_memory_links import MemoryNetwork
from routing_nodes import StartNodes, eventually, messages, no_message

from hookmq import Message, RetainedVersion
from hookmq.mqtt.packets import Properties
from hookmq.plugins.redis_store.settings import RedisStoreSettings
from hookmq.plugins.redis_store.versioned import VersionedRetained
from hookmq.testing.redis import RedisServer


def payloads(node: Any, topic: str) -> bytes | None:
    found = node.broker.retained_message(topic)
    return None if found is None else found.payload


async def check_set_cleared_updated(a: Any, b: Any, c: Any) -> None:
    """Set, update and clear on A; a new subscriber on B and C sees the current state at once."""
    pub = await a.client("pub")
    await pub.publish("state/x", b"on", qos=1, retain=True)
    for node in (b, c):  # the PUBACK came after the peers had it: a subscriber gets it at once
        sub = await node.client(f"sub-{node.name}-1")
        await sub.subscribe("state/#", 1)
        [got] = await messages(sub, 1)
        assert (got.payload, got.retain) == (b"on", True)
        await sub.disconnect()
    await pub.publish("state/x", b"off", qos=0, retain=True)  # QoS 0 too: the next packet waits for it
    await pub.publish("state/y", b"y", qos=0, retain=True)
    for node in (b, c):
        sub = await node.client(f"sub-{node.name}-2")
        await sub.subscribe("state/x", 1)
        [got] = await messages(sub, 1)
        assert got.payload == b"off"
        await sub.disconnect()
    await pub.publish("state/x", b"", qos=1, retain=True)  # cleared
    for node in (b, c):
        sub = await node.client(f"sub-{node.name}-3")
        await sub.subscribe("state/x", 1)
        assert await no_message(sub)
        assert payloads(node, "state/y") == b"y"


async def test_retained_set_cleared_and_updated_without_a_shared_store(start_nodes: StartNodes) -> None:
    a, b, c = await start_nodes(("A", "B", "C"), links="real")
    await check_set_cleared_updated(a, b, c)


async def test_an_old_update_never_wins_and_a_cleared_topic_is_never_resurrected(start_nodes: StartNodes) -> None:
    a, b = await start_nodes(("A", "B"), links="real")
    pub = await a.client("pub")
    await pub.publish("old/t", b"first", qos=1, retain=True)
    first = b.broker.retained_versions()
    [held] = [entry for entry in first if entry.topic == "old/t"]
    await pub.publish("old/t", b"", qos=1, retain=True)
    # The earlier state arrives late (a slow link, a resend): the tombstone's newer version wins.
    assert b.broker.replace_retained([held]) == []
    assert payloads(b, "old/t") is None
    late = RetainedVersion("old/t", Message("old/t", b"stale", 1, True), held.version - 1)
    assert b.broker.replace_retained([late]) == [] and payloads(b, "old/t") is None


async def test_a_node_joining_later_gets_the_retained_set_with_its_tombstones(
        start_nodes: StartNodes, network: MemoryNetwork) -> None:
    a, _b = await start_nodes(("A", "B"))
    pub = await a.client("pub")
    for n in range(300):
        await pub.publish(f"many/{n}", b"x" * 2000, qos=0, retain=True)
    await pub.publish("many/0", b"", qos=1, retain=True)
    [late] = await start_nodes(("LATE",), connect=False)
    late.broker.replace_retained([RetainedVersion("many/0", Message("many/0", b"resurrected?", 0, True), 1)])
    network.connect("LATE", "A")
    assert await eventually(lambda: len(late.broker.retained_topics()) == 299, timeout=10)
    assert payloads(late, "many/0") is None  # A's tombstone is newer than LATE's old copy
    sub = await late.client("sub")
    await sub.subscribe("many/299", 0)
    [got] = await messages(sub, 1)
    assert got.payload == b"x" * 2000


async def test_retained_expiry_travels(start_nodes: StartNodes) -> None:
    a, b = await start_nodes(("A", "B"), links="real")
    pub = await a.client("pub")
    await pub.publish("exp/r", b"soon gone", qos=1, retain=True, properties=Properties(message_expiry_interval=1))
    assert payloads(b, "exp/r") == b"soon gone"
    await b.broker.housekeeping_pass(time.time() + 0.5, time.monotonic())
    assert payloads(b, "exp/r") == b"soon gone"
    await b.broker.housekeeping_pass(time.time() + 1.5, time.monotonic())  # B's copy expires when A's does
    assert payloads(b, "exp/r") is None


async def test_retained_with_a_shared_redis_store(start_nodes: StartNodes, redis_server: RedisServer) -> None:
    config = {"storage": {"backend": "redis"}, "plugins": {"redis_store": {"url": redis_server.url}}}
    a, b, c = await start_nodes(("A", "B", "C"), links="real", **config)
    await check_set_cleared_updated(a, b, c)
    store = VersionedRetained(RedisStoreSettings(url=redis_server.url))
    try:
        states = {topic: (version, message is not None) for topic, version, message in await store.load()}
        assert states["state/x"][1] is False and states["state/y"][1] is True  # the tombstone is in Redis
        # A node that starts now reads the truth from Redis, whatever the plain records say.
        [late] = await start_nodes(("LATE",), connect=False, links="real", **config)
        assert payloads(late, "state/x") is None and payloads(late, "state/y") == b"y"
    finally:
        await store.close()


async def test_the_versioned_store_refuses_older_versions(redis_server: RedisServer) -> None:
    store = VersionedRetained(RedisStoreSettings(url=redis_server.url, prefix="t:"))
    try:
        assert await store.put("t", 2_000_000_000_000_000_000, b"new")
        assert not await store.put("t", 1_999_999_999_999_999_999, b"old")  # older: refused atomically
        assert not await store.put("t", 2_000_000_000_000_000_000, b"same version")
        assert await store.put("t", 2_000_000_000_000_000_001, None)  # cleared
        assert not await store.put("t", 2_000_000_000_000_000_000, b"resurrect?")
        assert await store.load() == [("t", 2_000_000_000_000_000_001, None)]
        assert await store.put("u", 5, b"small version")
        assert ("u", 5, b"small version") in await store.load()
        with pytest.raises(ValueError):
            await store.put("t", 10**20, b"too big")
    finally:
        await store.close()
