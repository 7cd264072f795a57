"""``durability = "async"``: acknowledgements do not wait for the store, the state still gets there."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from durability_helpers import (
    BrokerFactory,
    DurableRedis,
    collect_until,
    connect,
    indexes,
    publish_pipelined,
    redis_config,
    sqlite_config,
)

COUNT = 50


def _queued_rows(database: Path, client_id: str) -> int:
    """Rows of ``client_id``'s offline queue in the SQLite file, read by a separate connection."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM queue WHERE client_id = ?", (client_id,)).fetchone()
    return int(row[0])


@pytest.mark.timeout(60)
async def test_async_writes_reach_sqlite_and_survive_a_restart(tmp_path: Path, brokers: BrokerFactory) -> None:
    broker = brokers(sqlite_config(tmp_path, durability="async"))
    keeper, _ = await connect(broker.port, "keeper", clean=False, expiry=300)
    await keeper.subscribe("a/#", qos=1)
    await keeper.disconnect()
    publisher, _ = await connect(broker.port, "publisher")
    run = await publish_pipelined(publisher, "a/{}", COUNT)
    assert run.acked == set(range(COUNT))
    await publisher.disconnect()

    database = tmp_path / "broker.sqlite3"
    async with asyncio.timeout(20):
        while _queued_rows(database, "keeper") < COUNT:
            await asyncio.sleep(0.05)
    broker.kill()

    broker.start()
    keeper, present = await connect(broker.port, "keeper", clean=False, expiry=300)
    assert present
    marker, _ = await connect(broker.port, "marker")
    await marker.publish("a/marker", b"end", qos=1)
    received = await collect_until(keeper, b"end")
    assert indexes(received) == list(range(COUNT))
    await keeper.disconnect()
    await marker.disconnect()


@pytest.mark.timeout(60)
async def test_async_acks_do_not_wait_for_redis(tmp_path: Path, durable_redis: DurableRedis,
                                                brokers: BrokerFactory) -> None:
    """With Redis gone, ack_after_write would answer 0x80; async acknowledges at once."""
    broker = brokers(redis_config(tmp_path, durable_redis, durability="async"))
    keeper, _ = await connect(broker.port, "keeper", clean=False, expiry=300)
    await keeper.subscribe("a/#", qos=1)
    await keeper.disconnect()
    publisher, _ = await connect(broker.port, "publisher")

    durable_redis.kill()
    ack = await publisher.publish("a/during", b"during", qos=1)
    assert ack is not None and ack.reason_code == 0
    durable_redis.start()

    # Once Redis is back, new writes land again: a fresh broker process sees the message.
    ack = await publisher.publish("a/after", b"after", qos=1)
    assert ack is not None and ack.reason_code == 0
    async with asyncio.timeout(20):
        while not await _redis_queue_has(durable_redis, "keeper", b"after"):
            await asyncio.sleep(0.05)
    await publisher.disconnect()


async def _redis_queue_has(server: DurableRedis, client_id: str, body: bytes) -> bool:
    """Whether some message in ``client_id``'s Redis queue contains ``body``."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(server.url)
    try:
        items = await client.lrange(f"hookmq:queue:{client_id}", 0, -1)
    finally:
        await client.aclose()
    return any(body in item for item in items)
