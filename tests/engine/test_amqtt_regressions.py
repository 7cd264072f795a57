"""The defects measured in amqtt (reference notes §2 and §8), each proven absent from hookmq."""

from __future__ import annotations

import asyncio

from engine_helpers import Connect, StartBroker, messages

from hookmq.engine import Broker
from hookmq.mqtt.packets import Pingreq, Pingresp, Publish, Will


async def test_amqtt_regression_qos_downgrade(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "qd-sub", level=4)
    await sub.subscribe("qd/t", 1)
    pub, _ = await connect(broker, "qd-pub", level=4)
    await pub.publish("qd/t", b"qos0", 0)
    message = await sub.receive_message()
    assert message.qos == 0  # amqtt sent it at the subscription's QoS 1


async def test_amqtt_regression_keepalive_with_will(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "ka-watch", level=4)
    await watcher.subscribe("ka/will", 0)
    _silent, _ = await connect(broker, "ka-silent", level=4, keep_alive=1, will=Will("ka/will", b"dead"))
    # amqtt kept a 2 s keep-alive client for 12 s; here it is dropped after 1.5 s and the will fires.
    assert (await watcher.receive_message(4)).payload == b"dead"
    assert broker.client("ka-silent") is None


async def test_amqtt_regression_persistent_session_without_auth_plugin(broker: Broker, connect: Connect) -> None:
    assert not broker.hooks.enabled("on_connect_authenticate")
    sub, _ = await connect(broker, "anon-keeper", level=4, clean_start=False)
    await sub.subscribe("anon/#", 1)
    await sub.disconnect()
    await asyncio.sleep(1.2)  # amqtt purged anonymous sessions within a second
    pub, _ = await connect(broker, "anon-pub", level=4)
    await pub.publish("anon/x", b"kept for you", 1)
    again, connack = await connect(broker, "anon-keeper", level=4, clean_start=False)
    assert connack.session_present is True
    assert (await again.receive_message()).payload == b"kept for you"


async def test_amqtt_regression_max_connections_answered(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_connections": 2})
    for n in range(2):
        _client, ok = await connect(broker, f"slot-{n}", level=4)
        assert ok.reason_code == 0
    # amqtt parked the third client with no CONNACK; `connect` bounds the wait to 5 s.
    extra, connack = await connect(broker, "slot-extra", level=4)
    assert connack.reason_code == 0x03
    assert await extra.closed_within(3) == []


async def test_amqtt_regression_bounded_queues(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_queued_messages": 10})
    sub, _ = await connect(broker, "unbounded?", level=4, clean_start=False)
    await sub.subscribe("bq/#", 1)
    await sub.disconnect()
    pub, _ = await connect(broker, "bq-pub", level=4)
    for n in range(50):
        await pub.send(Publish("bq/x", str(n).encode(), 1, packet_id=n + 1))
    await pub.send(Pingreq())
    while not isinstance(await pub.recv(), Pingresp):
        pass
    assert broker.client("unbounded?")["queued"] == 10  # type: ignore[index]
    assert broker.info()["messages_dropped"] == 40


async def test_amqtt_regression_max_packet_size(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_packet_size": 1024})
    pub, _ = await connect(broker, "huge", level=4)
    await pub.send(Publish("big", b"x" * 100_000, 0))
    assert await pub.closed_within(3) == []
    assert broker.client("huge") is None


async def test_amqtt_regression_dollar_topic_publish_not_zombie(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "dollar", level=4)
    await client.publish("$SYS/broker/fake", b"x", 0)
    # amqtt's client loop exited here: PINGRESP still came, SUBACK never did.
    suback = await client.subscribe("after/dollar", 1)
    assert suback.reason_codes == (1,)
    other, _ = await connect(broker, "dollar-pub", level=4)
    await other.publish("after/dollar", b"alive", 1)
    assert (await client.receive_message()).payload == b"alive"


async def test_amqtt_regression_wildcard_publish_topic_closes(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "wild-publisher", level=4)
    await client.send(Publish("a/#", b"x", 0))
    assert await client.closed_within(3) == []
    assert broker.client("wild-publisher") is None


async def test_amqtt_regression_level3_mqisdp_accepted(broker: Broker, connect: Connect) -> None:
    client, connack = await connect(broker, "mqisdp", level=3)
    assert connack.reason_code == 0
    await client.subscribe("v31/t", 1)
    other, _ = await connect(broker, "mqisdp-pub", level=3)
    await other.publish("v31/t", b"3.1", 1)
    received = await messages(client, 1)
    assert received[0].payload == b"3.1"


async def test_amqtt_regression_v5_accepted(broker: Broker, connect: Connect) -> None:
    _client, connack = await connect(broker, "five", level=5)
    assert connack.reason_code == 0
    assert connack.properties.receive_maximum is not None  # a real v5 CONNACK, not a v3 refusal
