"""Sessions over real sockets: clean start, expiry, takeover, redelivery and offline queues."""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import Connect, StartBroker, disconnect_reason, eventually, messages

from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties, Publish, Will
from hookmq.mqtt.reason_codes import ReasonCode

PERSIST = Properties(session_expiry_interval=60)


async def test_v311_persistent_session_resumed(broker: Broker, connect: Connect) -> None:
    sub, connack = await connect(broker, "keeper", level=4, clean_start=False)
    assert connack.session_present is False
    await sub.subscribe("keep/#", 1)
    await sub.disconnect()
    pub, _ = await connect(broker, "keep-pub", level=4)
    await pub.publish("keep/1", b"while away", 1)
    again, resumed = await connect(broker, "keeper", level=4, clean_start=False)
    assert resumed.session_present is True
    message = await again.receive_message()
    assert (message.topic, message.payload) == ("keep/1", b"while away")
    # The subscription itself survived: a live message arrives too.
    await pub.publish("keep/2", b"live", 1)
    assert (await again.receive_message()).payload == b"live"


async def test_v311_persistent_session_bounded_by_max_session_expiry(start_broker: StartBroker,
                                                                      connect: Connect) -> None:
    broker = await start_broker({"max_session_expiry": 1})
    client, _ = await connect(broker, "v3-bounded", level=4, clean_start=False)
    await client.subscribe("b/#", 1)
    await client.disconnect()
    # A v3 persistent session has no expiry of its own; the server's maximum must still bound it.
    assert await eventually(lambda: broker.client("v3-bounded") is None, 4)


async def test_v311_clean_session_discards_state(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "cleaner", level=4, clean_start=False)
    await sub.subscribe("clean/#", 1)
    await sub.disconnect()
    fresh, connack = await connect(broker, "cleaner", level=4, clean_start=True)
    assert connack.session_present is False
    pub, _ = await connect(broker, "clean-pub", level=4)
    await pub.publish("clean/x", b"nobody", 1)
    assert await fresh.nothing_within(0.3)


async def test_v5_clean_start_with_expiry_resumes(broker: Broker, connect: Connect) -> None:
    sub, connack = await connect(broker, "v5keeper", properties=PERSIST)
    assert connack.session_present is False
    await sub.subscribe("k5/#", 2)
    await sub.disconnect()
    pub, _ = await connect(broker, "k5-pub")
    await pub.publish("k5/a", b"queued", 2)
    again, resumed = await connect(broker, "v5keeper", clean_start=False, properties=PERSIST)
    assert resumed.session_present is True
    message = await again.receive_message()
    assert (message.payload, message.qos) == (b"queued", 2)


async def test_v5_zero_session_expiry_ends_session_at_disconnect(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "short")
    await sub.subscribe("s/#", 1)
    await sub.disconnect()
    assert await eventually(lambda: broker.client("short") is None, 3)
    _again, resumed = await connect(broker, "short", clean_start=False)
    assert resumed.session_present is False


async def test_v5_session_expires_after_interval(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "expiring", properties=Properties(session_expiry_interval=1))
    await sub.subscribe("e/#", 1)
    await sub.disconnect()
    assert broker.client("expiring") is not None
    assert await eventually(lambda: broker.client("expiring") is None, 4)
    _again, resumed = await connect(broker, "expiring", clean_start=False)
    assert resumed.session_present is False


async def test_disconnect_may_shorten_session_expiry(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "shorten", properties=PERSIST)
    await sub.disconnect(properties=Properties(session_expiry_interval=0))
    assert await eventually(lambda: broker.client("shorten") is None, 3)


async def test_disconnect_may_not_raise_zero_expiry(broker: Broker, connect: Connect) -> None:
    from hookmq.mqtt.packets import Disconnect

    client, _ = await connect(broker, "raise-expiry")
    await client.send(Disconnect(0, Properties(session_expiry_interval=30)))
    assert await disconnect_reason(client, 3) == ReasonCode.PROTOCOL_ERROR


@pytest.mark.parametrize("level", [4, 5])
async def test_session_takeover(broker: Broker, connect: Connect, level: int) -> None:
    old, _ = await connect(broker, "twin", level=level)
    await old.subscribe("twin/#", 1)
    new, connack = await connect(broker, "twin", level=level, clean_start=False,
                                 properties=PERSIST if level == 5 else Properties())
    assert connack.reason_code == 0
    reason = await disconnect_reason(old, 3)
    assert reason == (ReasonCode.SESSION_TAKEN_OVER if level == 5 else None)
    assert broker.info()["clients_connected"] == 1
    pub, _ = await connect(broker, "twin-pub", level=4)
    await pub.publish("twin/x", b"to the new one", 1)
    assert (await new.receive_message()).payload == b"to the new one"


async def test_session_takeover_publishes_will_without_delay(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "watcher")
    await watcher.subscribe("wills/#", 1)
    _old, _ = await connect(broker, "victim", will=Will("wills/victim", b"gone", 1))
    _new, _ = await connect(broker, "victim")
    message = await watcher.receive_message()
    assert (message.topic, message.payload) == ("wills/victim", b"gone")


async def test_session_takeover_within_will_delay_suppresses_will(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "watcher2")
    await watcher.subscribe("wills/#", 1)
    delayed = Will("wills/delayed", b"gone", 1, properties=Properties(will_delay_interval=2))
    _old, _ = await connect(broker, "delayed", will=delayed, properties=PERSIST)
    _new, connack = await connect(broker, "delayed", clean_start=False, properties=PERSIST)
    assert connack.session_present is True
    assert await watcher.nothing_within(2.8)


