"""The crash test of cluster sessions: three hookmq processes, one Redis, kill -9 of the subscriber's node, then of the publisher's.

A persistent subscriber on node1; a persistent publisher on node2 sending numbered messages
one after the other. Mid-stream node1 is killed with SIGKILL and the subscriber reconnects to
node3; later node2 is killed and the publisher moves to node3 too, resending its unacknowledged
message (same packet id, DUP). Every message whose publisher got its acknowledgement (PUBACK at
QoS 1, PUBREC at QoS 2) must reach the subscriber; at QoS 2 none twice (the subscriber counts a
PUBLISH as new unless it carries a packet id PUBRECed and not yet released, as an MQTT client
does). What makes QoS 2 hold: PUBREL only after the "pubrel" state is stored, a received QoS 2
id stored only once the forwards are acknowledged, and forwarded messages' identities stored
with the session so that a copy re-routed after the subscriber's node died is recognised.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from session_processes import SessionNode, until

from hookmq.mqtt.packets import (
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
    SubscriptionOptions,
)
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer

TOTAL = 3000
NOTEWORTHY = ("failed", "Routes of node", "Adopted", "handed", "uspect", "WARNING", "ERROR", "Link down", "Link up")
PERSISTENT = Properties(session_expiry_interval=600)


@pytest.fixture
def durable_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server with the append-only file (the durability this test claims rests on it)."""
    with RedisServer(appendonly=True) as server:
        yield server


async def start_cluster(tmp: Path, redis_url: str) -> list[SessionNode]:
    nodes: list[SessionNode] = []
    seed: list[str] = []
    for name in ("node1", "node2", "node3"):
        node = SessionNode(tmp, name, redis_url, seed)
        nodes.append(node)
        if not seed:
            seed = [await node.gossip_address()]
    for node in nodes:
        await node.serving()
    names = [node.name for node in nodes]
    assert await until(lambda: all(node.logged(f"Link up: {other}") for node in nodes
                                   for other in names if other != node.name), 30)
    return nodes


async def connect(node: SessionNode, client_id: str) -> RawClient:
    for _ in range(50):
        try:
            client, connack = await asyncio.wait_for(RawClient.connect("127.0.0.1", node.mqtt_port, client_id, 5,
                                                                       clean_start=False, properties=PERSISTENT), 10)
        except (OSError, EOFError, TimeoutError):
            await asyncio.sleep(0.2)
            continue
        if connack.reason_code == 0:
            return client
        await client.close()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{client_id} could not connect to {node.name}")


class Subscriber:
    """Receives, acknowledges and counts the numbered messages; follows the test to node3."""

    def __init__(self, qos: int) -> None:
        self.qos = qos
        self.deliveries: list[int] = []  # what the application saw, in order (duplicates included)
        self.awaiting_release: set[int] = set()  # QoS 2 packet ids PUBRECed, not yet released
        self.publishes: list[tuple[int, int, bool]] = []  # every PUBLISH received: packet id, number, DUP
        self.client: RawClient | None = None
        self.moved = asyncio.Event()

    async def run(self, first: SessionNode, then: SessionNode) -> None:
        self.client = await connect(first, "sub")
        await self.client.subscribe("crash/#", self.qos)
        node = first
        while True:
            try:
                packet = await self.client.recv(60)
            except (EOFError, ConnectionError, OSError):
                if node is then:
                    raise
                node = then  # node1 was killed: reconnect elsewhere, as a client behind a balancer would
                self.client = await connect(then, "sub")
                self.moved.set()
                continue
            await self._handle(packet)

    async def _handle(self, packet: object) -> None:
        assert self.client is not None
        if isinstance(packet, Publish):
            self.publishes.append((packet.packet_id, int(packet.payload), packet.dup))
            if packet.qos == 2:
                if packet.packet_id not in self.awaiting_release:  # method B: a DUP of an unreleased id is not new
                    self.deliveries.append(int(packet.payload))
                    self.awaiting_release.add(packet.packet_id)
                await self.client.send(Pubrec(packet.packet_id))
            else:
                self.deliveries.append(int(packet.payload))
                if packet.qos == 1:
                    await self.client.send(Puback(packet.packet_id))
        elif isinstance(packet, Pubrel):
            self.awaiting_release.discard(packet.packet_id)
            await self.client.send(Pubcomp(packet.packet_id))


