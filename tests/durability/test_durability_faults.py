"""Redis going away under a running broker: keep serving, refuse to acknowledge, recover (issue 6)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from durability_helpers import (
    BrokerFactory,
    BrokerProcess,
    DurableRedis,
    collect_until,
    connect,
    redis_config,
    settle,
)

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import Puback, Publish
from hookmq.testing.raw import RawClient

ERROR_TOPIC = "$SYS/broker/store/error"


async def _store_error(monitor: RawClient, failing: bool, timeout: float = 30.0) -> bytes:
    """The next `$SYS/broker/store/error` payload that reports a failure (or, if not ``failing``, "ok")."""
    async with asyncio.timeout(timeout):
        while True:
            message = await monitor.receive_message(timeout=timeout)
            if message.topic == ERROR_TOPIC and (message.payload != b"ok") == failing:
                return bytes(message.payload)


async def _qos0_flows(port: int) -> None:
    """A brand-new clean session connects, and QoS 0 messages reach it."""
    listener, present = await connect(port, "qos0-listener")
    assert not present
    await listener.subscribe("q0/#", qos=0)
    talker, _ = await connect(port, "qos0-talker")
    await talker.publish("q0/x", b"still here", qos=0)
    message = await listener.receive_message(timeout=10)
    assert message.payload == b"still here"
    for client in (listener, talker):
        await client.disconnect()


@pytest.mark.timeout(90)
async def test_redis_outage_refuses_acks_then_recovers(tmp_path: Path, durable_redis: DurableRedis,
                                                       brokers: BrokerFactory) -> None:
    broker = brokers(redis_config(tmp_path, durable_redis))
    keeper, _ = await connect(broker.port, "keeper", clean=False, expiry=300)
    await keeper.subscribe("p/#", qos=1)
    await settle(keeper)
    await keeper.disconnect()
    monitor, _ = await connect(broker.port, "monitor")
    await monitor.subscribe(ERROR_TOPIC, qos=0)
    assert await _store_error(monitor, failing=False) == b"ok"
    publisher, _ = await connect(broker.port, "publisher")
    v3_publisher, _ = await connect(broker.port, "v3-publisher", level=4)
    assert await _publish_v5(publisher, "p/1", b"before") == 0

    durable_redis.kill()
    refused = await asyncio.wait_for(_publish_v5(publisher, "p/2", b"during"), 30)
    assert refused == 0x80
    error = await _store_error(monitor, failing=True)
    assert b"nreachable" in error or b"Error" in error, error
    await v3_publisher.send(Publish("p/3", b"during-v3", 1, False, False, 7))
    assert await v3_publisher.nothing_within(2.0)  # v3 has no "not stored" code: no PUBACK at all
    await _qos0_flows(broker.port)

    durable_redis.start()
    await _store_error(monitor, failing=False)
    assert await _publish_v5(publisher, "p/4", b"after") == 0
    assert broker.running
    keeper, present = await connect(broker.port, "keeper", clean=False, expiry=300)
    assert present
    await publisher.publish("p/end", b"end", qos=1)
    payloads = [m.payload for m in await collect_until(keeper, b"end", timeout=20)]
    assert b"before" in payloads and b"after" in payloads
    for client in (keeper, monitor, publisher):
        await client.disconnect()
    await v3_publisher.close()
    await _restarted_broker_still_has(broker, b"keeper")


async def _publish_v5(client: RawClient, topic: str, body: bytes) -> int:
    """Publish at QoS 1 and return the PUBACK's reason code."""
    ack = await client.publish(topic, body, qos=1)
    assert isinstance(ack, Puback)
    return ack.reason_code


async def _restarted_broker_still_has(broker: BrokerProcess, client_id: bytes) -> None:
    """After the outage the store is whole again: a restarted broker resumes the session."""
    broker.kill()
    broker.start()
    client, present = await connect(broker.port, client_id.decode(), clean=False, expiry=300)
    assert present
    await client.disconnect()


@pytest.mark.timeout(60)
async def test_broker_info_reports_a_store_outage(durable_redis: DurableRedis) -> None:
    """`Broker.info()` carries the backend, the last store error and the pending writes."""
    config = Config.from_mapping({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "storage": {"backend": "redis"},
        "plugins": {"redis_store": {"url": durable_redis.url, "max_backoff": 0.5, "timeout": 2.0}},
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0},
    }, source="<test>")
    broker = Broker(config)
    await broker.start()
    try:
        port = broker.listeners[0].address[1]
        keeper, _ = await connect(port, "keeper", clean=False, expiry=300)
        await keeper.subscribe("p/#", qos=1)
        await settle(keeper)
        info = broker.info()
        assert (info["store_backend"], info["store_error"], info["store_pending_writes"]) == ("redis", "", 0)

        durable_redis.kill()
        # The keeper's own message goes inflight to itself: a write that cannot be stored.
        assert await _publish_v5(keeper, "p/1", b"x") == 0x80
        info = broker.info()
        assert info["store_error"] != ""
        assert info["store_pending_writes"] > 0

        durable_redis.start()
        async with asyncio.timeout(30):
            while broker.info()["store_error"] or broker.info()["store_pending_writes"]:
                await asyncio.sleep(0.05)
        await keeper.disconnect()
    finally:
        await broker.stop()


@pytest.mark.timeout(60)
async def test_clean_traffic_keeps_its_acks_during_an_outage(tmp_path: Path, durable_redis: DurableRedis,
                                                             brokers: BrokerFactory) -> None:
    broker = brokers(redis_config(tmp_path, durable_redis))
    keeper, _ = await connect(broker.port, "keeper", clean=False, expiry=300)
    await keeper.subscribe("p/#", qos=1)
    await keeper.disconnect()
    listener, _ = await connect(broker.port, "clean-listener")
    await listener.subscribe("clean/#", qos=1)
    publisher, _ = await connect(broker.port, "publisher")

    durable_redis.kill()
    assert await _publish_v5(publisher, "p/1", b"to a persistent session") == 0x80
    # Between clean sessions nothing needs storing: the broker can stand behind this one.
    assert await _publish_v5(publisher, "clean/1", b"between clean sessions") == 0
    assert (await listener.receive_message(timeout=10)).payload == b"between clean sessions"
