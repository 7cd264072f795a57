"""Back-pressure across nodes: a stuck peer holds the publisher's acknowledgements, never memory without bound."""

from __future__ import annotations

from typing import Any

import pytest
from routing_nodes import StartNodes, bounded, eventually, messages

from hookmq.mqtt.packets import Puback, Publish
from hookmq.plugins.gossip import plugin as gossip_plugin
from hookmq.plugins.gossip.link import LinkLimits

OUTBOX_FRAMES = 16


@pytest.fixture
def small_outbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links whose outbox holds at most OUTBOX_FRAMES reliable frames per peer."""
    original = gossip_plugin.link_limits

    def limits(config: Any) -> LinkLimits:
        return LinkLimits(max_frame=original(config).max_frame, reliable_frames=OUTBOX_FRAMES)

    monkeypatch.setattr(gossip_plugin, "link_limits", limits)


async def test_a_full_link_holds_the_publishers_acks_and_delivers_everything_in_order_once_it_drains(
        start_nodes: StartNodes, small_outbox: None) -> None:
    a, b = await start_nodes(("A", "B"), links="real")
    sub = await b.client("sub")
    await sub.subscribe("bp/t", 1)
    pub = await a.client("pub")
    stuck = b.links._peers["A"].protocol  # B stops reading its link from A: A's outbox fills up
    stuck.transport.pause_reading()
    count = 3 * OUTBOX_FRAMES  # within the broker's Receive Maximum, so the publisher may send them all
    for n in range(count):
        await pub.send(Publish("bp/t", n.to_bytes(4, "big"), 1, packet_id=n + 1))
    forwarder = a.routing.forwarder
    assert await eventually(lambda: forwarder.waiting_for_room("B") == count - OUTBOX_FRAMES)
    stats = a.links.stats("B")
    assert stats["queue_frames"] == OUTBOX_FRAMES  # the link holds no more than its bound
    with pytest.raises(TimeoutError):
        await pub.recv(0.5)  # no PUBACK while B has not taken them: the publisher's window stays full
    stuck.transport.resume_reading()
    acks = [await pub.recv(10) for _ in range(count)]
    assert all(isinstance(ack, Puback) and ack.reason_code == 0 for ack in acks)
    assert sorted(ack.packet_id for ack in acks if isinstance(ack, Puback)) == list(range(1, count + 1))
    received = [int.from_bytes(m.payload, "big") for m in await messages(sub, count, timeout=20)]
    assert received == list(range(count))  # complete and in order
    assert forwarder.waiting_for_room() == 0 and forwarder.stats["room_waits"] == count - OUTBOX_FRAMES
    assert a.links.stats("B")["overloaded"] == 0  # routing waited instead of being refused


async def test_messages_waiting_for_a_node_that_leaves_are_rerouted_and_the_publisher_is_answered(
        start_nodes: StartNodes, small_outbox: None) -> None:
    a, b, c = await start_nodes(("A", "B", "C"), links="real")
    member_b, member_c = [await node.client(f"member-{node.name}") for node in (b, c)]
    for member in (member_b, member_c):
        await member.subscribe("$share/g/gone/t", 1)
    pub = await a.client("pub")
    stuck = b.links._peers["A"].protocol  # B takes nothing more from A, then leaves
    stuck.transport.pause_reading()
    count = 4 * OUTBOX_FRAMES  # about half of them chosen for B: more than its outbox holds
    for n in range(count):
        await pub.send(Publish("gone/t", n.to_bytes(4, "big"), 1, packet_id=n + 1))
    forwarder = a.routing.forwarder
    assert await eventually(lambda: forwarder.waiting_for_room("B") > 0)
    waited = forwarder.waiting_for_room("B")
    await bounded(b.broker.stop(), 10)  # what A still held or queued for B goes to C, the other member
    acks = [await pub.recv(20) for _ in range(count)]
    assert all(isinstance(ack, Puback) and ack.reason_code == 0 for ack in acks), (acks, forwarder.stats)
    got = sorted(int.from_bytes(m.payload, "big") for m in await messages(member_c, count, timeout=20))
    assert got == list(range(count))  # B handed none to its member (it never read them): C gets each once
    assert forwarder.waiting_for_room() == 0 and forwarder.stats["rerouted"] >= waited
