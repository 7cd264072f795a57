"""Every event hook is fired by a real broker at the documented point, with the documented arguments.

Each test registers a small plugin through ``Broker(config, extra_plugins=...)`` and drives
the broker over a real TCP socket with the raw test client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from hookmq import RejectPublish, hookimpl
from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import (
    Auth,
    Properties,
    Publish,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Unsubscribe,
    Will,
)
from hookmq.testing.raw import RawClient

BrokerFactory = Callable[..., Any]


def make_config(**mqtt: Any) -> Config:
    return Config.model_validate({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0, **mqtt},
    })


@pytest.fixture
async def start_broker() -> AsyncIterator[BrokerFactory]:
    started: list[Broker] = []

    async def start(plugin: object, **mqtt: Any) -> tuple[Broker, int]:
        broker = Broker(make_config(**mqtt), extra_plugins={"recorder": plugin})
        await broker.start()
        started.append(broker)
        return broker, broker.listeners[0].address[1]

    yield start
    for broker in started:
        await broker.stop()


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Recorder:
    """Records the calls of the hooks a test asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for hook, kwargs in self.calls if hook == name]


async def _scenario_on_started_and_on_stopped_order(start_broker: BrokerFactory) -> None:
    events: list[str] = []

    class Plugin:
        @hookimpl
        def on_started(self, broker: Broker) -> None:
            events.append("started" if broker.listeners else "started-without-listeners")

        @hookimpl
        async def on_stopped(self, broker: Broker) -> None:
            events.append("stopped")

    broker, _ = await start_broker(Plugin())
    assert events == ["started"]
    await broker.stop()
    assert events == ["started", "stopped"]


async def test_hook_on_started(start_broker: BrokerFactory) -> None:
    """`on_started` fires (scenario shared with the related hook)."""
    await _scenario_on_started_and_on_stopped_order(start_broker)


async def test_hook_on_stopped(start_broker: BrokerFactory) -> None:
    """`on_stopped` fires (scenario shared with the related hook)."""
    await _scenario_on_started_and_on_stopped_order(start_broker)



async def test_hook_on_sys_info_tick(start_broker: BrokerFactory) -> None:
    ticks: list[dict[str, Any]] = []

    class Plugin:
        @hookimpl
        def on_sys_info_tick(self, broker: Broker, info: dict[str, Any]) -> None:
            ticks.append(info)

    await start_broker(Plugin(), sys_interval=0.05)
    await eventually(lambda: len(ticks) >= 2)
    assert ticks[0]["version"]
    assert "clients_connected" in ticks[0]


async def test_hook_on_connect_authenticate(start_broker: BrokerFactory) -> None:
    class Plugin:
        @hookimpl
        async def on_connect_authenticate(self, client: Any, connect: Any) -> bool | None:
            await asyncio.sleep(0)
            if connect.username == "good":
                return connect.password == b"secret"
            return None

    _, port = await start_broker(Plugin())
    ok, connack = await RawClient.connect("127.0.0.1", port, "a", level=5, username="good", password=b"secret")
    assert connack.reason_code == 0
    await ok.disconnect()
    _, connack = await RawClient.connect("127.0.0.1", port, "b", level=5, username="good", password=b"wrong")
    assert connack.reason_code == 0x86
    _, connack = await RawClient.connect("127.0.0.1", port, "c", level=4, username="good", password=b"wrong")
    assert connack.reason_code == 0x04
    # Abstaining for everyone else: once an implementation exists, abstain means deny.
    _, connack = await RawClient.connect("127.0.0.1", port, "d", level=5)
    assert connack.reason_code == 0x87
    _, connack = await RawClient.connect("127.0.0.1", port, "e", level=4)
    assert connack.reason_code == 0x05


async def test_hook_on_acl_check(start_broker: BrokerFactory) -> None:
    asked: list[tuple[str, bool]] = []

    class Plugin:
        @hookimpl
        def on_acl_check(self, client: Any, topic: str, write: bool) -> bool | None:
            asked.append((topic, write))
            return not topic.startswith("secret")

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "acl", level=5)
    suback = await client.subscribe("secret/#", 1)
    assert suback.reason_codes == (0x87,)
    suback = await client.subscribe("open/#", 1)
    assert suback.reason_codes == (1,)
    puback = await client.publish("secret/x", b"no", qos=1)
    assert puback is not None and puback.reason_code == 0x87
    puback = await client.publish("open/x", b"yes", qos=1)
    message = await client.receive_message()
    assert message.payload == b"yes"
    assert ("secret/#", False) in asked and ("open/x", True) in asked
    await client.disconnect()


