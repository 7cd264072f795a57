"""Will messages over real sockets: when they are sent, with what, and after which delay."""

from __future__ import annotations

from engine_helpers import Connect, messages

from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties, Will
from hookmq.mqtt.reason_codes import ReasonCode

WILL_PROPS = Properties(content_type="text/plain", user_properties=(("why", "crash"),), response_topic="r/t",
                        correlation_data=b"c1", payload_format_indicator=1)


async def test_will_sent_on_abnormal_close_with_qos_retain_and_properties(broker: Broker,
                                                                           connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch")
    await watcher.subscribe("will/#", 2)
    doomed, _ = await connect(broker, "doomed", will=Will("will/doomed", b"offline", 1, True, WILL_PROPS))
    await doomed.close()
    message = await watcher.receive_message()
    assert (message.topic, message.payload, message.qos) == ("will/doomed", b"offline", 1)
    props = message.properties
    assert props.content_type == "text/plain"
    assert props.user_properties == (("why", "crash"),)
    assert props.response_topic == "r/t"
    assert props.correlation_data == b"c1"
    assert props.will_delay_interval is None
    # Retained: a later subscriber finds it.
    late, _ = await connect(broker, "w-late")
    await late.subscribe("will/doomed", 1)
    retained = await late.receive_message()
    assert (retained.payload, retained.retain) == (b"offline", True)


async def test_will_sent_to_v311_subscriber_from_v311_client(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w4-watch", level=4)
    await watcher.subscribe("will4/#", 1)
    doomed, _ = await connect(broker, "doomed4", level=4, will=Will("will4/x", b"bye", 1))
    await doomed.close()
    message = await watcher.receive_message()
    assert (message.topic, message.payload, message.qos, message.retain) == ("will4/x", b"bye", 1, False)


async def test_will_not_sent_after_normal_disconnect(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch2")
    await watcher.subscribe("will/#", 0)
    polite, _ = await connect(broker, "polite", will=Will("will/polite", b"never"))
    await polite.disconnect()
    assert await watcher.nothing_within(0.5)


async def test_will_sent_after_disconnect_with_will_message(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch3")
    await watcher.subscribe("will/#", 0)
    leaver, _ = await connect(broker, "leaver", will=Will("will/leaver", b"on purpose"))
    await leaver.disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)
    assert (await watcher.receive_message()).payload == b"on purpose"


async def test_will_delay_interval(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch4")
    await watcher.subscribe("will/#", 0)
    will = Will("will/slow", b"late", properties=Properties(will_delay_interval=1))
    slow, _ = await connect(broker, "slow", will=will, properties=Properties(session_expiry_interval=30))
    await slow.close()
    assert await watcher.nothing_within(0.6)  # not before the delay
    assert (await watcher.receive_message(3)).payload == b"late"


async def test_will_delay_cancelled_by_reconnect(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch5")
    await watcher.subscribe("will/#", 0)
    will = Will("will/back", b"never", properties=Properties(will_delay_interval=1))
    expiry = Properties(session_expiry_interval=30)
    flaky, _ = await connect(broker, "flaky", will=will, properties=expiry)
    await flaky.close()
    _again, connack = await connect(broker, "flaky", clean_start=False, properties=expiry)
    assert connack.session_present is True
    assert await watcher.nothing_within(1.8)


async def test_will_sent_when_session_ends_before_delay(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch6")
    await watcher.subscribe("will/#", 0)
    will = Will("will/short-session", b"session over", properties=Properties(will_delay_interval=60))
    brief, _ = await connect(broker, "brief", will=will, properties=Properties(session_expiry_interval=1))
    await brief.close()
    # The session expires after 1 s, long before the 60 s will delay: the will goes then.
    received = await messages(watcher, 1, timeout=4)
    assert received[0].payload == b"session over"


async def test_keepalive_timeout_fires_will(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "w-watch7")
    await watcher.subscribe("will/#", 0)
    _silent, _ = await connect(broker, "silent", keep_alive=1, will=Will("will/silent", b"timed out"))
    assert (await watcher.receive_message(4)).payload == b"timed out"
