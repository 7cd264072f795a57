"""Limits the broker enforces on packets it is sent, and the Broker API acting on live clients."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import Connect, StartBroker, disconnect_reason, eventually

from hookmq.engine import Broker
from hookmq.mqtt.packets import (
    Properties,
    Publish,
    Pubrel,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Will,
)
from hookmq.mqtt.reason_codes import ReasonCode


@pytest.mark.parametrize("topic_filter", ["a/#/b", "a+", "$share/g", "$share//a", ""])
async def test_invalid_topic_filter_closes_client(broker: Broker, connect: Connect, topic_filter: str) -> None:
    client, _ = await connect(broker, "bad-filter")
    await client.send(Subscribe(1, (Subscription(topic_filter, SubscriptionOptions(0)),)))
    reason = await disconnect_reason(client, 3)
    assert reason in (ReasonCode.TOPIC_FILTER_INVALID, ReasonCode.MALFORMED_PACKET, ReasonCode.PROTOCOL_ERROR)
    assert broker.client("bad-filter") is None


async def test_no_local_on_shared_subscription_is_protocol_error(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "nl-shared")
    await client.send(Subscribe(1, (Subscription("$share/g/a", SubscriptionOptions(0, no_local=True)),)))
    assert await disconnect_reason(client, 3) == ReasonCode.PROTOCOL_ERROR


async def test_qos1_publish_without_packet_id_closes(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "pid0")
    await client.send_bytes(bytes([0x32, 6, 0, 1]) + b"a" + b"\x00\x00" + b"\x00")
    assert await disconnect_reason(client, 3) in (ReasonCode.PROTOCOL_ERROR, ReasonCode.MALFORMED_PACKET)


async def test_publish_above_maximum_qos(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"maximum_qos": 1})
    client, _ = await connect(broker, "too-high")
    await client.send(Publish("x", b"y", 2, packet_id=1))
    assert await disconnect_reason(client, 3) == ReasonCode.QOS_NOT_SUPPORTED


async def test_retain_when_unavailable(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"retain_available": False})
    client, _ = await connect(broker, "retainer")
    await client.send(Publish("x", b"y", 0, retain=True))
    assert await disconnect_reason(client, 3) == ReasonCode.RETAIN_NOT_SUPPORTED


@pytest.mark.parametrize(("level", "will", "code"), [
    (5, Will("w", b"x", 2), ReasonCode.QOS_NOT_SUPPORTED),
    (5, Will("w", b"x", 0, True), ReasonCode.RETAIN_NOT_SUPPORTED),
    (4, Will("w", b"x", 2), 0x03),
])
async def test_will_beyond_capabilities_refused(start_broker: StartBroker, connect: Connect, level: int,
                                                will: Will, code: int) -> None:
    broker = await start_broker({"maximum_qos": 1, "retain_available": False})
    _client, connack = await connect(broker, "big-will", level=level, will=will)
    assert connack.reason_code == code


async def test_server_keep_alive_enforced(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_keepalive": 1})
    client, connack = await connect(broker, "told-to-ping", keep_alive=0)
    assert connack.properties.server_keep_alive == 1
    assert await disconnect_reason(client, 4) == ReasonCode.KEEP_ALIVE_TIMEOUT


async def test_unsubscribe_persists_in_session(broker: Broker, connect: Connect) -> None:
    expiry = Properties(session_expiry_interval=60)
    client, _ = await connect(broker, "unsub-keeper", properties=expiry)
    await client.subscribe("up/a", 1)
    await client.subscribe("up/b", 1)
    await client.unsubscribe("up/a")
    await client.disconnect()
    _again, connack = await connect(broker, "unsub-keeper", clean_start=False, properties=expiry)
    assert connack.session_present is True
    view = broker.client("unsub-keeper")
    assert view is not None
    assert [s["topic_filter"] for s in view["subscription_list"]] == ["up/b"]


async def test_retained_message_expires(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "rexp-pub")
    await pub.publish("rexp", b"brief", 1, retain=True, properties=Properties(message_expiry_interval=1))
    await asyncio.sleep(1.2)
    sub, _ = await connect(broker, "rexp-sub")
    await sub.subscribe("rexp", 1)
    assert await sub.nothing_within(0.4)


async def test_retained_delivery_carries_identifier_and_remaining_expiry(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "rsid-pub")
    await pub.publish("rsid", b"x", 1, retain=True, properties=Properties(message_expiry_interval=100))
    sub, _ = await connect(broker, "rsid-sub")
    await sub.subscribe("rsid", 1, properties=Properties(subscription_identifiers=(9,)))
    message = await sub.receive_message()
    assert message.retain is True
    assert message.properties.subscription_identifiers == (9,)
    expiry = message.properties.message_expiry_interval
    assert expiry is not None and 0 < expiry <= 100


async def test_pubrel_for_unknown_packet_id(broker: Broker, connect: Connect) -> None:
    from hookmq.mqtt.packets import Pubcomp

    client, _ = await connect(broker, "stray-pubrel")
    await client.send(Pubrel(77))
    pubcomp = await client.expect(Pubcomp)
    assert (pubcomp.packet_id, pubcomp.reason_code) == (77, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)


async def test_admin_disconnect_client(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "admin-target")
    assert await broker.disconnect_client("admin-target") is True
    assert await disconnect_reason(client, 3) == ReasonCode.ADMINISTRATIVE_ACTION
    assert await broker.disconnect_client("nobody") is False


async def test_broker_publish_reaches_subscribers(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "api-sub")
    await client.subscribe("api/#", 2)
    assert await broker.publish("api/x", b"from the broker", qos=1) == 1
    message = await client.receive_message()
    assert (message.topic, message.payload, message.qos) == ("api/x", b"from the broker", 1)


async def test_broker_delete_retained(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "del-pub")
    await pub.publish("del/a", b"x", 1, retain=True)
    assert await broker.delete_retained("del/a") is True
    assert await broker.delete_retained("del/a") is False
    sub, _ = await connect(broker, "del-sub")
    await sub.subscribe("del/#", 0)
    assert await sub.nothing_within(0.3)


async def test_resubscribe_replaces_subscription(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "resub")
    await sub.subscribe("resub", 2)
    await sub.subscribe("resub", 0)
    assert len([e for e in broker.subscriptions() if e.client_id == "resub"]) == 1
    pub, _ = await connect(broker, "resub-pub")
    await pub.publish("resub", b"x", 2)
    assert (await sub.receive_message()).qos == 0
    assert await sub.nothing_within(0.2)


async def test_unsubscribe_shared_subscription(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "unshare")
    await sub.subscribe("$share/g/unshare", 1)
    assert (await sub.unsubscribe("$share/g/unshare")).reason_codes == (0,)
    pub, _ = await connect(broker, "unshare-pub")
    await pub.publish("unshare", b"x", 1)
    assert await sub.nothing_within(0.3)


async def test_shared_and_direct_subscription_of_one_client_get_a_copy_each(broker: Broker,
                                                                             connect: Connect) -> None:
    sub, _ = await connect(broker, "both-ways")
    await sub.subscribe("$share/g/both", 1)
    await sub.subscribe("both", 1)
    pub, _ = await connect(broker, "both-pub")
    await pub.publish("both", b"1", 1)
    received = [await sub.receive_message(), await sub.receive_message()]
    assert [m.payload for m in received] == [b"1", b"1"]


async def test_max_inflight_bounds_v311_window(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_inflight": 2})
    sub, _ = await connect(broker, "v3-window", level=4)
    await sub.subscribe("win", 1)
    pub, _ = await connect(broker, "win-pub", level=4)
    for n in range(4):
        await pub.publish("win", str(n).encode(), 1)
    held = [await sub.receive_message(ack=False) for _ in range(2)]
    assert await sub.nothing_within(0.3)
    assert broker.client("v3-window")["queued"] == 2  # type: ignore[index]
    from hookmq.mqtt.packets import Puback

    await sub.send(Puback(held[0].packet_id))
    assert (await sub.receive_message(ack=False)).payload == b"2"


async def test_one_message_in_several_wire_forms(broker: Broker, connect: Connect) -> None:
    first, _ = await connect(broker, "form-a")
    second, _ = await connect(broker, "form-b")
    old, _ = await connect(broker, "form-v4", level=4)
    await first.subscribe("forms", 1, properties=Properties(subscription_identifiers=(1,)))
    await second.subscribe("forms", 1, properties=Properties(subscription_identifiers=(2,)))
    await old.subscribe("forms", 1)
    await first.subscribe("warm-up", 1)
    pub, _ = await connect(broker, "form-pub")
    await pub.publish("warm-up", b"shifts form-a's packet ids", 1)
    await first.receive_message()
    await pub.publish("forms", b"x", 1, properties=Properties(user_properties=(("a", "b"),)))
    a, b, v4 = await first.receive_message(), await second.receive_message(), await old.receive_message()
    assert a.properties.subscription_identifiers == (1,)
    assert b.properties.subscription_identifiers == (2,)
    assert a.properties.user_properties == b.properties.user_properties == (("a", "b"),)
    assert v4.properties == Properties()
    assert a.packet_id == 2 and b.packet_id == 1  # each recipient's own packet id patched in


async def test_retained_will_replaces_retained_message(broker: Broker, connect: Connect) -> None:
    device, _ = await connect(broker, "device", will=Will("dev/status", b"offline", 1, True))
    pub, _ = await connect(broker, "dev-pub")
    await pub.publish("dev/status", b"online", 1, retain=True)
    await device.close()
    assert await eventually(lambda: [m.payload for m in broker.retained_messages()] == [b"offline"], 3)
    watcher, _ = await connect(broker, "dev-watch")
    await watcher.subscribe("dev/status", 1)
    message = await watcher.receive_message()
    assert (message.payload, message.retain) == (b"offline", True)


async def test_pubrec_with_error_code_completes_flow(broker: Broker, connect: Connect) -> None:
    from hookmq.mqtt.packets import Pubrec

    sub, _ = await connect(broker, "refuser")
    await sub.subscribe("refused", 2)
    pub, _ = await connect(broker, "refused-pub")
    await pub.publish("refused", b"1", 2)
    message = await sub.receive_message(ack=False)
    await sub.send(Pubrec(message.packet_id, ReasonCode.UNSPECIFIED_ERROR))
    assert await sub.nothing_within(0.3)  # no PUBREL: the flow ended at the error
    assert broker.client("refuser")["inflight"] == 0  # type: ignore[index]