async def _scenario_on_connect_and_session_established(start_broker: BrokerFactory) -> None:
    recorder = Recorder()

    class Plugin:
        @hookimpl
        def on_connect(self, client: Any, connect: Any) -> None:
            recorder.calls.append(("on_connect", {"client_id": connect.client_id, "established": client.established}))

        @hookimpl
        def on_session_established(self, client: Any, connect: Any, session_present: bool) -> None:
            recorder.calls.append(("on_session_established", {"client_id": client.client_id,
                                                              "present": session_present}))

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "sess", level=5, clean_start=False,
                                        properties=Properties(session_expiry_interval=60))
    await client.disconnect()
    client, connack = await RawClient.connect("127.0.0.1", port, "sess", level=5, clean_start=False,
                                              properties=Properties(session_expiry_interval=60))
    assert connack.session_present
    await client.disconnect()
    assert recorder.named("on_connect") == [{"client_id": "sess", "established": False}] * 2
    assert recorder.named("on_session_established") == [
        {"client_id": "sess", "present": False}, {"client_id": "sess", "present": True}]


async def test_hook_on_connect(start_broker: BrokerFactory) -> None:
    """`on_connect` fires (scenario shared with the related hook)."""
    await _scenario_on_connect_and_session_established(start_broker)


async def test_hook_on_session_established(start_broker: BrokerFactory) -> None:
    """`on_session_established` fires (scenario shared with the related hook)."""
    await _scenario_on_connect_and_session_established(start_broker)



async def test_hook_on_disconnect(start_broker: BrokerFactory) -> None:
    seen: list[tuple[str, int, str | None]] = []

    class Plugin:
        @hookimpl
        def on_disconnect(self, client: Any, reason_code: int, error: str | None) -> None:
            seen.append((client.client_id, reason_code, error))

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "clean", level=5)
    await client.disconnect()
    bad, _ = await RawClient.connect("127.0.0.1", port, "bad", level=5)
    await bad.send_bytes(b"\x30\x04\x00\x01#\x00")  # v5 PUBLISH to a wildcard topic name
    await bad.closed_within()
    await eventually(lambda: len(seen) == 2)
    assert seen[0] == ("clean", 0, None)
    assert seen[1][0] == "bad" and seen[1][1] == 0x90 and seen[1][2]


async def test_hook_on_auth_packet(start_broker: BrokerFactory) -> None:
    """A two-step challenge/response through AUTH, then re-authentication."""

    class Plugin:
        @hookimpl
        def on_auth_packet(self, client: Any, packet: Auth) -> Auth | None:
            props = packet.properties
            if props.authentication_method != "demo":
                return None
            if props.authentication_data == b"hello":
                return Auth(0x18, Properties(authentication_method="demo", authentication_data=b"challenge"))
            if props.authentication_data == b"response":
                return Auth(0x00, Properties(authentication_method="demo", authentication_data=b"welcome"))
            return Auth(0x87)

    _, port = await start_broker(Plugin())
    client = await RawClient.open("127.0.0.1", port, level=5)
    from hookmq.mqtt.packets import Connack, Connect

    await client.send(Connect("enh", 5, properties=Properties(authentication_method="demo",
                                                              authentication_data=b"hello")))
    challenge = await client.expect(Auth)
    assert challenge.reason_code == 0x18 and challenge.properties.authentication_data == b"challenge"
    await client.send(Auth(0x18, Properties(authentication_method="demo", authentication_data=b"response")))
    connack = await client.expect(Connack)
    assert connack.reason_code == 0
    assert connack.properties.authentication_data == b"welcome"
    await client.send(Auth(0x19, Properties(authentication_method="demo", authentication_data=b"response")))
    reauth = await client.expect(Auth)
    assert reauth.reason_code == 0
    await client.disconnect()
    _, refused = await RawClient.connect("127.0.0.1", port, "x", level=5,
                                         properties=Properties(authentication_method="unknown"))
    assert refused.reason_code == 0x8C