async def publish_all(qos: int, node2: SessionNode, node3: SessionNode, acked: list[int],
                      kill_node2_at: int, kill_node2: asyncio.Event) -> None:
    """Publish TOTAL numbered messages one by one; on node2's death resume on node3 with the same packet id."""
    client = await connect(node2, "pub")
    node = node2
    packet_id = 0
    for number in range(TOTAL):
        if number == kill_node2_at:
            kill_node2.set()
        packet_id = packet_id % 65_535 + 1
        packet = Publish("crash/n", str(number).encode(), qos, packet_id=packet_id)
        while True:
            try:
                await client.send(packet)
                ack = await client.recv(60)
                while not isinstance(ack, (Puback, Pubrec)):
                    ack = await client.recv(60)
                assert ack.reason_code < 0x80, ack
                acked.append(number)
                if qos == 2:
                    await client.send(Pubrel(packet_id))
                    while not isinstance(await client.recv(60), Pubcomp):
                        pass
                break
            except (EOFError, ConnectionError, OSError):
                assert node is node2, f"{node3.name} failed the publisher"
                node = node3
                client = await connect(node3, "pub")
                if acked and acked[-1] == number:  # PUBREC came, PUBCOMP did not: release on node3
                    await client.send(Pubrel(packet_id))
                    while not isinstance(await client.recv(60), Pubcomp):
                        pass
                    break
                packet = Publish(packet.topic, packet.payload, qos, dup=True, packet_id=packet_id)
    await client.disconnect()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("qos", [1, 2])
