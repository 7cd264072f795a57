"""A node declared failed while its link still hears from it: routes and QoS 1 messages held, nothing lost.

Membership can declare a live node dead for a moment (a stale verdict after a partition heals).
The links hold such a node (`hookmq.plugins.gossip.link.hold`) and routing keeps its routes
until the links say it is gone, so the publisher's PUBACK still means "delivered there".
"""

from __future__ import annotations

from routing_nodes import StartNodes, eventually, messages

from hookmq.mqtt.packets import Puback, Publish
from hookmq.plugins.gossip import cluster_of
from hookmq.plugins.gossip.api import ClusterEvent
from hookmq.plugins.gossip.membership import EventKind


async def test_a_node_declared_dead_while_its_link_hears_from_it_keeps_its_routes_and_gets_every_message(
        start_nodes: StartNodes) -> None:
    a, b = await start_nodes(("A", "B"), links="real")
    sub = await b.client("sub")
    await sub.subscribe("held/#", 1)
    assert await eventually(lambda: a.routing.routable("B"))
    cluster = cluster_of(a.broker)
    assert cluster is not None
    member = cluster.member("B")
    assert member is not None
    gone: list[str] = []
    a.links.on_gone(gone.append)
    # As membership on A would tell its listeners (the links, then routing) after a stale verdict:
    for listener in (a.links._membership, a.routing._member_event):
        listener(ClusterEvent(EventKind.DEAD, member))
    assert a.links.held("B") and a.routing.node_states["B"] == "dead"
    assert {r.topic_filter for r in a.broker.routes("B")} == {"held/#"}  # kept
    pub = await a.client("pub")
    count = 20
    for n in range(count):
        await pub.send(Publish("held/t", n.to_bytes(4, "big"), 1, packet_id=n + 1))
    acks = [await pub.recv(10) for _ in range(count)]
    assert sorted(ack.packet_id for ack in acks if isinstance(ack, Puback) and ack.reason_code == 0) == list(
        range(1, count + 1))
    received = [int.from_bytes(m.payload, "big") for m in await messages(sub, count, timeout=10)]
    assert received == list(range(count))  # every acknowledged message reached B, in order
    for listener in (a.links._membership, a.routing._member_event):
        listener(ClusterEvent(EventKind.JOIN, member))  # B refuted: alive again
    assert not a.links.held("B") and a.links.totals["holds_released"] == 1
    await pub.send(Publish("held/t", b"after", 1, packet_id=count + 1))
    assert isinstance(await pub.recv(10), Puback)
    [after] = await messages(sub, 1, timeout=10)
    assert after.payload == b"after"
    assert gone == [] and a.routing.forwarder.stats["rerouted"] == 0 and a.links.stats("B")["disconnects"] == 0
