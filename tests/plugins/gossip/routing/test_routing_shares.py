"""Shared subscriptions across nodes: each message to exactly one member in the whole cluster."""

from __future__ import annotations

import asyncio
from collections import Counter

from routing_memory_links import MemoryNetwork
from routing_nodes import StartNodes, eventually, messages, no_message

from hookmq.mqtt.packets import Publish
from hookmq.plugins.gossip.routing.shares import ShareChooser
from hookmq.testing.raw import RawClient


async def drain(client: RawClient, seconds: float = 0.5) -> list[Publish]:
    """Every message that arrives until ``seconds`` pass without one."""
    got: list[Publish] = []
    while True:
        try:
            got.extend(await messages(client, 1, timeout=seconds))
        except TimeoutError:
            return got


async def test_shared_group_across_three_nodes_exactly_once(start_nodes: StartNodes) -> None:
    a, b, c = await start_nodes(("A", "B", "C"), links="real")
    members: list[tuple[str, RawClient]] = []
    for node, count in ((a, 1), (b, 2), (c, 1)):
        for n in range(count):
            client = await node.client(f"m-{node.name}-{n}")
            await client.subscribe("$share/g/work/#", 1)
            members.append((node.name, client))
    plain = await c.client("plain")
    await plain.subscribe("work/#", 1)  # an ordinary subscriber still gets every message
    assert await eventually(lambda: a.routing.remote.share_weight(("g", "work/#"), "B") == 2)
    publishers = [await node.client(f"pub-{node.name}") for node in (a, b, c)]
    total = 60
    for n in range(total):
        await publishers[n % 3].publish(f"work/{n}", str(n).encode(), qos=1)
    per_member: dict[str, list[int]] = {}
    for node_name, client in members:
        per_member[f"{node_name}:{id(client)}"] = [int(m.payload) for m in await drain(client)]
    everything = sorted(n for got in per_member.values() for n in got)
    assert everything == list(range(total))  # every message once, none twice
    per_node = Counter(key.split(":")[0] for key, got in per_member.items() for _ in got)
    assert set(per_node) == {"A", "B", "C"}  # spread over the members on every node
    assert sorted(int(m.payload) for m in await messages(plain, total)) == list(range(total))


async def test_a_share_message_for_a_node_whose_member_left_goes_to_another_member(
        start_nodes: StartNodes, network: MemoryNetwork) -> None:
    a, b = await start_nodes(("A", "B"))
    far = await b.client("far")
    await far.subscribe("$share/g/s/#", 1)
    near = await a.client("near")
    await near.subscribe("$share/g/s/#", 1)
    await near.disconnect()  # offline: A's only connected candidate is B
    assert await eventually(lambda: a.routing.remote.share_weight(("g", "s/#"), "B") == 1)
    network.cut("A", "B")  # the message waits on the link while B's member goes away
    pub = await a.client("pub")
    sending = asyncio.ensure_future(pub.publish("s/1", b"x", qos=1))
    await asyncio.sleep(0.2)
    await far.unsubscribe("$share/g/s/#")
    back = await a.client("near")  # a clean start: its share subscription ended with the old session
    await back.subscribe("$share/g/s/#", 1)
    network.connect("A", "B")
    await asyncio.wait_for(sending, 5)
    [got] = await messages(back, 1)  # B had no member left: it passed the message back to A's member
    assert got.payload == b"x"
    assert await no_message(far)


async def test_share_weights_follow_member_counts() -> None:
    class Route:
        def __init__(self, destination: str) -> None:
            self.destination = destination
            self.client_id = "\x00" + destination

    class Local:
        destination = None

        def __init__(self, client_id: str) -> None:
            self.client_id = client_id

    weights = {"B": 3}
    connected = {"l1", "l2"}
    chooser = ShareChooser(lambda key, node: weights.get(node, 0), lambda cid: cid in connected)
    members = [Local("l1"), Local("l2"), Local("offline"), Route("B")]
    chosen = Counter()
    for _ in range(50):
        pick = chooser.choose(("g", "f"), members)
        chosen[getattr(pick, "destination", None) or pick.client_id] += 1
    assert chosen == {"l1": 10, "l2": 10, "B": 30}  # 1:1:3, and the offline member none while others are up
    connected.clear()
    weights.clear()
    assert chooser.choose(("g", "f"), [Local("offline")]) is None  # nobody connected: the engine decides
