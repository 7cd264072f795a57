"""A QoS 2 message delivered on its publisher's own node, in cluster mode with the shared Redis store (ack_after_write).

Its identity is given at the publisher's node before any copy leaves, the publisher's id is
stored as pending with it first, and a local persistent subscriber is written its copy only
once that copy (with the identity) is stored: after a crash of this node the publisher's
resend elsewhere is recognised by the subscriber's session. QoS 0/1 and clean publishers take
the path they always took.
"""

from __future__ import annotations

import asyncio
from typing import Any

from session_nodes import StartNodes, bounded, eventually, messages

from hookmq.mqtt.packets import Properties, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.testing.redis import RedisServer

PERSISTENT = Properties(session_expiry_interval=300)


class HeldPending:
    """Wraps the fenced store's ``save_incoming_pending``: records each call and holds it until released."""

    def __init__(self, store: Any) -> None:
        self.calls: list[tuple[str, int, bytes]] = []
        self.gate = asyncio.Event()
        self._save = store.save_incoming_pending
        store.save_incoming_pending = self

    async def __call__(self, client_id: str, packet_id: int, identity: bytes) -> None:
        self.calls.append((client_id, packet_id, identity))
        await self.gate.wait()
        await self._save(client_id, packet_id, identity)


async def test_a_local_qos2_message_reaches_a_persistent_subscriber_only_after_its_pending_id_and_copy_are_stored(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    a, _ = await start_nodes(["A", "B"], redis_server.url)  # nothing subscribed on B: no forward, no route
    store: Any = a.broker.persistence.store
    held = HeldPending(store)
    sub = await a.client("sub", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("q/#", 2)
    pub = await a.client("pub", clean_start=False, properties=PERSISTENT)
    await pub.send(Publish("q/1", b"one", 2, packet_id=7))
    assert await eventually(lambda: len(held.calls) == 1)
    assert await sub.nothing_within(0.3), "the local subscriber saw the message before its pending id was stored"
    assert await pub.nothing_within(0.1)
    [(client_id, packet_id, identity)] = held.calls
    assert (client_id, packet_id) == ("pub", 7) and len(identity) == 16
    held.gate.set()
    delivered = await sub.expect(Publish)
    assert (delivered.payload, delivered.qos) == (b"one", 2)
    # The copy was stored (with the identity the pending id carries) before it was written.
    assert [r.message.identity for r in await store.load_outgoing("sub")] == [identity]
    await pub.expect(Pubrec)
    assert await store.load_incoming("pub") == [7] and await store.load_incoming_pending("pub") == {}
    await pub.send(Pubrel(7))
    await pub.expect(Pubcomp)
    await sub.send(Pubrec(delivered.packet_id))
    await sub.expect(Pubrel)
    await sub.send(Pubcomp(delivered.packet_id))
    assert await eventually(lambda: not a.broker.sessions["sub"].inflight)
    assert a.broker.sessions["sub"].holds(identity)  # completed: a redelivery after a crash is skipped


async def test_qos1_and_a_clean_publishers_qos2_store_no_pending_id(
        redis_server: RedisServer, start_nodes: StartNodes) -> None:
    a, _ = await start_nodes(["A", "B"], redis_server.url)
    held = HeldPending(a.broker.persistence.store)
    held.gate.set()
    sub = await a.client("sub", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("q/#", 2)
    persistent = await a.client("pub", clean_start=False, properties=PERSISTENT)
    await bounded(persistent.publish("q/1", b"at one", qos=1))
    clean = await a.client("clean")
    await bounded(clean.publish("q/2", b"at two, clean", qos=2))
    got = await messages(sub, 2)
    assert sorted(m.payload for m in got) == [b"at one", b"at two, clean"]
    assert held.calls == []
    session = a.broker.sessions["sub"]
    assert await eventually(lambda: not session.inflight)
    assert session.completed is None  # no identity given: none noted at completion
