"""The asyncio driver over real loopback sockets: hookmq nodes among themselves, and bad input."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator

import pytest
from gossip_nodes import eventually, make_node, names
from gossip_oracle import free_port

from hookmq.plugins.gossip.driver import GossipNode
from hookmq.plugins.gossip.membership import EventKind, profile
from hookmq.plugins.gossip.runner import GossipRunner
from hookmq.plugins.gossip.wire import (
    Alive,
    Dead,
    Keyring,
    Ping,
    PushNodeState,
    WireCodec,
    encode_message,
    encode_push_pull,
    seal_stream,
    vsn_bytes,
)

KEY = os.urandom(16)


@pytest.fixture
async def nodes() -> AsyncIterator[list[GossipNode]]:
    started: list[GossipNode] = []
    yield started
    for node in started:
        await node.stop()


async def start(nodes: list[GossipNode], name: str, **options: object):  # type: ignore[no-untyped-def]
    node, recorded = make_node(name, 0, **options)  # type: ignore[arg-type]
    await node.start()
    nodes.append(node)
    return node, recorded


async def test_three_nodes_join_and_one_port_serves_udp_and_tcp(nodes: list[GossipNode]) -> None:
    first, _ = await start(nodes, "a")
    for name in ("b", "c"):
        node, _ = await start(nodes, name, members=(f"127.0.0.1:{first.port}",))
        assert (await node.join([f"localhost:{first.port}"]))[0] >= 1  # host names resolve
    assert await eventually(lambda: all(names(n) == {"a", "b", "c"} for n in nodes), 10)
    tcp = socket.create_connection(("127.0.0.1", first.port), timeout=2)
    tcp.close()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(OSError):
        udp.bind(("127.0.0.1", first.port))  # taken by the node
    udp.close()


async def test_port_zero_binds_one_free_port_for_both(nodes: list[GossipNode]) -> None:
    node, _ = make_node("z", 0)
    await node.start()
    nodes.append(node)
    assert node.port > 0
    socket.create_connection(("127.0.0.1", node.port), timeout=2).close()


async def test_join_failure_is_reported_not_raised(nodes: list[GossipNode]) -> None:
    node, _ = await start(nodes, "lonely")
    joined, errors = await node.join([f"127.0.0.1:{free_port()}"])
    assert joined == 0 and errors
    assert (await node.join(["no-such-host.invalid:7946"]))[0] == 0


async def test_kill_and_leave_between_hookmq_nodes(nodes: list[GossipNode]) -> None:
    a, recorded = await start(nodes, "a")
    b, _ = await start(nodes, "b")
    c, _ = await start(nodes, "c")
    for node in (b, c):
        await node.join([f"127.0.0.1:{a.port}"])
    assert await eventually(lambda: names(a) == {"a", "b", "c"}, 10)
    await c.stop()  # a crash: no leave; a and b each suspect it and confirm each other
    assert await eventually(lambda: recorded.first(EventKind.DEAD, "c") is not None, 30)
    assert await b.leave(2.0)
    assert await eventually(lambda: recorded.first(EventKind.LEFT, "b") is not None, 5)
    assert recorded.first(EventKind.DEAD, "b") is None and recorded.first(EventKind.SUSPECT, "b") is None


async def test_thread_runner_delivers_events_in_the_callers_loop(nodes: list[GossipNode]) -> None:
    a, _ = await start(nodes, "a")
    seen: list[tuple[EventKind, str, bool]] = []
    loop = asyncio.get_running_loop()

    def listener(event: object) -> None:
        kind = getattr(event, "kind", None)
        if kind is not None:
            seen.append((kind, event.member.name, asyncio.get_running_loop() is loop))  # type: ignore[attr-defined]

    in_node_loop: list[tuple[str, str]] = []

    def early(event: object) -> None:  # the operator's log lines: where membership runs, at once
        kind = getattr(event, "kind", None)
        if kind is not None:
            in_node_loop.append((event.member.name, threading.current_thread().name))  # type: ignore[attr-defined]

    threaded, _ = make_node("threaded", free_port())
    runner = GossipRunner(threaded, "thread", listener, in_node_loop=early)
    await runner.start()
    try:
        joined, _ = await runner.call(lambda: threaded.join([f"127.0.0.1:{a.port}"]))
        assert joined == 1
        assert await eventually(lambda: (EventKind.JOIN, "a", True) in seen, 10)
        assert ("a", "hookmq-gossip") in in_node_loop
        assert names(threaded) == {"a", "threaded"}  # the snapshot is readable from here
        await runner.run(lambda: threaded.broadcast(b"from the thread"))
    finally:
        assert await runner.stop(2.0)
    assert runner._thread is None


# ---------------------------------------------------------------------- bad input (issue test 6)


def _udp(port: int, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for packet in packets:
            sender.sendto(packet, ("127.0.0.1", port))


async def _still_answers(node: GossipNode) -> bool:
    """The node still acks a well-formed ping (it did not crash or wedge)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as prober:
        prober.bind(("127.0.0.1", 0))
        prober.setblocking(False)
        prober.sendto(node.codec.seal(encode_message(Ping(99, node.name)), crc=False), ("127.0.0.1", node.port))
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(prober, 65536), 2.0)
        except TimeoutError:
            return False
    return any(getattr(m, "seq_no", None) == 99 for m in node.codec.open(data).messages)


