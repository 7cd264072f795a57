"""QoS 2 steps follow the store, and messages from other nodes keep an identity: what exactly-once across a crash rests on.

With ``durability = "ack_after_write"``: the PUBREL towards a subscriber leaves only once the
"pubrel" state is stored (a crash after it must not resend the PUBLISH, which the client,
having released the id, would take as new); a received QoS 2 packet id is stored only once the
message's forwards are acknowledged (a publisher resending to another node after this one's
crash must not be told "duplicate" for a message that never left). A message injected with an
identity keeps it in the store, and a redelivery of it skips the sessions that hold or
recently completed it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine_helpers import Connect, StartBroker, bounded, eventually, no_message

from hookmq import Message, hookimpl
from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.store.records import OutgoingRecord

PERSISTENT = Properties(session_expiry_interval=600)


async def durable_broker(start_broker: StartBroker, tmp_path: Path, **extra: Any) -> Broker:
    return await start_broker(storage={"backend": "sqlite", "durability": "ack_after_write"},
                              plugins={"sqlite_store": {"path": str(tmp_path / "state.sqlite3")}}, **extra)


async def test_pubrel_leaves_only_once_the_pubrel_state_is_stored(
        start_broker: StartBroker, connect: Connect, tmp_path: Path) -> None:
    broker = await durable_broker(start_broker, tmp_path)
    store: Any = broker.persistence.store
    gate = asyncio.Event()
    save_outgoing = store.save_outgoing

    async def held_save(client_id: str, record: OutgoingRecord) -> None:
        if record.state == "pubrel":
            await gate.wait()
        await save_outgoing(client_id, record)

    store.save_outgoing = held_save
    sub, _ = await connect(broker, "sub", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("q/#", 2)
    pub, _ = await connect(broker, "pub")
    await pub.publish("q/1", b"one", 2)
    delivered = await sub.recv()
    assert isinstance(delivered, Publish) and delivered.qos == 2
    await sub.send(Pubrec(delivered.packet_id))
    assert await no_message(sub, 0.3), "PUBREL was sent before its state was stored"
    gate.set()
    pubrel = await sub.recv()
    assert isinstance(pubrel, Pubrel) and pubrel.packet_id == delivered.packet_id
    assert [(r.packet_id, r.state) for r in await store.load_outgoing("sub")] == [(delivered.packet_id, "pubrel")]
    await sub.send(Pubcomp(delivered.packet_id))
    assert await eventually(lambda: not broker.sessions["sub"].inflight)


class HeldForward:
    """A destination whose acknowledgement the test releases."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []

    @hookimpl
    def on_forward(self, message: Message, destinations: dict[str, Any]) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


async def test_a_received_qos2_id_is_stored_only_once_its_forwards_are_acknowledged(
        start_broker: StartBroker, connect: Connect, tmp_path: Path) -> None:
    held = HeldForward()
    broker = await durable_broker(start_broker, tmp_path, extra_plugins={"held_forward": held})
    store: Any = broker.persistence.store
    broker.add_route("elsewhere", "q/#")
    pub, _ = await connect(broker, "pub", clean_start=False, properties=PERSISTENT)
    await pub.send(Publish("q/1", b"one", 2, packet_id=7))
    assert await eventually(lambda: len(held.futures) == 1)
    await bounded(broker.persistence.barrier())
    assert await store.load_incoming("pub") == []  # a resend elsewhere after a crash here must be routed
    assert await no_message(pub, 0.2)
    await pub.send(Publish("q/1", b"one", 2, dup=True, packet_id=7))  # on this node: a duplicate, not routed again
    assert await no_message(pub, 0.2)
    held.futures[0].set_result(None)
    pubrec = await pub.recv()
    assert isinstance(pubrec, Pubrec) and pubrec.packet_id == 7
    assert await store.load_incoming("pub") == [7]
    assert len(held.futures) == 1


async def test_an_injected_message_keeps_its_identity_and_a_redelivery_skips_who_holds_it(
        start_broker: StartBroker, connect: Connect, tmp_path: Path) -> None:
    broker = await durable_broker(start_broker, tmp_path)
    store: Any = broker.persistence.store
    sub, _ = await connect(broker, "sub", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("q/#", 2)
    first = Publish("q/1", b"one", 2)
    assert (await broker.inject(first, identity=b"node-a/1")).delivered == 1
    delivered = await sub.recv()
    assert isinstance(delivered, Publish) and delivered.payload == b"one"
    assert [r.message.identity for r in await store.load_outgoing("sub")] == [b"node-a/1"]
    # Sent again after a crash (inflight here): skipped; another identity is another message.
    again = await broker.inject(first, identity=b"node-a/1", redelivered=True)
    assert (again.delivered, again.already_held) == (0, 1)
    assert (await broker.inject(Publish("q/1", b"one", 2), identity=b"node-a/2", redelivered=True)).delivered == 1
    second = await sub.recv()
    assert isinstance(second, Publish) and second.packet_id != delivered.packet_id
    for packet_id in (delivered.packet_id, second.packet_id):
        await sub.send(Pubrec(packet_id))
        assert isinstance(await sub.recv(), Pubrel)
        await sub.send(Pubcomp(packet_id))
    assert await eventually(lambda: not broker.sessions["sub"].inflight)
    # Completed: a late redelivery is still recognised; a first delivery is never checked.
    assert (await broker.inject(first, identity=b"node-a/1", redelivered=True)).already_held == 1
    assert await no_message(sub, 0.2)
    assert (await broker.inject(first, identity=b"node-a/1")).delivered == 1


async def test_a_qos2_message_from_another_node_reaches_the_client_only_once_stored(
        start_broker: StartBroker, connect: Connect, tmp_path: Path) -> None:
    broker = await durable_broker(start_broker, tmp_path)
    store: Any = broker.persistence.store
    gate = asyncio.Event()
    save_outgoing = store.save_outgoing

    async def held_save(client_id: str, record: OutgoingRecord) -> None:
        await gate.wait()
        await save_outgoing(client_id, record)

    store.save_outgoing = held_save
    sub, _ = await connect(broker, "sub", clean_start=False, properties=PERSISTENT)
    await sub.subscribe("q/#", 2)
    injected = asyncio.ensure_future(broker.inject(Publish("q/1", b"one", 2), identity=b"node-a/7"))
    assert await no_message(sub, 0.3)  # seen unstored, a copy sent again after this node's crash would be new to it
    assert not injected.done()  # nor is the forward acknowledged
    gate.set()
    delivered = await sub.recv()
    assert isinstance(delivered, Publish) and (delivered.payload, delivered.dup) == (b"one", False)
    assert (await bounded(injected)).delivered == 1
    assert [r.message.identity for r in await store.load_outgoing("sub")] == [b"node-a/7"]
