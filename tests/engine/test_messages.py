"""Message delivery over real sockets: QoS, flow control, packet sizes, aliases, expiry, properties."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import Connect, StartBroker, disconnect_reason, messages

from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties, Puback, Publish, Pubrec
from hookmq.mqtt.reason_codes import ReasonCode


@pytest.mark.parametrize("level", [4, 5])
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
async def test_delivered_qos_is_min_of_published_and_granted(broker: Broker, connect: Connect, level: int,
                                                             pub_qos: int, sub_qos: int) -> None:
    sub, _ = await connect(broker, "sub", level=level)
    suback = await sub.subscribe("qos/t", sub_qos)
    assert suback.reason_codes == (sub_qos,)
    pub, _ = await connect(broker, "pub", level=level)
    ack = await pub.publish("qos/t", b"m", pub_qos)
    if pub_qos:
        assert ack is not None and ack.reason_code == 0
    message = await sub.receive_message()
    assert message.qos == min(pub_qos, sub_qos)
    assert message.payload == b"m"
    assert (message.packet_id != 0) == (message.qos > 0)


async def test_qos2_inbound_duplicate_not_routed_twice(broker: Broker, connect: Connect) -> None:
    from hookmq.mqtt.packets import Pubcomp, Pubrel

    sub, _ = await connect(broker, "q2sub")
    await sub.subscribe("dedupe", 2)
    pub, _ = await connect(broker, "q2pub")
    await pub.send(Publish("dedupe", b"once", 2, packet_id=9))
    assert (await pub.expect(Pubrec)).packet_id == 9
    # The client did not see PUBREC (say) and resends with DUP before releasing.
    await pub.send(Publish("dedupe", b"once", 2, dup=True, packet_id=9))
    assert (await pub.expect(Pubrec)).packet_id == 9
    await pub.send(Pubrel(9))
    assert (await pub.expect(Pubcomp)).packet_id == 9
    received = await messages(sub, 1)
    assert received[0].payload == b"once"
    assert await sub.nothing_within(0.3)


async def test_no_matching_subscribers_reason_code(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "lonely")
    ack = await pub.publish("nobody/listens", b"x", 1)
    assert isinstance(ack, Puback)
    assert ack.reason_code == ReasonCode.NO_MATCHING_SUBSCRIBERS


async def test_receive_maximum_of_client_respected(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "narrow", properties=Properties(receive_maximum=2))
    await sub.subscribe("rm/#", 1)
    pub, _ = await connect(broker, "rm-pub")
    for n in range(5):
        await pub.publish("rm/x", str(n).encode(), 1)
    first = await messages(sub, 2, ack=False)
    assert [m.payload for m in first] == [b"0", b"1"]
    assert await sub.nothing_within(0.3)  # window full: the broker holds the rest
    await sub.send(Puback(first[0].packet_id))
    third = await sub.receive_message(ack=False)
    assert third.payload == b"2"
    assert await sub.nothing_within(0.2)
    await sub.send(Puback(first[1].packet_id))
    await sub.send(Puback(third.packet_id))
    rest = await messages(sub, 2)
    assert [m.payload for m in rest] == [b"3", b"4"]


async def test_receive_maximum_exceeded_by_client_qos2(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"receive_maximum": 2})
    pub, connack = await connect(broker, "greedy")
    assert connack.properties.receive_maximum == 2
    for packet_id in (1, 2):
        await pub.send(Publish("rmx", b"x", 2, packet_id=packet_id))
        assert (await pub.expect(Pubrec)).packet_id == packet_id
    await pub.send(Publish("rmx", b"x", 2, packet_id=3))  # a third unreleased QoS 2
    assert await disconnect_reason(pub, 3) == ReasonCode.RECEIVE_MAXIMUM_EXCEEDED


async def test_inbound_packet_too_large(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_packet_size": 128})
    pub, connack = await connect(broker, "big")
    assert connack.properties.maximum_packet_size == 128
    await pub.publish("size/ok", b"x" * 50, 1)
    await pub.send(Publish("size/big", b"x" * 200, 0))
    assert await disconnect_reason(pub, 3) == ReasonCode.PACKET_TOO_LARGE


async def test_client_maximum_packet_size_respected(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "small", properties=Properties(maximum_packet_size=100))
    await sub.subscribe("mps/#", 1)
    pub, _ = await connect(broker, "mps-pub")
    dropped_before = broker.info()["messages_dropped"]
    await pub.publish("mps/a", b"y" * 300, 1)
    await pub.publish("mps/a", b"y" * 300, 0)
    await pub.publish("mps/a", b"small", 1)
    received = await sub.receive_message()
    assert received.payload == b"small"
    assert await sub.nothing_within(0.3)
    assert broker.info()["messages_dropped"] == dropped_before + 2


async def test_topic_alias_inbound_set_and_use(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "alias-sub")
    await sub.subscribe("alias/#", 1)
    pub, connack = await connect(broker, "alias-pub")
    assert (connack.properties.topic_alias_maximum or 0) >= 1
    await pub.publish("alias/long/topic", b"first", 1, properties=Properties(topic_alias=1))
    await pub.publish("", b"second", 1, properties=Properties(topic_alias=1))
    received = await messages(sub, 2)
    assert [(m.topic, m.payload) for m in received] == [("alias/long/topic", b"first"),
                                                        ("alias/long/topic", b"second")]
    # The broker strips the client's alias before forwarding.
    assert all(m.properties.topic_alias is None for m in received)


async def test_topic_alias_above_maximum_is_invalid(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"topic_alias_maximum": 2})
    pub, _ = await connect(broker, "alias-bad")
    await pub.send(Publish("alias/x", b"x", 0, properties=Properties(topic_alias=3)))
    assert await disconnect_reason(pub, 3) == ReasonCode.TOPIC_ALIAS_INVALID


async def test_topic_alias_unset_is_protocol_error(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "alias-unset")
    await pub.send(Publish("", b"x", 0, properties=Properties(topic_alias=5)))
    assert await disconnect_reason(pub, 3) == ReasonCode.PROTOCOL_ERROR


async def test_message_expiry_remaining_interval_sent(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "exp-sub", properties=Properties(session_expiry_interval=60))
    await sub.subscribe("exp/#", 1)
    await sub.disconnect()
    pub, _ = await connect(broker, "exp-pub")
    await pub.publish("exp/x", b"keep 30", 1, properties=Properties(message_expiry_interval=30))
    await asyncio.sleep(1.1)
    again, _ = await connect(broker, "exp-sub", clean_start=False, properties=Properties(session_expiry_interval=60))
    message = await again.receive_message()
    remaining = message.properties.message_expiry_interval
    assert remaining is not None and 1 <= remaining < 30


async def test_expired_message_not_delivered_from_queue(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "exp-away", properties=Properties(session_expiry_interval=60))
    await sub.subscribe("exq/#", 1)
    await sub.disconnect()
    pub, _ = await connect(broker, "exq-pub")
    await pub.publish("exq/x", b"stale", 1, properties=Properties(message_expiry_interval=1))
    await pub.publish("exq/x", b"fresh", 1)
    await asyncio.sleep(1.2)
    again, _ = await connect(broker, "exp-away", clean_start=False, properties=Properties(session_expiry_interval=60))
    received = await messages(again, 1)
    assert received[0].payload == b"fresh"
    assert await again.nothing_within(0.3)


async def test_v5_properties_passed_through(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "props-sub")
    await sub.subscribe("props/#", 1)
    pub, _ = await connect(broker, "props-pub")
    sent = Properties(payload_format_indicator=1, content_type="application/json", response_topic="reply/here",
                      correlation_data=b"\x00\x01corr", user_properties=(("k", "v"), ("k", "v2"), ("a", "b")))
    await pub.publish("props/x", b'{"a": 1}', 1, properties=sent)
    got = (await sub.receive_message()).properties
    assert got.payload_format_indicator == 1
    assert got.content_type == "application/json"
    assert got.response_topic == "reply/here"
    assert got.correlation_data == b"\x00\x01corr"
    assert got.user_properties == (("k", "v"), ("k", "v2"), ("a", "b"))


async def test_v5_properties_not_sent_to_v311_subscriber(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "v4-sub", level=4)
    await sub.subscribe("mixed/#", 1)
    pub, _ = await connect(broker, "v5-pub")
    await pub.publish("mixed/x", b"plain", 1, properties=Properties(user_properties=(("k", "v"),)))
    message = await sub.receive_message()
    assert message.payload == b"plain"
    assert message.properties == Properties()


async def test_invalid_utf8_payload_with_format_indicator(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "pfi")
    ack = await pub.publish("pfi/x", b"\xff\xfe", 1, properties=Properties(payload_format_indicator=1))
    assert ack is not None and ack.reason_code == ReasonCode.PAYLOAD_FORMAT_INVALID
