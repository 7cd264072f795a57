"""Interop with real HashiCorp memberlist (mlnode, memberlist 0.2.2), on loopback.

hookmq nodes and memberlist nodes share one cluster: membership both ways, metadata updates,
user messages over UDP and TCP and by gossip, encryption (and a wrong key refused), kill -9
detection both ways, graceful leave. mlnode compresses everything it sends, so hookmq's LZW
decoder is exercised for real, and mlnode decodes what hookmq compresses.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from gossip_nodes import eventually, make_node, names
from gossip_oracle import HookmqNode, MlNode, free_port, mlnode_binary

from hookmq.plugins.gossip.driver import GossipNode
from hookmq.plugins.gossip.membership import EventKind, profile
from hookmq.plugins.gossip.membership.formulas import suspicion_timeout

LOCAL = profile("local")
KEY = os.urandom(32)


def detection_bound(nodes: int) -> float:
    """memberlist's worst case with the local profile: a full probe round plus one probe, then the
    longest suspicion (no confirmation at all), plus a second for scheduling on a loaded machine."""
    minimum = suspicion_timeout(LOCAL.suspicion_mult, nodes, LOCAL.probe_interval)
    return nodes * LOCAL.probe_interval + LOCAL.probe_interval + LOCAL.suspicion_max_timeout_mult * minimum + 1.0


@pytest.fixture
def mlnodes() -> Iterator[list[MlNode]]:
    mlnode_binary()
    started: list[MlNode] = []
    yield started
    for node in started:
        node.stop()


@pytest.fixture
async def hookmq_nodes() -> AsyncIterator[list[GossipNode]]:
    started: list[GossipNode] = []
    yield started
    for node in started:
        await node.stop()


async def start_node(nodes: list[GossipNode], name: str, key: bytes | None = None, members: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    node, recorded = make_node(name, 0, members=members, key=key)
    await node.start()
    nodes.append(node)
    return node, recorded


def ml(mlnodes: list[MlNode], name: str, join: str | None = None, *extra: str) -> MlNode:
    node = MlNode(name, free_port(), join, *extra)
    mlnodes.append(node)
    return node


async def test_hookmq_joins_a_memberlist_cluster(mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    ml1 = ml(mlnodes, "ml1")
    assert await eventually(lambda: ml1.events("READY"), 10)
    ml2 = ml(mlnodes, "ml2", ml1.address)
    assert await eventually(lambda: ml2.members() == {"ml1", "ml2"}, 10)
    hk, _ = await start_node(hookmq_nodes, "hk1")
    joined, errors = await hk.join([ml1.address])
    assert (joined, errors) == (1, [])
    everyone = {"ml1", "ml2", "hk1"}
    assert await eventually(lambda: names(hk) == everyone and ml1.members() == everyone and ml2.members() == everyone, 10)
    assert hk.stats["streams_compressed"] >= 1  # mlnode's push/pull answer was LZW-compressed


async def test_memberlist_joins_a_hookmq_cluster(mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    hk1, _ = await start_node(hookmq_nodes, "hk1")
    hk2, _ = await start_node(hookmq_nodes, "hk2")
    assert (await hk2.join([f"127.0.0.1:{hk1.port}"]))[0] == 1
    ml1 = ml(mlnodes, "ml1", f"127.0.0.1:{hk2.port}")
    everyone = {"hk1", "hk2", "ml1"}
    assert await eventually(lambda: names(hk1) == names(hk2) == ml1.members() == everyone, 10)
    assert ml1.events("JOINED") and not ml1.events("CMD_ERR")
    pushed = [event["remote"] for event in ml1.events("PUSHPULL")]
    assert pushed == [] or all(remote == "" for remote in pushed)  # hookmq sends no user state unless given one


async def test_metadata_updates_both_ways(mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    ml1 = ml(mlnodes, "ml1", None, "-meta", "first")
    assert await eventually(lambda: ml1.events("READY"), 10)
    hk, recorded = await start_node(hookmq_nodes, "hk1")
    await hk.join([ml1.address])
    assert await eventually(lambda: ml1.members() == {"ml1", "hk1"}, 10)
    assert next(m.meta for m in hk.members() if m.name == "ml1") == b"first"
    ml1.command_line("meta second")
    assert await eventually(lambda: any(k == EventKind.UPDATE and n == "ml1" and meta == b"second" for _, k, n, meta in recorded.events), 10)
    hk.update_meta(b"hookmq meta")
    assert await eventually(lambda: any(e["node"] == "hk1" and e["meta"] == "hookmq meta" for e in ml1.events("UPDATE")), 10)


async def test_user_messages_both_ways_by_udp_tcp_and_gossip(mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    ml1 = ml(mlnodes, "ml1")
    assert await eventually(lambda: ml1.events("READY"), 10)
    hk, recorded = await start_node(hookmq_nodes, "hk1")
    await hk.join([ml1.address])
    assert await eventually(lambda: ml1.members() == {"ml1", "hk1"}, 10)
    ml1.command_line("sendudp hk1 over-udp")
    ml1.command_line("send hk1 over-tcp")
    ml1.command_line("broadcast gossiped-by-memberlist")
    repetitive = ("compressible " * 80).strip()
    ml1.command_line("sendudp hk1 " + repetitive)  # memberlist LZW-compresses this packet
    expected = {(b"over-udp", False), (b"over-tcp", True), (b"gossiped-by-memberlist", False), (repetitive.encode(), False)}
    assert await eventually(lambda: expected <= set(recorded.messages), 10)
    assert hk.machine is not None and hk.machine.stats["packets_compressed"] >= 1
    await hk.send("ml1", b"from-hookmq-udp", reliable=False)
    await hk.send("ml1", b"from-hookmq-tcp " + b"x" * 100_000, reliable=True)
    hk.broadcast(b"gossiped-by-hookmq")

    def received() -> set[str]:
        return {event["data"][:15] for event in ml1.events("MSG")}

    assert await eventually(lambda: {"from-hookmq-udp", "from-hookmq-tcp", "gossiped-by-hoo"} <= received(), 10)
    assert any(event["bytes"] == str(len(b"from-hookmq-tcp ") + 100_000) for event in ml1.events("MSG"))


async def test_encryption_with_the_same_key_and_a_wrong_key_refused(mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    ml1 = ml(mlnodes, "ml1", None, "-key", base64.b64encode(KEY).decode())
    assert await eventually(lambda: ml1.events("READY"), 10)
    good, recorded = await start_node(hookmq_nodes, "good", key=KEY)
    assert (await good.join([ml1.address]))[0] == 1
    assert await eventually(lambda: ml1.members() == {"ml1", "good"} and names(good) == {"ml1", "good"}, 10)
    ml1.command_line("sendudp good secret-udp")
    assert await eventually(lambda: (b"secret-udp", False) in recorded.messages, 10)
    wrong, _ = await start_node(hookmq_nodes, "wrong", key=os.urandom(32))
    joined, errors = await wrong.join([ml1.address])
    assert joined == 0 and errors
    plain, _ = await start_node(hookmq_nodes, "plain")
    assert (await plain.join([ml1.address]))[0] == 0
    await eventually(lambda: False, 2.0)  # let any stray packet arrive
    assert ml1.members() == {"ml1", "good"} and names(good) == {"ml1", "good"}
    assert names(wrong) == {"wrong"} and names(plain) == {"plain"}
    assert any("decrypt" in event.get("line", "").lower() or "encrypt" in event.get("line", "").lower()
               for event in ml1.events("LOG"))


async def test_kill_of_a_memberlist_node_is_detected(mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    ml1 = ml(mlnodes, "ml1")
    assert await eventually(lambda: ml1.events("READY"), 10)
    hk, recorded = await start_node(hookmq_nodes, "hk1")
    await hk.join([ml1.address])
    ml2 = ml(mlnodes, "ml2", ml1.address)
    assert await eventually(lambda: names(hk) == {"ml1", "ml2", "hk1"} == ml2.members(), 10)
    await eventually(lambda: False, 2.0)
    killed = ml2.kill()
    bound = detection_bound(3)
    assert await eventually(lambda: recorded.first(EventKind.DEAD, "ml2", killed) is not None, bound)
    detected = recorded.first(EventKind.DEAD, "ml2", killed)
    assert detected is not None
    print(f"hookmq saw memberlist's kill -9 after {detected - killed:.2f} s (bound {bound:.1f} s)")
    assert recorded.first(EventKind.LEFT, "ml2") is None  # a crash is a failure, not a leave


async def test_kill_of_a_hookmq_node_is_detected_by_memberlist(tmp_path: Path, mlnodes: list[MlNode]) -> None:
    ml1 = ml(mlnodes, "ml1")
    assert await eventually(lambda: ml1.events("READY"), 10)
    ml2 = ml(mlnodes, "ml2", ml1.address)
    assert await eventually(lambda: ml2.members() == {"ml1", "ml2"}, 10)
    hk = HookmqNode(tmp_path, "hk1", members=[ml1.address])
    try:
        assert await eventually(lambda: ml1.members() == ml2.members() == {"ml1", "ml2", "hk1"}, 20), hk.text()
        await eventually(lambda: False, 2.0)
        killed = hk.kill()
        bound = detection_bound(3)
        assert await eventually(lambda: ml1.first("LEAVE", "hk1", killed) and ml2.first("LEAVE", "hk1", killed), bound)
        times = [node.first("LEAVE", "hk1", killed) for node in (ml1, ml2)]
        print("memberlist saw hookmq's kill -9 after", [f"{t - killed:.2f} s" for t in times if t], f"(bound {bound:.1f} s)")
        assert ml1.first("FAILED", "hk1", killed) or ml2.first("FAILED", "hk1", killed)
    finally:
        hk.stop()


async def test_graceful_leave_is_seen_as_left_both_ways(tmp_path: Path, mlnodes: list[MlNode], hookmq_nodes: list[GossipNode]) -> None:
    ml1 = ml(mlnodes, "ml1")
    assert await eventually(lambda: ml1.events("READY"), 10)
    hk, recorded = await start_node(hookmq_nodes, "hk1")
    await hk.join([ml1.address])
    ml2 = ml(mlnodes, "ml2", ml1.address)
    assert await eventually(lambda: ml2.events("JOINED"), 10)
    other = HookmqNode(tmp_path, "hk2", members=[ml1.address])
    try:
        everyone = {"ml1", "ml2", "hk1", "hk2"}
        assert await eventually(lambda: names(hk) == everyone == ml1.members(), 20), other.text()
        stopped = time.time()
        ml2.terminate()  # mlnode leaves on SIGTERM
        assert await eventually(lambda: recorded.first(EventKind.LEFT, "ml2", stopped) is not None, 10)
        assert recorded.first(EventKind.DEAD, "ml2") is None and recorded.first(EventKind.SUSPECT, "ml2") is None
        stopped = time.time()
        other.terminate()  # hookmq leaves on SIGTERM too
        assert await eventually(lambda: ml1.first("LEAVE", "hk2", stopped) is not None, 10)
        assert ml1.first("FAILED", "hk2") is None and ml1.first("SUSPECT", "hk2") is None
        assert other.logged("A node has left: hk2") is not None
    finally:
        other.stop()
