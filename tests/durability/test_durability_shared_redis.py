"""Two broker processes sharing one Redis: a persistent session moves from one to the other."""

from __future__ import annotations

from pathlib import Path

import pytest
from durability_helpers import (
    BrokerFactory,
    BrokerProcess,
    collect_until,
    connect,
    payload,
    redis_config,
    settle,
)

from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer


async def _publish(broker: BrokerProcess, topic: str, bodies: list[bytes]) -> None:
    """Publish QoS 1 messages through ``broker``; each must be acknowledged as stored."""
    publisher, _ = await connect(broker.port, f"publisher-{broker.port}")
    for body in bodies:
        ack = await publisher.publish(topic, body, qos=1)
        assert ack is not None and ack.reason_code < 0x80, ack
    await publisher.disconnect()


async def _resume(broker: BrokerProcess) -> RawClient:
    """The roaming client reconnects to ``broker`` with Clean Start 0; the session must be found."""
    client, present = await connect(broker.port, "roamer", clean=False, expiry=300)
    assert present, f"no session present on port {broker.port}"
    return client


async def _received_until_marker(broker: BrokerProcess, client: RawClient) -> list[bytes]:
    """What ``client`` receives up to a marker published through ``broker`` now."""
    await _publish(broker, "x/marker", [b"end"])
    return [m.payload for m in await collect_until(client, b"end", timeout=8)]


def _two_brokers(tmp_path: Path, redis: RedisServer, brokers: BrokerFactory) -> tuple[BrokerProcess, BrokerProcess]:
    return (brokers(redis_config(tmp_path, redis, name="a"), "a"),
            brokers(redis_config(tmp_path, redis, name="b"), "b"))


@pytest.mark.timeout(60)
async def test_session_created_on_one_broker_resumes_on_another(
        tmp_path: Path, redis_server: RedisServer, brokers: BrokerFactory) -> None:
    a, b = _two_brokers(tmp_path, redis_server, brokers)
    roamer, present = await connect(a.port, "roamer", clean=False, expiry=300)
    assert not present
    assert (await roamer.subscribe("x/#", qos=1)).reason_codes == (1,)
    await roamer.disconnect()
    queued = [payload(i) for i in range(5)]
    await _publish(a, "x/queued", queued)

    roamer = await _resume(b)
    # The marker, published on B, proves the subscription is live on B.
    assert await _received_until_marker(b, roamer) == [*queued, b"end"]
    await roamer.disconnect()


@pytest.mark.timeout(60)
async def test_session_returns_to_the_first_broker(
        tmp_path: Path, redis_server: RedisServer, brokers: BrokerFactory) -> None:
    a, b = _two_brokers(tmp_path, redis_server, brokers)
    roamer, _ = await connect(a.port, "roamer", clean=False, expiry=300)
    await roamer.subscribe("x/#", qos=1)
    await roamer.disconnect()
    await _publish(a, "x/first", [payload(1)])
    roamer = await _resume(b)
    assert await _received_until_marker(b, roamer) == [payload(1), b"end"]
    await roamer.disconnect()
    await _publish(b, "x/second", [payload(2)])

    roamer = await _resume(a)
    # Only what B queued: payload 1 and B's marker were delivered and acknowledged on B.
    assert await _received_until_marker(a, roamer) == [payload(2), b"end"]
    await roamer.disconnect()


@pytest.mark.timeout(60)
async def test_clean_start_on_another_broker_discards_the_stored_session(
        tmp_path: Path, redis_server: RedisServer, brokers: BrokerFactory) -> None:
    a, b = _two_brokers(tmp_path, redis_server, brokers)
    roamer, _ = await connect(a.port, "roamer", clean=False, expiry=300)
    await roamer.subscribe("x/#", qos=1)
    await settle(roamer)
    await roamer.disconnect()
    roamer, present = await connect(b.port, "roamer", clean=True, expiry=300)
    assert not present
    await settle(roamer)
    await roamer.disconnect()
    a.kill()
    b.kill()

    fresh = brokers(redis_config(tmp_path, redis_server, name="c"), "c")
    publisher, _ = await connect(fresh.port, "publisher")
    ack = await publisher.publish("x/1", b"nobody", qos=1)
    assert ack is not None and ack.reason_code == 0x10  # no matching subscribers: the old one is gone
    await publisher.disconnect()