async def test_bad_packets_are_dropped_counted_and_add_nobody(nodes: list[GossipNode], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hookmq.plugins.gossip")
    node, _ = await start(nodes, "target", key=KEY, label="prod")
    good = WireCodec(keyring=Keyring([KEY]), label="prod")
    alive = encode_message(Alive(1, "intruder", bytes([127, 0, 0, 1]), 9, b"", vsn_bytes()))
    sealed = good.seal(alive, crc=True)
    bad = {
        "garbage": os.urandom(300),
        "truncated": sealed[: len(sealed) // 2],
        "oversized": b"\xf4\x04prod" + os.urandom(60_000),
        "wrong label": WireCodec(keyring=Keyring([KEY]), label="test").seal(alive, crc=True),
        "no label": WireCodec(keyring=Keyring([KEY])).seal(alive, crc=True),
        "wrong key": WireCodec(keyring=Keyring([os.urandom(16)]), label="prod").seal(alive, crc=True),
        "plaintext": WireCodec(label="prod").seal(alive, crc=True),
        "flipped bit": sealed[:-1] + bytes([sealed[-1] ^ 1]),
    }
    for _ in range(30):  # a flood: the debug log is rate-limited, the counters are exact
        _udp(node.port, *bad.values())
    assert await eventually(lambda: node.stats["packets_received"] >= 30 * len(bad), 10)
    assert names(node) == {"target"}
    machine = node.machine
    assert machine is not None and machine.stats["packets_dropped"] == 30 * len(bad)
    assert machine.stats["bad_label"] >= 60 and machine.stats["bad_decrypt"] >= 90
    assert node.limiter.suppressed_total > 0
    dropped_lines = [r for r in caplog.records if "dropped packet" in r.getMessage()]
    assert 0 < len(dropped_lines) < 30 * len(bad)
    assert await _still_answers(node)


async def test_a_replayed_packet_does_not_bring_back_a_node_that_left(nodes: list[GossipNode]) -> None:
    node, recorded = await start(nodes, "target")
    codec = WireCodec()
    join = codec.seal(encode_message(Alive(1, "ghost", bytes([127, 0, 0, 1]), 9, b"", vsn_bytes())), crc=False)
    _udp(node.port, join)
    assert await eventually(lambda: "ghost" in names(node), 5)
    _udp(node.port, codec.seal(encode_message(Dead(1, "ghost", "ghost")), crc=False))
    assert await eventually(lambda: "ghost" not in names(node), 5)
    _udp(node.port, join, join, join)  # the old announcement, replayed
    await eventually(lambda: False, 0.5)
    assert "ghost" not in names(node)
    assert [k for _, k, n, _ in recorded.events if n == "ghost"] == [EventKind.JOIN, EventKind.LEFT]


async def _stream(port: int, data: bytes, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = b""
    if read:
        try:
            answer = await asyncio.wait_for(reader.read(65536), 3.0)
        except TimeoutError:
            answer = b"(timeout)"
    writer.close()
    return answer


async def test_bad_streams_are_dropped_and_add_nobody(nodes: list[GossipNode]) -> None:
    node, _ = await start(nodes, "target", config=profile("local", tcp_timeout=0.5))
    valid = encode_push_pull([], b"", join=True)
    cases = [
        os.urandom(500),  # garbage
        seal_stream(WireCodec(), valid, labelled=True)[:8],  # truncated, then closed
        b"\x0a\xff\xff\xff\xff",  # encrypted, claiming 4 GiB, at a node without a key
        b"\xf4\x05other" + valid,  # a label we do not use
        b"\x06\x83\xa4Join\xc3\xa5Nodes\xcf\x7f\xff\xff\xff\xff\xff\xff\xff\xacUserStateLen\x00",  # absurd node count
    ]
    for data in cases:
        await _stream(node.port, data)
    answer = await _stream(node.port, b"\x06")  # a slow client that never finishes
    assert answer in (b"", b"(timeout)")
    assert await eventually(lambda: node.stats["streams_dropped"] + node.stats["streams_failed"] >= len(cases), 5)
    assert names(node) == {"target"}
    assert await _still_answers(node)


async def test_wrongly_keyed_and_labelled_streams_are_dropped_and_add_nobody(nodes: list[GossipNode]) -> None:
    node, _ = await start(nodes, "target", key=KEY, label="prod", config=profile("local", tcp_timeout=0.5))
    intruder = PushNodeState("intruder", bytes([127, 0, 0, 1]), 9, b"", 1, 0, vsn_bytes())
    push_pull = encode_push_pull([intruder], b"", join=True)
    cases = {
        "wrong key": seal_stream(WireCodec(keyring=Keyring([os.urandom(16)]), label="prod"), push_pull, labelled=True),
        "no key": seal_stream(WireCodec(label="prod"), push_pull, labelled=True),
        "wrong label": seal_stream(WireCodec(keyring=Keyring([KEY]), label="test"), push_pull, labelled=True),
        "no label": seal_stream(WireCodec(keyring=Keyring([KEY])), push_pull, labelled=True),
    }
    for data in cases.values():
        await _stream(node.port, data)
    assert await eventually(lambda: node.stats["streams_dropped"] >= len(cases), 5)
    assert node.stats["bad_label"] == 2 and node.stats["bad_decrypt"] == 2
    assert names(node) == {"target"}
    assert await _still_answers(node)


async def test_too_many_concurrent_streams_are_refused(nodes: list[GossipNode]) -> None:
    node, _ = await start(nodes, "target", config=profile("local", tcp_timeout=3.0))
    idle = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(140)]
    assert await eventually(lambda: node.stats["streams_refused"] >= 12, 5)
    for _, writer in idle:
        writer.close()
    assert await _still_answers(node)