async def test_hook_on_packet_read(start_broker: BrokerFactory) -> None:
    class Plugin:
        @hookimpl
        def on_packet_read(self, client: Any, packet: Any) -> Any:
            if isinstance(packet, Publish):
                return replace(packet, payload=packet.payload.upper())
            return None

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "r", level=4)
    await client.subscribe("t", 0)
    await client.publish("t", b"shout")
    assert (await client.receive_message()).payload == b"SHOUT"
    await client.disconnect()


async def _scenario_on_packet_encode_and_sent(start_broker: BrokerFactory) -> None:
    sent: list[tuple[str, int]] = []

    class Plugin:
        @hookimpl
        async def on_packet_encode(self, client: Any, packet: Any) -> Any:
            if isinstance(packet, Publish):
                return replace(packet, payload=b"[" + packet.payload + b"]")
            return None

        @hookimpl
        def on_packet_sent(self, client: Any, packet: Any, data: bytes) -> None:
            sent.append((type(packet).__name__, len(data)))

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "e", level=4)
    await client.subscribe("t", 1)
    await client.publish("t", b"x", qos=1)
    message = await client.receive_message()
    assert message.payload == b"[x]" and message.qos == 1
    await client.disconnect()
    names = [name for name, _ in sent]
    assert names[:3] == ["Connack", "Suback", "Publish"] or "Publish" in names
    assert all(size > 0 for _, size in sent)


async def test_hook_on_packet_encode(start_broker: BrokerFactory) -> None:
    """`on_packet_encode` fires (scenario shared with the related hook)."""
    await _scenario_on_packet_encode_and_sent(start_broker)


async def test_hook_on_packet_sent(start_broker: BrokerFactory) -> None:
    """`on_packet_sent` fires (scenario shared with the related hook)."""
    await _scenario_on_packet_encode_and_sent(start_broker)



async def _scenario_on_subscribe_and_subscribed(start_broker: BrokerFactory) -> None:
    results: list[tuple[int, ...]] = []

    class Plugin:
        @hookimpl
        def on_subscribe(self, client: Any, packet: Subscribe) -> Subscribe:
            # Downgrade every requested QoS to 0.
            subs = tuple(Subscription(s.topic_filter, SubscriptionOptions(0)) for s in packet.subscriptions)
            return replace(packet, subscriptions=subs)

        @hookimpl
        def on_subscribed(self, client: Any, packet: Subscribe, reason_codes: tuple[int, ...]) -> None:
            results.append(reason_codes)

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "s", level=5)
    suback = await client.subscribe("a/b", 2)
    assert suback.reason_codes == (0,)
    assert results == [(0,)]
    await client.disconnect()


async def test_hook_on_subscribe(start_broker: BrokerFactory) -> None:
    """`on_subscribe` fires (scenario shared with the related hook)."""
    await _scenario_on_subscribe_and_subscribed(start_broker)


async def test_hook_on_subscribed(start_broker: BrokerFactory) -> None:
    """`on_subscribed` fires (scenario shared with the related hook)."""
    await _scenario_on_subscribe_and_subscribed(start_broker)



async def test_hook_on_select_subscribers(start_broker: BrokerFactory) -> None:
    class Plugin:
        @hookimpl
        def on_select_subscribers(self, client: Any, packet: Publish, subscribers: list[Any]) -> list[Any]:
            return [s for s in subscribers if s.client_id != "muted"]

    _, port = await start_broker(Plugin())
    muted, _ = await RawClient.connect("127.0.0.1", port, "muted")
    heard, _ = await RawClient.connect("127.0.0.1", port, "heard")
    await muted.subscribe("news", 0)
    await heard.subscribe("news", 0)
    publisher, _ = await RawClient.connect("127.0.0.1", port, "pub")
    await publisher.publish("news", b"hi")
    assert (await heard.receive_message()).payload == b"hi"
    assert await muted.nothing_within(0.3)
    for client in (muted, heard, publisher):
        await client.disconnect()


