"""The connection handler's two paths: packets handled inside the read event, and a task only while one must wait."""

from __future__ import annotations

import asyncio
from typing import Any

from engine_helpers import Connect, StartBroker

from hookmq import hookimpl
from hookmq.engine.connection import PUBLISH_WAITS, RETAINED_PUBLISH_WAITS
from hookmq.engine.router import Router
from hookmq.mqtt.codec import encode
from hookmq.mqtt.packets import Puback, Publish


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