async def test_dup_redelivery_on_reconnect(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "forgetful", level=4, clean_start=False)
    await sub.subscribe("dup/#", 1)
    pub, _ = await connect(broker, "dup-pub", level=4)
    await pub.publish("dup/1", b"ack me", 1)
    first = await sub.receive_message(ack=False)
    assert first.dup is False
    await sub.close()  # never acknowledged
    again, connack = await connect(broker, "forgetful", level=4, clean_start=False)
    assert connack.session_present is True
    resent = await again.receive_message()
    assert resent.dup is True
    assert (resent.packet_id, resent.payload) == (first.packet_id, b"ack me")
    # Acknowledged now: a further reconnect gets nothing.
    await again.close()
    third, _ = await connect(broker, "forgetful", level=4, clean_start=False)
    assert await third.nothing_within(0.3)


async def test_qos2_pubrel_resent_on_reconnect(broker: Broker, connect: Connect) -> None:
    from hookmq.mqtt.packets import Pubcomp, Pubrec, Pubrel

    sub, _ = await connect(broker, "q2-halfway", properties=PERSIST)
    await sub.subscribe("q2/#", 2)
    pub, _ = await connect(broker, "q2-pub")
    await pub.publish("q2/x", b"exactly once", 2)
    message = await sub.receive_message(ack=False)
    await sub.send(Pubrec(message.packet_id))
    assert (await sub.expect(Pubrel)).packet_id == message.packet_id
    await sub.close()  # PUBCOMP never sent
    again, _ = await connect(broker, "q2-halfway", clean_start=False, properties=PERSIST)
    pubrel = await again.expect(Pubrel)
    assert pubrel.packet_id == message.packet_id
    await again.send(Pubcomp(pubrel.packet_id))
    assert await again.nothing_within(0.3)


async def test_resume_respects_new_receive_maximum(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "shrinking", properties=Properties(session_expiry_interval=60, receive_maximum=5))
    await sub.subscribe("shrink/#", 1)
    pub, _ = await connect(broker, "shrink-pub")
    for n in range(3):
        await pub.publish("shrink/x", str(n).encode(), 1)
    await messages(sub, 3, ack=False)
    await sub.close()
    again, _ = await connect(broker, "shrinking", clean_start=False,
                             properties=Properties(session_expiry_interval=60, receive_maximum=1))
    first = await again.receive_message(ack=False)
    assert first.dup is True
    # MQTT-3.3.4-9: no more than Receive Maximum unacknowledged PUBLISH packets, resends included.
    assert await again.nothing_within(0.3)


async def test_shared_persistent_member_queue_released_to_others(broker: Broker, connect: Connect) -> None:
    holder, _ = await connect(broker, "sp-holder",
                              properties=Properties(session_expiry_interval=60, receive_maximum=1))
    other, _ = await connect(broker, "sp-other")
    await holder.subscribe("$share/g/sp", 1)
    await other.subscribe("$share/g/sp", 1)
    pub, _ = await connect(broker, "sp-pub")
    for n in range(6):
        await pub.publish("sp", str(n).encode(), 1)
    held = await holder.receive_message(ack=False)
    got = []
    while not await other.nothing_within(0.3):
        got.append((await other.receive_message()).payload)
    await holder.close()  # persistent: its inflight message waits for it, its queue goes to the group
    while not await other.nothing_within(0.3):
        got.append((await other.receive_message()).payload)
    assert sorted([*got, held.payload]) == [str(n).encode() for n in range(6)]


@pytest.mark.parametrize(("policy", "kept"), [("drop_oldest", [b"3", b"4", b"5"]),
                                               ("drop_newest", [b"1", b"2", b"3"])])
async def test_offline_queue_bounded_with_drop_policy(start_broker: StartBroker, connect: Connect,
                                                      policy: str, kept: list[bytes]) -> None:
    broker = await start_broker({"max_queued_messages": 3, "queue_drop_policy": policy})
    sub, _ = await connect(broker, "away", properties=PERSIST)
    await sub.subscribe("q/#", 1)
    await sub.disconnect()
    pub, _ = await connect(broker, "q-pub")
    for n in range(1, 6):
        await pub.publish("q/x", str(n).encode(), 1)
    assert broker.client("away")["queued"] == 3  # type: ignore[index]
    assert broker.info()["messages_dropped"] == 2
    again, _ = await connect(broker, "away", clean_start=False, properties=PERSIST)
    received = await messages(again, 3)
    assert [m.payload for m in received] == kept
    assert await again.nothing_within(0.3)


async def test_offline_qos0_not_queued(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "q0-away", properties=PERSIST)
    await sub.subscribe("q0/#", 1)
    await sub.disconnect()
    pub, _ = await connect(broker, "q0-pub")
    await pub.publish("q0/x", b"fire and forget", 0)
    await pub.publish("q0/x", b"kept", 1)
    again, _ = await connect(broker, "q0-away", clean_start=False, properties=PERSIST)
    received: list[Publish] = await messages(again, 1)
    assert received[0].payload == b"kept"
    assert await again.nothing_within(0.3)


async def test_session_survives_many_reconnects_without_leak(broker: Broker, connect: Connect) -> None:
    for _ in range(5):
        client, _ = await connect(broker, "bouncer", clean_start=False, properties=PERSIST)
        await client.subscribe("bounce/#", 1)
        await client.disconnect()
        await asyncio.sleep(0)
    assert len([s for s in broker.subscriptions() if s.client_id == "bouncer"]) == 1