async def _scenario_on_unsubscribe_and_unsubscribed(start_broker: BrokerFactory) -> None:
    seen: list[tuple[str, ...]] = []

    class Plugin:
        @hookimpl
        def on_unsubscribe(self, client: Any, packet: Unsubscribe) -> Unsubscribe:
            return replace(packet, topic_filters=tuple(f for f in packet.topic_filters if f != "keep"))

        @hookimpl
        def on_unsubscribed(self, client: Any, packet: Unsubscribe) -> None:
            seen.append(packet.topic_filters)

    broker, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "u", level=5)
    await client.subscribe("keep", 0)
    await client.subscribe("drop", 0)
    await client.unsubscribe("drop")
    await client.unsubscribe("keep")
    assert [e.topic_filter for e in broker.subscriptions()] == ["keep"]
    assert seen == [("drop",), ()]
    await client.disconnect()


async def test_hook_on_unsubscribe(start_broker: BrokerFactory) -> None:
    """`on_unsubscribe` fires (scenario shared with the related hook)."""
    await _scenario_on_unsubscribe_and_unsubscribed(start_broker)


async def test_hook_on_unsubscribed(start_broker: BrokerFactory) -> None:
    """`on_unsubscribed` fires (scenario shared with the related hook)."""
    await _scenario_on_unsubscribe_and_unsubscribed(start_broker)



async def _scenario_on_publish_and_published(start_broker: BrokerFactory) -> None:
    published: list[bytes] = []

    class Plugin:
        @hookimpl
        def on_publish(self, client: Any, packet: Publish) -> Publish | None:
            if packet.topic == "blocked":
                raise RejectPublish(0x97)
            return replace(packet, payload=packet.payload + b"!")

        @hookimpl
        async def on_published(self, client: Any, packet: Publish) -> None:
            published.append(packet.payload)

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "p", level=5)
    await client.subscribe("#", 0)
    puback = await client.publish("blocked", b"x", qos=1)
    assert puback is not None and puback.reason_code == 0x97
    await client.publish("ok", b"x", qos=0)
    assert (await client.receive_message()).payload == b"x!"
    assert published == [b"x!"]
    await client.disconnect()


async def test_hook_on_publish(start_broker: BrokerFactory) -> None:
    """`on_publish` fires (scenario shared with the related hook)."""
    await _scenario_on_publish_and_published(start_broker)


async def test_hook_on_published(start_broker: BrokerFactory) -> None:
    """`on_published` fires (scenario shared with the related hook)."""
    await _scenario_on_publish_and_published(start_broker)



async def test_hook_on_publish_dropped(start_broker: BrokerFactory) -> None:
    dropped: list[tuple[str, str]] = []

    class Plugin:
        @hookimpl
        def on_publish_dropped(self, client_id: str, packet: Publish, reason: str) -> None:
            dropped.append((client_id, reason))

    _, port = await start_broker(Plugin(), max_queued_messages=1)
    sub, _ = await RawClient.connect("127.0.0.1", port, "offline", level=5, clean_start=False,
                                     properties=Properties(session_expiry_interval=60))
    await sub.subscribe("q", 1)
    await sub.disconnect()
    pub, _ = await RawClient.connect("127.0.0.1", port, "pub", level=5)
    for n in range(3):
        await pub.publish("q", bytes([n]), qos=1)
    await eventually(lambda: len(dropped) == 2)
    assert dropped == [("offline", "queue full")] * 2
    await pub.disconnect()


async def test_hook_on_retain_message(start_broker: BrokerFactory) -> None:
    seen: list[tuple[str, bool]] = []

    class Plugin:
        @hookimpl
        def on_retain_message(self, client: Any, packet: Publish, stored: bool) -> None:
            seen.append((packet.topic, stored))

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "r")
    await client.publish("status", b"up", retain=True)
    await client.publish("status", b"", retain=True)
    await eventually(lambda: len(seen) == 2)
    assert seen == [("status", True), ("status", False)]
    await client.disconnect()


async def _scenario_on_qos_publish_and_complete(start_broker: BrokerFactory) -> None:
    events: list[tuple[str, int]] = []

    class Plugin:
        @hookimpl
        def on_qos_publish(self, client: Any, packet: Publish, resends: int) -> None:
            events.append(("publish", packet.packet_id))

        @hookimpl
        def on_qos_complete(self, client: Any, packet_id: int) -> None:
            events.append(("complete", packet_id))

    _, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "q", level=5)
    await client.subscribe("t", 2)
    await client.publish("t", b"1", qos=1)
    first = await client.receive_message()
    await client.publish("t", b"2", qos=2)
    second = await client.receive_message()
    await eventually(lambda: len(events) == 4)
    assert events == [("publish", first.packet_id), ("complete", first.packet_id),
                      ("publish", second.packet_id), ("complete", second.packet_id)]
    await client.disconnect()


