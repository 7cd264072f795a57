"""Routes across nodes: snapshots, deltas, restored sessions, dead nodes, a node with 100 000 filters."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from pathlib import Path

import pytest
from routing_memory_links import MemoryNetwork
from routing_nodes import StartNodes, bounded, eventually, messages, no_message, routes_settled

from hookmq.mqtt.packets import (
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    SubscriptionOptions,
)
from hookmq.plugins.gossip.routing.frames import FORWARD
from hookmq.testing.raw import RawClient

PERSISTENT = Properties(session_expiry_interval=300)


async def test_a_dead_nodes_routes_are_gone_the_moment_membership_says_so(
        start_nodes: StartNodes, network: MemoryNetwork) -> None:
    a, b, c = await start_nodes(("A", "B", "C"))
    sub_b = await b.client("sub-b")
    await sub_b.subscribe("dead/#", 1)
    await sub_b.subscribe("$share/g/dead/#", 1)
    sub_c = await c.client("sub-c")
    await sub_c.subscribe("dead/#", 1)
    assert {r.destination for r in a.broker.routes()} == {"B", "C"}
    network.fail("B")  # the links say B is gone (left, or failed and silent): its routes go
    assert {r.destination for r in a.broker.routes()} == {"C"}
    assert a.routing.remote.share_holders(("g", "dead/#")) == {}
    pub = await a.client("pub")
    ack = await pub.publish("dead/t", b"x", qos=1)
    assert isinstance(ack, Puback) and ack.reason_code == 0  # not held up by the dead node
    [got] = await messages(sub_c, 1)
    assert got.payload == b"x"
    assert network.delivered[("A", "B", FORWARD)] == 0


async def test_a_dead_nodes_unacknowledged_share_message_goes_to_another_member(
        start_nodes: StartNodes, network: MemoryNetwork) -> None:
    a, b, c = await start_nodes(("A", "B", "C"))
    on_b = await b.client("on-b")
    await on_b.subscribe("$share/g/re/#", 1)
    on_c = await c.client("on-c")
    await on_c.subscribe("$share/g/re/#", 1)
    await routes_settled([a, b, c])
    network.cut("A", "B")
    network.cut("A", "C")
    pub = await a.client("pub")
    for n in range(4):
        await pub.send(Publish(f"re/{n}", str(n).encode(), 1, packet_id=n + 1))
    assert await no_message(pub, 0.3)  # no member has them yet: no PUBACK
    assert a.routing.forwarder.forwarded["B"] == 2 and a.routing.forwarder.forwarded["C"] == 2  # turns
    network.connect("A", "C")  # C's two arrive; B's wait until B is declared dead
    network.fail("B")  # the link layer says B is gone and hands its unacknowledged frames back
    acks = [await pub.recv() for _ in range(4)]
    assert sorted(ack.packet_id for ack in acks if isinstance(ack, Puback) and ack.reason_code == 0) == [1, 2, 3, 4]
    got_c = await messages(on_c, 4)
    assert sorted(m.payload for m in got_c) == [b"0", b"1", b"2", b"3"]
    assert await no_message(on_b)


async def test_routes_removed_while_a_link_was_down_go_with_the_next_snapshot(
        start_nodes: StartNodes, network: MemoryNetwork) -> None:
    a, b = await start_nodes(("A", "B"))
    sub = await b.client("sub")
    await sub.subscribe("snap/one", 1)
    await sub.subscribe("snap/two", 1)
    assert {r.topic_filter for r in a.broker.routes("B")} == {"snap/one", "snap/two"}
    network.cut("A", "B")
    await sub.unsubscribe("snap/one")  # A does not hear it (no delta to a peer that is down)
    await sub.subscribe("snap/three", 1)
    assert {r.topic_filter for r in a.broker.routes("B")} == {"snap/one", "snap/two"}
    network.connect("A", "B")
    assert await routes_settled([a, b])
    assert {r.topic_filter for r in a.broker.routes("B")} == {"snap/two", "snap/three"}


async def test_subscriptions_restored_from_the_store_at_start_are_routed(
        start_nodes: StartNodes, network: MemoryNetwork, tmp_path: Path) -> None:
    store = {"storage": {"backend": "sqlite"}, "plugins": {"sqlite_store": {"path": str(tmp_path / "b.db")}}}
    [a] = await start_nodes(("A",), connect=False)
    [b] = await start_nodes(("B",), connect=False, **store)
    network.connect("A", "B")
    keeper = await b.client("keeper", clean_start=False, properties=PERSISTENT)
    await keeper.subscribe("kept/#", 1)
    await keeper.disconnect()
    await b.broker.stop()
    network.fail("B")
    assert a.broker.routes("B") == []
    [b] = await start_nodes(("B",), connect=False, **store)  # the session and its subscription come back
    assert "kept/#" in b.routing.announcer.interest
    network.connect("A", "B")
    assert await routes_settled([a, b])
    pub = await a.client("pub")
    await pub.publish("kept/t", b"while offline", qos=1)
    back = await b.client("keeper", clean_start=False, properties=PERSISTENT)
    [got] = await messages(back, 1)
    assert got.payload == b"while offline"


async def subscribe_many(client: RawClient, filters: list[str], per_packet: int = 1000) -> None:
    """SUBSCRIBE to every filter, many per packet."""
    for start in range(0, len(filters), per_packet):
        chunk = filters[start:start + per_packet]
        await client.send(Subscribe(client.packet_id(), tuple(Subscription(f, SubscriptionOptions(0)) for f in chunk)))
        suback = await client.expect(Suback, timeout=30)
        assert all(code == 0 for code in suback.reason_codes)


@pytest.mark.parametrize("filters", [
    10_000,
    pytest.param(100_000, marks=pytest.mark.slow),
])
async def test_a_node_with_many_filters_joins_and_is_routable_without_stalling_the_others(
        start_nodes: StartNodes, network: MemoryNetwork, filters: int) -> None:
    a, b = await start_nodes(("A", "B"))
    sub_b = await b.client("sub-b")
    await sub_b.subscribe("live/#", 1)
    pub_a = await a.client("pub-a")
    [big] = await start_nodes(("BIG",), connect=False, mqtt={"max_subscriptions_per_client": 0})
    holder = await big.client("holder")
    await subscribe_many(holder, [f"big/{n // 1000}/{n % 1000}" for n in range(filters)])
    assert len(big.routing.announcer.interest) == filters

    # Live traffic A -> B while BIG joins: the longest gap between deliveries is the stall.
    stop = asyncio.Event()
    sent: list[float] = []

    async def publish_live() -> None:
        n = 0
        while not stop.is_set():
            sent.append(time.perf_counter())
            await pub_a.publish("live/t", n.to_bytes(4, "big"), qos=1)
            n += 1
            await asyncio.sleep(0.005)

    async def receive_live() -> list[tuple[int, float]]:
        got = []
        while not stop.is_set() or len(got) < len(sent):
            try:
                [message] = await messages(sub_b, 1, timeout=2)
            except TimeoutError:
                break
            got.append((int.from_bytes(message.payload, "big"), time.perf_counter()))
        return got

    pauses: list[float] = []
    started_at: list[float] = []

    def gc_timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started_at[:] = [time.perf_counter()]
        elif started_at:
            pauses.append(time.perf_counter() - started_at[0])

    gc.callbacks.append(gc_timer)
    publishing = asyncio.ensure_future(publish_live())
    receiving = asyncio.ensure_future(receive_live())
    await asyncio.sleep(0.3)
    joined = time.perf_counter()
    network.connect("BIG", "A")
    network.connect("BIG", "B")
    assert await eventually(lambda: a.routing.routable("BIG") and b.routing.routable("BIG")
                            and a.routing.remote.route_count("BIG") == filters
                            and b.routing.remote.route_count("BIG") == filters, timeout=120)
    routable = time.perf_counter() - joined
    await asyncio.sleep(0.3)
    stop.set()
    await bounded(publishing, 10)
    live = await bounded(receiving, 30)
    gc.callbacks.remove(gc_timer)
    assert [n for n, _ in live] == list(range(len(sent)))  # nothing lost, in order, while BIG joined
    latencies = [at - sent[n] for n, at in live]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(live)]
    # And BIG is routable: a publish on A to one of its filters reaches it.
    await pub_a.publish(f"big/{(filters - 1) // 1000}/{(filters - 1) % 1000}", b"found", qos=1)
    [found] = await messages(holder, 1)
    assert found.payload == b"found"
    print(f"\n{filters} filters: routable on A and B {routable:.2f} s after the links came up; "
          f"live A->B traffic meanwhile: {len(live)} messages, latency max {max(latencies) * 1000:.1f} ms, "
          f"longest gap between deliveries {max(gaps) * 1000:.1f} ms; longest garbage-collector pause "
          f"{max(pauses, default=0) * 1000:.1f} ms (three brokers share this process and its collector)")
