"""`$SYS` stays on its node, `$SYS/cluster/…` figures, and bad frames from a peer."""

from __future__ import annotations

import asyncio

import pytest
from routing_nodes import StartNodes, messages, no_message

from hookmq.mqtt.packets import Publish
from hookmq.plugins.gossip.routing.frames import FORWARD, ROUTES_DELTA, encode_forward, encode_publish_body


async def test_sys_topics_stay_local_and_cluster_figures_are_published(start_nodes: StartNodes) -> None:
    a, b = await start_nodes(("A", "B"), links="real")
    sub_b = await b.client("sub-b")
    await sub_b.subscribe("$SYS/#", 0)
    await sub_b.subscribe("fig/#", 1)
    pub = await a.client("pub")
    for n in range(3):
        await pub.publish(f"fig/{n}", b"x", qos=1)
    await messages(sub_b, 3)
    a.broker.publish_system("$SYS/broker/test-figure", b"only on A")
    assert await no_message(sub_b)  # A's $SYS never reaches B
    assert a.routing.forwarder.forwarded["B"] == 3
    b.routing.publish_figures()
    got = {m.topic: m.payload for m in await messages(sub_b, len(b.routing.figures()))}
    assert got["$SYS/cluster/peers/A/messages/received"] == b"3"
    assert got["$SYS/cluster/peers/A/link"] == b"up"
    assert int(got["$SYS/cluster/peers/A/routes"]) == 0 and int(got["$SYS/cluster/filters/count"]) == 2
    a.routing.publish_figures()
    figures = a.routing.figures()
    assert figures["peers/B/messages/forwarded"] == 3 and figures["peers/B/routes"] == 2
    with pytest.raises(ValueError):
        a.broker.publish_system("not/sys", b"x")


async def test_bad_frames_from_a_peer_are_counted_and_harm_nothing(start_nodes: StartNodes) -> None:
    a, b = await start_nodes(("A", "B"), links="real")
    sub = await b.client("sub")
    await sub.subscribe("#", 1)
    links_a = a.links
    await links_a.send("B", ROUTES_DELTA, b"\xc1garbage", reliable=True)  # type: ignore[misc]
    await links_a.send("B", FORWARD, b"\x93\x01\x02", reliable=True)  # type: ignore[misc]
    forged = encode_forward(1, None, (), 0, encode_publish_body(Publish("$SYS/broker/version", b"forged", 1, True)))
    await links_a.send("B", FORWARD, forged, reliable=True)  # type: ignore[misc]
    assert b.routing.bad_frames == 2 and b.routing.forwarder.stats["refused"] == 1
    assert b.broker.retained_message("$SYS/broker/version") is None or \
        b.broker.retained_message("$SYS/broker/version").payload != b"forged"  # type: ignore[union-attr]
    assert await no_message(sub)
    pub = await a.client("pub")
    await pub.publish("still/works", b"ok", qos=1)
    [got] = await messages(sub, 1)
    assert got.payload == b"ok"
    await asyncio.sleep(0)
