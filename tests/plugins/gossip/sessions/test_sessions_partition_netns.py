"""A client id claimed on both sides of a real network partition is settled by epoch when it heals.

Three hookmq processes, each in a network namespace of its own on one bridge (`gossip_netns`);
Redis and the test's clients sit in the test's own namespace (the one `unshare -n` made), joined
to the bridge by a veth pair. node1's cable is pulled (its bridge port down): it loses its
peers, Redis and its client's path, while its client's TCP connection stays open. The same
client id connects to node2, which claims it with a newer epoch. When the cable goes back in,
node1 finds the newer epoch and ends its connection with DISCONNECT 0x8E; the newer connection
stays and gets what is published.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gossip_netns import SUBNET, NetnsLab, require_netns
from session_nodes import bounded, disconnect_reason, messages
from session_processes import SessionNode, until

from hookmq.mqtt.packets import Properties
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer

PERSISTENT = Properties(session_expiry_interval=300)
#: The test's own namespace on the lab's bridge: Redis and the clients live here.
HOST = f"{SUBNET}.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def _in_private_namespace() -> bool:
    """Only loopback here: a namespace of the test run's own (``unshare -n``), not the machine's."""
    with open("/proc/self/net/dev") as table:  # this process's namespace (sysfs may show another)
        names = [line.split(":")[0].strip() for line in table.readlines()[2:]]
    return names == ["lo"]


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    require_netns()
    if not _in_private_namespace():
        pytest.skip("run inside a private network namespace (unshare -n): this test adds a veth to its own")
    made = NetnsLab(3)
    try:
        tag = uuid.uuid4().hex[:6]
        _ip("link", "add", f"tq{tag}", "type", "veth", "peer", "name", "bt", "netns", made.hub)
        _ip("-n", made.hub, "link", "set", "bt", "master", "br0", "up")
        _ip("addr", "add", f"{HOST}/24", "dev", f"tq{tag}")
        _ip("link", "set", f"tq{tag}", "up")
        yield made
    finally:
        made.close()  # the hub's end goes with it, and so does ours
        assert made.leftovers() == []


async def connect(node: SessionNode, client_id: str, timeout: float = 10) -> RawClient:
    client, connack = await bounded(RawClient.connect(node.address, node.mqtt_port, client_id, 5, clean_start=False,
                                                      properties=PERSISTENT), timeout)
    assert connack.reason_code == 0, connack
    return client


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_real_partition_is_settled_by_epoch_when_it_heals(lab: NetnsLab, tmp_path: Path) -> None:
    with RedisServer(appendonly=True, extra=["--bind", f"{HOST} 127.0.0.1"]) as redis:
        url = f"redis://{HOST}:{redis.port}/0"
        nodes: list[SessionNode] = []
        try:
            seed: list[str] = []
            for index in range(3):
                node = SessionNode(tmp_path, f"node{index + 1}", url, seed, address=lab.address(index),
                                   prefix=lab.prefix(index))
                nodes.append(node)
                if not seed:
                    seed = [await node.gossip_address()]
            for node in nodes:
                await node.serving()
            names = [node.name for node in nodes]
            assert await until(lambda: all(node.logged(f"Link up: {other}") for node in nodes
                                           for other in names if other != node.name), 60)
            node1, node2, node3 = nodes
            old = await connect(node1, "roamer")
            await old.subscribe("roam/t", 1)
            lab.link(0, up=False)  # node1's cable out: peers, Redis and the client's path gone, TCP kept open
            # node2 asks node1 to hand over (no answer: 5 s), then claims with a newer epoch.
            new = await connect(node2, "roamer", timeout=40)
            # Held until node2 declares node1 failed (or 20 s): the heal must settle either way.
            await until(lambda: node2.logged("A node has failed: node1"), 20)
            lab.link(0, up=True)
            assert await disconnect_reason(old, 60) == 0x8E  # the older epoch's connection, ended on the heal
            assert node1.logged("holds a newer epoch") or node1.logged("owned by another node now")
            assert await new.nothing_within(2.0)  # the newer one stays
            publisher = await connect(node3, "pub-roam")
            for attempt in range(20):  # node3 routes to the owner (routes settle a moment after the heal)
                await publisher.publish("roam/t", str(attempt).encode(), qos=1)
                if not await new.nothing_within(0.5):
                    break
            [got] = await messages(new, 1)
            assert got.topic == "roam/t"
        finally:
            for node in nodes:
                node.stop()
