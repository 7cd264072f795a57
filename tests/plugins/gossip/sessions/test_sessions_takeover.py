"""Takeover across nodes, identical to a takeover on one node: brokers in cluster mode sharing a real Redis."""

from __future__ import annotations

import pytest
from session_nodes import StartNodes, bounded, disconnect_reason, eventually, messages

from hookmq.mqtt.packets import Properties, Pubcomp, Publish, Pubrec, Pubrel, Will
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer

PERSISTENT = Properties(session_expiry_interval=300)


@pytest.mark.parametrize("level", [4, 5])
async def test_persistent_takeover_a_to_b(redis_server: RedisServer, start_nodes: StartNodes, level: int) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    watcher = await b.client("watcher")
    await watcher.subscribe("wills/c", 0)
    persistent = PERSISTENT if level == 5 else Properties()
    old = await a.client("c", level, clean_start=False, properties=persistent, will=Will("wills/c", b"c went", 0, False))
    await old.subscribe("move/t", 1)
    new, connack = await bounded(RawClient.connect("127.0.0.1", b.port, "c", level, clean_start=False,
                                                   properties=persistent))
    assert connack.reason_code == 0 and connack.session_present
    assert await disconnect_reason(old) == (0x8E if level == 5 else None)  # v3.1.1 has no DISCONNECT to send
    [will] = await messages(watcher, 1)  # no will delay: it goes out at the takeover, as on one broker
    assert will.payload == b"c went"
    assert "c" not in a.broker.sessions and "c" in b.broker.connected
    assert a.sessions.counts["takeovers_handled"] == 1 and b.sessions.counts["takeovers_sent"] == 1
    publisher = await a.client("pub")
    await eventually(lambda: any(r.topic_filter == "move/t" for r in a.broker.routes("B")))
    await publisher.publish("move/t", b"after the move", qos=1)
    [got] = await messages(new, 1)
    assert got.payload == b"after the move"
    assert await new.nothing_within(0.3)


@pytest.mark.parametrize("level", [4, 5])
async def test_clean_start_on_b_discards_the_session_everywhere(redis_server: RedisServer, start_nodes: StartNodes,
                                                                level: int) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    persistent = PERSISTENT if level == 5 else Properties()
    old = await a.client("c", level, clean_start=False, properties=persistent)
    await old.subscribe("gone/t", 1)
    await old.disconnect()
    await eventually(lambda: "c" not in a.broker.connected)
    again = await a.client("c", level, clean_start=False, properties=persistent)  # online on A again
    new, connack = await bounded(RawClient.connect("127.0.0.1", b.port, "c", level, clean_start=True))
    assert connack.reason_code == 0 and not connack.session_present
    assert await disconnect_reason(again) == (0x8E if level == 5 else None)
    assert "c" not in a.broker.sessions
    await new.disconnect()
    await eventually(lambda: "c" not in b.broker.sessions)
    store = b.sessions.store
    assert store is not None and await store.load_session("c") is None and await store.load_subscriptions("c") == []
    back, connack = await bounded(RawClient.connect("127.0.0.1", a.port, "c", level, clean_start=False,
                                                    properties=persistent))
    assert not connack.session_present  # nothing left anywhere
    await back.disconnect()


