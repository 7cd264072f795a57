"""The connection handler's two paths: packets handled inside the read event, and a task only while one must wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import Connect, StartBroker, port_of

from hookmq import hookimpl
from hookmq.engine.connection import PUBLISH_WAITS, RETAINED_PUBLISH_WAITS
from hookmq.engine.router import Router
from hookmq.mqtt.codec import encode
from hookmq.mqtt.packets import (
    Connack,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    SubscriptionOptions,
)
from hookmq.mqtt.packets import Connect as MqttConnect
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.testing.raw import RawClient


def test_every_hook_a_publish_may_wait_for_sends_it_the_hooked_way() -> None:
    assert Router.PUBLISH_HOOKS <= PUBLISH_WAITS | RETAINED_PUBLISH_WAITS
    assert "on_acl_check" in PUBLISH_WAITS
    # Only the router's retain step calls these, so only a retained PUBLISH has to wait for them.
    assert {"on_retain_message"} == RETAINED_PUBLISH_WAITS
    assert not PUBLISH_WAITS & RETAINED_PUBLISH_WAITS


async def test_a_retain_hook_takes_only_retained_messages_the_hooked_way(
        start_broker: StartBroker, connect: Connect) -> None:
    seen: list[tuple[str, bytes, int]] = []

    class RetainWatcher:
        @hookimpl
        async def on_retain_message(self, client: object, packet: Publish, stored: bool, version: int) -> None:
            await asyncio.sleep(0)  # a real wait: the PUBACK must come after it
            seen.append((packet.topic, packet.payload, version))

    broker = await start_broker(extra_plugins={"retain-watcher": RetainWatcher()})
    subscriber, _ = await connect(broker, "sub")
    await subscriber.subscribe("r/#", qos=1)
    publisher, _ = await connect(broker, "pub")
    # The hooked path is a task of the connection (the path without hooks makes none): count the
    # tasks made while each message is handled (a task factory sees those of compiled code too).
    loop = asyncio.get_running_loop()
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        name = getattr(coro, "__qualname__", None) or type(coro).__name__  # a compiled coroutine has a type name
        if not name.startswith("StreamReader."):  # the test client's reads
            made.append(name)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        await publisher.send(Publish("r/plain", b"plain", 1, packet_id=1))
        assert (await publisher.expect(Puback)).packet_id == 1
        plain_tasks = len(made)
        await publisher.send(Publish("r/kept", b"kept", 1, retain=True, packet_id=2))
        assert (await publisher.expect(Puback)).packet_id == 2
        retained_tasks = len(made) - plain_tasks
    finally:
        loop.set_task_factory(None)
    # The hook ran before the PUBACK, for the retained message only, which alone took the hooked path.
    assert seen == [("r/kept", b"kept", broker.retained.version("r/kept"))]
    assert plain_tasks == 0, made
    assert retained_tasks >= 1 and all("ConnectionHandler" in name for name in made), made
    payloads = sorted([(await subscriber.receive_message()).payload for _ in range(2)])
    assert payloads == [b"kept", b"plain"]


async def test_an_idle_connection_holds_no_task(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker()
    before = len(asyncio.all_tasks())
    clients = [(await connect(broker, f"idle-{index}"))[0] for index in range(5)]
    await clients[-1].subscribe("idle/#", qos=1)  # SUBSCRIBE goes through a task, which ends after SUBACK
    for _ in range(50):
        if len(asyncio.all_tasks()) <= before:
            break
        await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) <= before
    assert all(client.conn.is_pushing() for client in broker.connected.values())
    # ...and the pushed path serves them: a message through one arrives at another.
    await clients[0].publish("idle/x", b"hello", qos=1)
    message = await clients[-1].receive_message()
    assert (message.topic, message.payload) == ("idle/x", b"hello")


async def test_packets_after_a_waiting_hook_keep_their_order(start_broker: StartBroker, connect: Connect) -> None:
    gate = asyncio.Event()
    seen: list[bytes] = []

    class SlowFirst:
        @hookimpl
        async def on_publish(self, client: object, packet: Publish) -> None:
            seen.append(packet.payload)
            if packet.payload == b"1":
                await gate.wait()

    broker = await start_broker(extra_plugins={"slow": SlowFirst()})
    subscriber, _ = await connect(broker, "sub")
    await subscriber.subscribe("order", qos=1)
    publisher, _ = await connect(broker, "pub")
    # Three PUBLISHes in one write, a fourth later, while the first waits in its hook.
    await publisher.send_bytes(b"".join(encode(Publish("order", str(n).encode(), 1, packet_id=n), 5)
                                        for n in (1, 2, 3)))
    await asyncio.sleep(0.05)
    await publisher.send(Publish("order", b"4", 1, packet_id=4))
    assert await subscriber.nothing_within(0.1)
    assert seen == [b"1"]
    gate.set()
    payloads = [(await subscriber.receive_message()).payload for _ in range(4)]
    assert payloads == [b"1", b"2", b"3", b"4"]
    acks = [await publisher.expect(Puback) for _ in range(4)]
    assert [ack.packet_id for ack in acks] == [1, 2, 3, 4]
    # Caught up: the connection is pushed again, with no task left behind.
    for _ in range(50):
        if broker.connected["pub"].conn.is_pushing():
            break
        await asyncio.sleep(0.01)
    assert broker.connected["pub"].conn.is_pushing()
    assert not broker._connection_tasks


async def test_a_pushed_connection_that_ends_is_cleaned_up(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "leaving")
    assert broker.connected["leaving"].conn.is_pushing()
    await client.close()
    for _ in range(100):
        if "leaving" not in broker.sessions and not broker._connections:
            break
        await asyncio.sleep(0.01)
    assert "leaving" not in broker.sessions
    assert not broker._connections


def _tasks_of_hookmq(coroutines: list[object]) -> list[str]:
    """The coroutines of ``coroutines`` that are hookmq's own (not asyncio's, nor the test client's)."""
    names = []
    for coroutine in coroutines:
        code = getattr(coroutine, "cr_code", None)  # interpreted: its file says whose it is
        if code is not None and ("asyncio" in code.co_filename or "testing" in code.co_filename):
            continue
        names.append(getattr(coroutine, "__qualname__", type(coroutine).__qualname__))
    return names