async def test_kill_nine_of_the_subscribers_node_then_the_publishers_loses_no_acknowledged_message(
        tmp_path: Path, durable_redis: RedisServer, qos: int) -> None:
    node1, node2, node3 = await start_cluster(tmp_path, durable_redis.url)
    try:
        subscriber = Subscriber(qos)
        receiving = asyncio.ensure_future(subscriber.run(node1, node3))
        await asyncio.sleep(1.0)  # the subscription's route reaches node2
        acked: list[int] = []
        kill_node2 = asyncio.Event()
        started = time.monotonic()
        publishing = asyncio.ensure_future(publish_all(qos, node2, node3, acked, 2 * TOTAL // 3, kill_node2))
        assert await until(lambda: len(subscriber.deliveries) >= TOTAL // 3, 120)
        node1.kill()
        print(f"\nkill -9 node1 after {len(subscriber.deliveries)} deliveries, {len(acked)} acknowledged")
        await asyncio.wait_for(subscriber.moved.wait(), 60)
        await asyncio.wait_for(kill_node2.wait(), 300)
        assert await until(lambda: node3.logged("A node has failed: node1"), 60)
        node2.kill()
        print(f"kill -9 node2 after {len(acked)} acknowledged")
        await asyncio.wait_for(publishing, 300)
        missing = lambda: sorted(set(acked) - set(subscriber.deliveries))  # noqa: E731
        await until(lambda: not missing(), 20)
        duplicates = len(subscriber.deliveries) - len(set(subscriber.deliveries))
        seen: set[int] = set()
        repeated = [n for n in subscriber.deliveries if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
        if repeated:
            print(f"delivered twice: {repeated}")
        if missing():
            print(f"acknowledged, never delivered: {missing()[:20]}")
        print(f"QoS {qos}: {len(acked)} acknowledged, {len(set(subscriber.deliveries))} distinct received, "
              f"{duplicates} duplicates, {len(missing())} acknowledged but missing, "
              f"{time.monotonic() - started:.1f} s")
        receiving.cancel()
        if (qos == 2 and repeated) or missing():
            for node in (node1, node2, node3):  # what the nodes said about failures, routes and adoption
                said = [line for _, line in node.output() if any(word in line for word in NOTEWORTHY)]
                print(f"--- {node.name}:\n" + "\n".join(said[-40:]))
        assert missing() == []
        if qos == 2:
            assert repeated == []
    finally:
        for node in (node1, node2, node3):
            node.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_kill_nine_of_the_node_of_both_publisher_and_subscriber_duplicates_no_qos2_message(
        tmp_path: Path, durable_redis: RedisServer) -> None:
    """Publisher and subscriber on node1 (delivery on the publisher's own node, no forward); both move to node2."""
    node1, node2, node3 = await start_cluster(tmp_path, durable_redis.url)
    try:
        subscriber = Subscriber(2)
        receiving = asyncio.ensure_future(subscriber.run(node1, node2))
        await asyncio.sleep(0.5)
        acked: list[int] = []
        started = time.monotonic()
        publishing = asyncio.ensure_future(publish_all(2, node1, node2, acked, -1, asyncio.Event()))
        assert await until(lambda: len(subscriber.deliveries) >= TOTAL // 3, 120)
        node1.kill()
        print(f"\nkill -9 node1 after {len(subscriber.deliveries)} deliveries, {len(acked)} acknowledged")
        await asyncio.wait_for(subscriber.moved.wait(), 60)
        await asyncio.wait_for(publishing, 300)
        missing = lambda: sorted(set(acked) - set(subscriber.deliveries))  # noqa: E731
        await until(lambda: not missing(), 20)
        seen: set[int] = set()
        repeated = [n for n in subscriber.deliveries if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
        print(f"QoS 2 on the publisher's node: {len(acked)} acknowledged, {len(set(subscriber.deliveries))} distinct "
              f"received, {len(repeated)} duplicates {repeated[:20]}, {len(missing())} acknowledged but missing "
              f"{missing()[:20]}, {time.monotonic() - started:.1f} s")
        receiving.cancel()
        if repeated or missing():
            for node in (node1, node2, node3):
                said = [line for _, line in node.output() if any(word in line for word in NOTEWORTHY)]
                print(f"--- {node.name}:\n" + "\n".join(said[-40:]))
        assert missing() == []
        assert repeated == []
    finally:
        for node in (node1, node2, node3):
            node.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_local_qos2_message_is_not_seen_unstored_by_a_persistent_subscriber_of_a_node_killed_meanwhile(
        tmp_path: Path, durable_redis: RedisServer) -> None:
    """The window made wide: Redis paused (SIGSTOP) with a write in flight, a QoS 2 PUBLISH on the publisher's node.

    Seen by its local persistent subscriber before anything of it is stored, a kill -9 of node1
    then leaves Redis knowing neither the copy nor the received id: the publisher's resend on
    node2 is routed as new and the subscriber gets it twice. Stored as pending with its identity
    first (and the subscriber's copy stored before it is written), nothing reaches the
    subscriber while Redis is paused, and the resend arrives once.
    """
    node1, node2, node3 = await start_cluster(tmp_path, durable_redis.url)
    paused = False
    try:
        subscriber = Subscriber(2)
        receiving = asyncio.ensure_future(subscriber.run(node1, node2))
        await until(lambda: subscriber.client is not None, 10)
        await asyncio.sleep(0.5)
        publisher = await connect(node1, "pub")
        writer = await connect(node1, "writer")  # its SUBSCRIBE puts a store write in flight while Redis is paused
        for number in range(1, 4):
            packet = Publish("crash/n", str(number).encode(), 2, packet_id=number)
            await publisher.send(packet)
            await publisher.expect(Pubrec, 10)
            await publisher.send(Pubrel(number))
            await publisher.expect(Pubcomp, 10)
        assert await until(lambda: len(subscriber.deliveries) == 3, 10)
        os.kill(durable_redis.pid, signal.SIGSTOP)
        paused = True
        await writer.send(Subscribe(1, (Subscription("stall/#", SubscriptionOptions(qos=1)),)))
        await asyncio.sleep(0.3)
        # A QoS 1 message first (written before it is stored, as QoS 1 may be): the subscriber's
        # packet ids move on here, so node2 gives the resent message an id the subscriber holds
        # no unreleased copy of; a client cannot take it for the same message.
        await publisher.send(Publish("crash/n", b"100", 1, packet_id=5))
        await publisher.send(Publish("crash/n", b"4", 2, packet_id=4))
        seen_unstored = await until(lambda: 4 in subscriber.deliveries, 1.5)
        node1.kill()
        os.kill(durable_redis.pid, signal.SIGCONT)
        paused = False
        print(f"\nmessage 4 {'reached' if seen_unstored else 'did not reach'} the subscriber while Redis was paused")
        await asyncio.wait_for(subscriber.moved.wait(), 60)
        publisher = await connect(node2, "pub")
        await publisher.send(Publish("crash/n", b"4", 2, dup=True, packet_id=4))
        await publisher.expect(Pubrec, 30)
        await publisher.send(Pubrel(4))
        await publisher.expect(Pubcomp, 30)
        assert await until(lambda: 4 in subscriber.deliveries, 20)
        await asyncio.sleep(1.0)  # a second copy would come meanwhile
        print(f"received {subscriber.deliveries}; PUBLISHes (id, number, dup): {subscriber.publishes}")
        receiving.cancel()
        qos2 = [number for number in subscriber.deliveries if number != 100]  # 100 was never acknowledged
        assert qos2 == [1, 2, 3, 4], "a QoS 2 message reached the subscriber twice"
        assert not seen_unstored
    finally:
        if paused:
            os.kill(durable_redis.pid, signal.SIGCONT)
        for node in (node1, node2, node3):
            node.stop()