async def test_hook_on_qos_publish(start_broker: BrokerFactory) -> None:
    """`on_qos_publish` fires (scenario shared with the related hook)."""
    await _scenario_on_qos_publish_and_complete(start_broker)


async def test_hook_on_qos_complete(start_broker: BrokerFactory) -> None:
    """`on_qos_complete` fires (scenario shared with the related hook)."""
    await _scenario_on_qos_publish_and_complete(start_broker)



async def test_hook_on_qos_dropped(start_broker: BrokerFactory) -> None:
    dropped: list[tuple[str, str]] = []

    class Plugin:
        @hookimpl
        def on_qos_dropped(self, client_id: str, packet: Publish, reason: str) -> None:
            dropped.append((client_id, reason))

    _, port = await start_broker(Plugin())
    sub, _ = await RawClient.connect("127.0.0.1", port, "holder", level=5)
    await sub.subscribe("t", 1)
    await sub.publish("t", b"never acked", qos=1)
    await sub.receive_message(ack=False)
    await sub.close()  # a clean session ends with the message still unacknowledged
    await eventually(lambda: len(dropped) == 1)
    assert dropped == [("holder", "session ended")]


async def _scenario_on_will_and_will_sent(start_broker: BrokerFactory) -> None:
    sent: list[tuple[str, bytes]] = []

    class Plugin:
        @hookimpl
        def on_will(self, client: Any, will: Will) -> Will:
            return replace(will, payload=will.payload + b" (via hook)")

        @hookimpl
        def on_will_sent(self, client_id: str, packet: Publish) -> None:
            sent.append((client_id, packet.payload))

    _, port = await start_broker(Plugin())
    watcher, _ = await RawClient.connect("127.0.0.1", port, "watcher")
    await watcher.subscribe("wills/#", 0)
    dying, _ = await RawClient.connect("127.0.0.1", port, "dying", will=Will("wills/dying", b"gone"))
    await dying.close()
    message = await watcher.receive_message()
    assert message.payload == b"gone (via hook)"
    await eventually(lambda: len(sent) == 1)
    assert sent == [("dying", b"gone (via hook)")]
    await watcher.disconnect()


async def test_hook_on_will(start_broker: BrokerFactory) -> None:
    """`on_will` fires (scenario shared with the related hook)."""
    await _scenario_on_will_and_will_sent(start_broker)


async def test_hook_on_will_sent(start_broker: BrokerFactory) -> None:
    """`on_will_sent` fires (scenario shared with the related hook)."""
    await _scenario_on_will_and_will_sent(start_broker)



async def test_hook_on_client_expired(start_broker: BrokerFactory) -> None:
    expired: list[str] = []

    class Plugin:
        @hookimpl
        def on_client_expired(self, client_id: str) -> None:
            expired.append(client_id)

    broker, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "brief", level=5, clean_start=False,
                                        properties=Properties(session_expiry_interval=1))
    await client.disconnect()
    await eventually(lambda: "brief" not in broker.sessions or bool(expired))
    await broker.housekeeping_pass(time.time() + 2, time.monotonic())
    await eventually(lambda: bool(expired))
    assert expired == ["brief"]
    assert "brief" not in broker.sessions


async def test_hook_on_retained_expired(start_broker: BrokerFactory) -> None:
    expired: list[str] = []

    class Plugin:
        @hookimpl
        def on_retained_expired(self, topic: str) -> None:
            expired.append(topic)

    broker, port = await start_broker(Plugin())
    client, _ = await RawClient.connect("127.0.0.1", port, "r", level=5)
    await client.publish("short", b"lived", retain=True, properties=Properties(message_expiry_interval=1))
    await client.publish("long", b"lived", retain=True)
    await eventually(lambda: len(broker.retained) == 2)
    await broker.housekeeping_pass(time.time() + 2, time.monotonic())
    await eventually(lambda: bool(expired))
    assert expired == ["short"]
    assert [m.topic for m in broker.retained] == ["long"]
    await client.disconnect()