@contextlib.contextmanager
def created_tasks() -> Iterator[list[object]]:
    """The coroutines of every task created on the running loop inside the block."""
    loop = asyncio.get_running_loop()
    coroutines: list[object] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        coroutines.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield coroutines
    finally:
        loop.set_task_factory(previous)


@pytest.mark.parametrize("level", [3, 4, 5])
async def test_a_connect_runs_in_the_read_event_without_a_task(start_broker: StartBroker, level: int) -> None:
    broker = await start_broker()
    with created_tasks() as coroutines:
        clients = [(await RawClient.connect("127.0.0.1", port_of(broker), f"quick-{n}", level))[0] for n in range(3)]
        for client in clients:
            await client.send(Pingreq())
            await client.expect(Pingresp)
    assert _tasks_of_hookmq(coroutines) == []
    assert all(client.conn.is_pushing() for client in broker.connected.values())
    assert sorted(broker.connected) == ["quick-0", "quick-1", "quick-2"]
    for client in clients:
        await client.close()


async def test_a_connect_split_across_reads_is_handled_when_complete(start_broker: StartBroker) -> None:
    broker = await start_broker()
    data = encode(MqttConnect("split", 5, "MQTT", True, 30), 5)
    client = await RawClient.open("127.0.0.1", port_of(broker), 5)
    with created_tasks() as coroutines:
        for piece in (data[:1], data[1:5], data[5:]):
            await client.send_bytes(piece)
            await asyncio.sleep(0.02)  # separate reads (not a timing assertion: any split must work)
        connack = await client.expect(Connack)
    assert connack.reason_code == 0
    assert _tasks_of_hookmq(coroutines) == []
    assert broker.connected["split"].conn.is_pushing()
    await client.close()


def _connect_subscribe_publish(client_id: str) -> bytes:
    """CONNECT, SUBSCRIBE to t/<id> and a QoS 1 PUBLISH to it: one write."""
    topic = f"t/{client_id}"
    return b"".join([
        encode(MqttConnect(client_id, 5, "MQTT", True, 30), 5),
        encode(Subscribe(1, (Subscription(topic, SubscriptionOptions(qos=1)),)), 5),
        encode(Publish(topic, b"own", 1, packet_id=2), 5),
    ])


async def _answers_in_order(client: RawClient, client_id: str, connack: bool = True) -> None:
    if connack:
        assert (await client.expect(Connack)).reason_code == 0
    assert (await client.expect(Suback)).reason_codes == (1,)
    rest = [await client.recv() for _ in range(2)]
    kinds = sorted(type(packet).__name__ for packet in rest)
    assert kinds == ["Puback", "Publish"]
    message = next(packet for packet in rest if isinstance(packet, Publish))
    assert (message.topic, message.payload) == (f"t/{client_id}", b"own")