async def test_inflight_resumed_across_nodes_in_both_directions(redis_server: RedisServer,
                                                                start_nodes: StartNodes) -> None:
    a, b = await start_nodes(["A", "B"], redis_server.url)
    old = await a.client("d", clean_start=False,
                         properties=Properties(session_expiry_interval=300, receive_maximum=1))
    await old.subscribe("q/t", 1)
    await old.send(Publish("up/t", b"half", 2, packet_id=9))  # QoS 2 in: PUBREC, never released on A
    assert isinstance(await old.recv(), Pubrec)
    pub = await a.client("pub")
    for n in range(3):
        await pub.publish("q/t", bytes([n]), qos=1)
    [first] = await messages(old, 1, ack=False)  # inflight, unacknowledged; two more wait in the queue
    new, connack = await bounded(RawClient.connect("127.0.0.1", b.port, "d", 5, clean_start=False,
                                                   properties=PERSISTENT))
    assert connack.session_present
    assert await disconnect_reason(old) == 0x8E
    resent = await new.receive_message()
    assert (resent.payload, resent.packet_id, resent.dup) == (b"\x00", first.packet_id, True)
    assert [m.payload for m in await messages(new, 2)] == [b"\x01", b"\x02"]
    await new.send(Pubrel(9))  # the QoS 2 packet id published on A is still known on B
    pubcomp = await new.expect(Pubcomp)
    assert pubcomp.reason_code == 0


async def test_a_session_moved_to_another_node_still_knows_what_it_completed(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    """Identities of completed messages from other nodes travel with the session through Redis: a
    copy re-routed to the new owner after a crash is recognised there, not delivered again."""
    a, b = await start_nodes(["A", "B"], redis_server.url)
    old = await a.client("k", clean_start=False, properties=PERSISTENT)
    await old.subscribe("k/t", 2)
    assert (await a.broker.inject(Publish("k/t", b"once", 2), identity=b"C/boot/1")).delivered == 1
    [got] = await messages(old, 1)  # completed: PUBREC, PUBREL, PUBCOMP
    assert got.payload == b"once"
    assert await eventually(lambda: not a.broker.sessions["k"].inflight)
    new, connack = await bounded(RawClient.connect("127.0.0.1", b.port, "k", 5, clean_start=False,
                                                   properties=PERSISTENT))
    assert connack.session_present
    again = await b.broker.inject(Publish("k/t", b"once", 2), identity=b"C/boot/1", redelivered=True)
    assert (again.delivered, again.already_held) == (0, 1)
    assert await new.nothing_within(0.3)


async def test_a_qos2_id_forwarded_but_not_yet_received_is_resent_as_a_redelivery(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    """The publisher's node stores a forwarded QoS 2 id as pending (with the message's identity)
    before the forward leaves, and as received once it is acknowledged. A node that loads the
    session with an id still pending (its node died in between) sends the publisher's resend
    again under that identity: a session that already got the message skips it."""
    a, b = await start_nodes(["A", "B"], redis_server.url)
    sub = await b.client("s2", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("r/t", 2)
    await eventually(lambda: any(r.topic_filter == "r/t" for r in a.broker.routes("B")))
    pub = await a.client("p2", clean_start=False, properties=PERSISTENT)
    await pub.send(Publish("r/t", b"first", 2, packet_id=5))
    assert isinstance(await pub.recv(), Pubrec)
    [got] = await messages(sub, 1)
    assert got.payload == b"first"
    store = a.broker.persistence.store
    await store.flush()
    assert await store.load_incoming("p2") == [5] and await store.load_incoming_pending("p2") == {}
    # As if A had died after B got message 6 and before storing it as received: pending, with its identity.
    identity = b"A-identity-of-6"
    assert (await b.broker.inject(Publish("r/t", b"sixth", 2), identity=identity)).delivered == 1
    [sixth] = await messages(sub, 1)
    assert sixth.payload == b"sixth"
    await store.save_incoming_pending("p2", 6, identity)
    await store.flush()
    await pub.disconnect()
    moved = await b.client("p2", clean_start=False, properties=PERSISTENT)
    await moved.send(Publish("r/t", b"sixth", 2, dup=True, packet_id=6))  # the resend after the crash
    assert isinstance(await moved.recv(), Pubrec)
    assert await sub.nothing_within(0.5)  # B's subscriber had it: not again
    await moved.send(Publish("r/t", b"seventh", 2, packet_id=7))  # a new message goes through as always
    assert isinstance(await moved.recv(), Pubrec)
    [seventh] = await messages(sub, 1)
    assert seventh.payload == b"seventh"