async def test_connect_subscribe_and_publish_in_one_write(start_broker: StartBroker) -> None:
    broker = await start_broker()
    client = await RawClient.open("127.0.0.1", port_of(broker), 5)
    await client.send_bytes(_connect_subscribe_publish("together"))
    await _answers_in_order(client, "together")
    await client.close()


@pytest.mark.parametrize("hook", ["on_connect", "on_connect_authenticate", "on_session_established", "on_session_claim"])
async def test_a_connect_hook_that_waits_keeps_the_packets_after_connect_in_order(
        start_broker: StartBroker, hook: str) -> None:
    gate = asyncio.Event()
    called: list[str] = []

    async def wait() -> None:
        called.append(hook)
        await gate.wait()

    async def waits(self: object) -> None:
        await wait()

    async def waits_then_admits(self: object) -> bool:
        await wait()
        return True

    # A plugin implementing ``hook`` alone.
    implementation = waits_then_admits if hook == "on_connect_authenticate" else waits
    plugin = type("Waiting", (), {hook: hookimpl(implementation)})()
    broker = await start_broker(extra_plugins={"waiting": plugin})
    client = await RawClient.open("127.0.0.1", port_of(broker), 5)
    await client.send_bytes(_connect_subscribe_publish("hooked"))
    for _ in range(100):
        if called:
            break
        await asyncio.sleep(0.01)
    assert called == [hook]
    await client.send(Pingreq())  # arrives while the hook waits: answered after the rest
    after_connack = hook == "on_session_established"  # CONNACK went out before it was called
    if after_connack:
        assert (await client.expect(Connack)).reason_code == 0
    assert await client.nothing_within(0.05)
    gate.set()
    await _answers_in_order(client, "hooked", connack=not after_connack)
    assert isinstance(await client.recv(), Pingresp)
    for _ in range(100):
        if broker.connected["hooked"].conn.is_pushing():
            break
        await asyncio.sleep(0.01)
    assert broker.connected["hooked"].conn.is_pushing()
    await client.close()


async def test_a_refused_connect_in_the_read_event_is_answered_and_closed(start_broker: StartBroker) -> None:
    broker = await start_broker({"client_id_max_length": 23})
    client = await RawClient.open("127.0.0.1", port_of(broker), 5)
    await client.send(MqttConnect("a-client-id-that-is-much-too-long", 5, "MQTT", True, 30))
    received = await client.closed_within()
    assert [type(packet) for packet in received] == [Connack]
    assert received[0].reason_code == ReasonCode.CLIENT_IDENTIFIER_NOT_VALID  # type: ignore[attr-defined]
    for _ in range(100):
        if not broker._connections:
            break
        await asyncio.sleep(0.01)
    assert not broker._connections


async def test_a_connection_that_ends_before_connect_is_cleaned_up(start_broker: StartBroker) -> None:
    broker = await start_broker()
    client = await RawClient.open("127.0.0.1", port_of(broker), 5)
    await client.send_bytes(encode(MqttConnect("never", 5, "MQTT", True, 30), 5)[:4])
    for _ in range(100):
        if broker._connections:
            break
        await asyncio.sleep(0.01)
    assert len(broker._connections) == 1
    await client.close()
    for _ in range(100):
        if not broker._connections:
            break
        await asyncio.sleep(0.01)
    assert not broker._connections
    assert "never" not in broker.sessions


@pytest.mark.parametrize("level", [3, 4])
@pytest.mark.parametrize("session_present", [False, True])
def test_the_accepting_connack_written_from_bytes_is_what_encode_gives(level: int, session_present: bool) -> None:
    from hookmq.engine import handshake

    written = handshake._CONNACK_V4_ACCEPTED[1 if level == 4 and session_present else 0]
    assert written == encode(Connack(reason_code=0, session_present=session_present), level)


async def test_a_resumed_session_is_told_it_is_present(start_broker: StartBroker) -> None:
    broker = await start_broker()
    first, connack = await RawClient.connect("127.0.0.1", port_of(broker), "again", 4, clean_start=False)
    assert not connack.session_present
    await first.close()
    for _ in range(100):
        if broker.sessions["again"].client is None:
            break
        await asyncio.sleep(0.01)
    second, connack = await RawClient.connect("127.0.0.1", port_of(broker), "again", 4, clean_start=False)
    assert connack.session_present
    assert broker.connected["again"].conn.is_pushing()
    await second.close()
