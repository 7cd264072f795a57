"""Links between real brokers in one process, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
import tracemalloc

import pytest
from link_helpers import (
    KEY,
    TEST_KINDS,
    RawDialer,
    Recorder,
    data_frames,
    eventually,
    gossip_port,
    links,
    pair,
    pause_dialing,
    resume_dialing,
    settled,
)

from hookmq.engine import Broker
from hookmq.plugins.gossip import cluster_of
from hookmq.plugins.gossip.api import ClusterEvent
from hookmq.plugins.gossip.link import LinkError, LinkOverloaded, Links, PeerGone, RemoteFailure
from hookmq.plugins.gossip.link.frames import encode_data
from hookmq.plugins.gossip.membership import EventKind


def current_protocol(broker: Broker, peer: str) -> object:
    return links(broker)._peers[peer].protocol


@pytest.mark.parametrize("runner", ["thread", "loop"])
async def test_frames_flow_both_ways(started: list[Broker], runner: str) -> None:
    a, b = await pair(started, runner=runner)
    at_a, at_b = Recorder(), Recorder()
    links(a).on_receive(at_a)
    links(b).on_receive(at_b)
    sent_before, received_before = data_frames(a, "node-b", "frames_sent"), data_frames(a, "node-b", "frames_received")
    await asyncio.wait_for(links(a).send("node-b", 1, b"a to b", reliable=True), 5)  # type: ignore[arg-type]
    await asyncio.wait_for(links(b).send("node-a", 2, b"b to a", reliable=True), 5)  # type: ignore[arg-type]
    assert links(a).send("node-b", 3, b"unreliable a to b", reliable=False) is None
    links(b).send("node-a", 3, b"unreliable b to a", reliable=False)
    await eventually(lambda: len(at_a.frames) == 2 and len(at_b.frames) == 2)
    assert at_b.frames == [("node-a", 1, b"a to b"), ("node-a", 3, b"unreliable a to b")]
    assert at_a.frames == [("node-b", 2, b"b to a"), ("node-b", 3, b"unreliable b to a")]
    stats = links(a).stats("node-b")
    assert stats["up"] is True and stats["dialer"] is True
    # (at least: cluster routing, when installed, sends its own frames over the same link)
    assert data_frames(a, "node-b", "frames_sent") - sent_before >= 2
    assert data_frames(a, "node-b", "frames_received") - received_before >= 2
    assert links(a).peers() == ["node-b"] and links(b).peers() == ["node-a"]


async def test_the_ack_waits_for_the_receivers_awaitable(started: list[Broker]) -> None:
    a, b = await pair(started)
    handler = Recorder(hold=True)
    links(b).on_receive(handler)
    future = links(a).send("node-b", 1, b"held", reliable=True)
    assert future is not None
    await eventually(lambda: len(handler.held) == 1)
    # The frame was handed over but its handler has not finished: the ack has not been sent.
    await asyncio.sleep(0.3)
    # At least our frame is queued; frames of the layers above (routing, sessions) sent after
    # it wait behind it too, since acknowledgements are in order.
    assert not future.done() and links(a).stats("node-b")["queue_frames"] >= 1
    handler.release()
    await asyncio.wait_for(future, 5)
    assert await eventually(lambda: links(a).stats("node-b")["queue_frames"] == 0)


async def test_a_failing_handler_fails_the_senders_future(started: list[Broker], caplog: pytest.LogCaptureFixture) -> None:
    a, b = await pair(started)
    links(b).on_receive(Recorder(fail_on=b"poison"))
    with pytest.raises(RemoteFailure):
        await asyncio.wait_for(links(a).send("node-b", 1, b"poison", reliable=True), 5)  # type: ignore[arg-type]
    await asyncio.wait_for(links(a).send("node-b", 1, b"fine", reliable=True), 5)  # type: ignore[arg-type]
    assert links(b).totals["handler_errors"] == 1 and links(b).is_up("node-a")


async def test_ten_thousand_reliable_frames_arrive_complete_and_in_order(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    began = time.perf_counter()
    futures = [links(a).send("node-b", 1, i.to_bytes(4, "big") + bytes(100), reliable=True) for i in range(10_000)]
    await asyncio.wait_for(asyncio.gather(*futures), 60)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - began
    assert [int.from_bytes(body[:4], "big") for body in handler.bodies()] == list(range(10_000))
    stats = links(a).stats("node-b")
    print(f"\n10 000 reliable 104-byte frames, encrypted: {elapsed:.2f} s, {stats['bytes_sent']} bytes sent, "
          f"{links(b).stats('node-a')['acks_sent']} acks")
    assert stats["resent"] == 0
    assert await eventually(lambda: links(a).stats("node-b")["queue_frames"] == 0)  # routing's frames too


async def test_one_mebibyte_bodies(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    bodies = [os.urandom(1 << 20) for _ in range(3)]
    await asyncio.wait_for(asyncio.gather(*[links(a).send("node-b", 1, body, reliable=True) for body in bodies]), 30)  # type: ignore[arg-type]
    assert handler.bodies() == bodies
    largest = links(a).max_body("node-b")
    assert largest >= (1 << 20) + 200_000  # the default max_packet_size plus routing's envelope
    await asyncio.wait_for(links(a).send("node-b", 1, bytes(largest), reliable=True), 30)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        links(a).send("node-b", 1, bytes(largest + 1), reliable=True)


@pytest.mark.parametrize("side", ["dialer", "acceptor"])
async def test_a_connection_killed_mid_stream_resends_drops_duplicates_and_keeps_order(started: list[Broker], side: str) -> None:
    a, b = await pair(started, key=KEY)
    handler = Recorder(hold=True)
    links(b).on_receive(handler)
    first = [links(a).send("node-b", 1, i.to_bytes(4, "big"), reliable=True) for i in range(100)]
    await eventually(lambda: len(handler.frames) == 100)
    killer = a if side == "dialer" else b
    current_protocol(killer, "node-b" if killer is a else "node-a").abort()  # type: ignore[attr-defined]
    # A stream in flight while the connection is re-dialled and the first hundred are resent.
    second = [links(a).send("node-b", 1, i.to_bytes(4, "big"), reliable=True) for i in range(100, 2000)]
    await eventually(lambda: data_frames(b, "node-a", "duplicates_dropped") >= 100 and links(a).is_up("node-b"), 20)
    handler.hold = False
    handler.release()
    await asyncio.wait_for(asyncio.gather(*first, *second), 30)  # type: ignore[arg-type]
    assert [int.from_bytes(body, "big") for body in handler.bodies()] == list(range(2000))
    assert links(a).stats("node-b")["connects"] == 2 and links(b).stats("node-a")["connects"] == 2


async def test_a_stuck_peer_does_not_grow_memory_beyond_the_bound(started: list[Broker]) -> None:
    a, b = await pair(started)
    handler = Recorder()
    links(b).on_receive(handler)
    await settled(a, "node-b")
    stuck = current_protocol(b, "node-a")
    stuck.transport.pause_reading()  # type: ignore[attr-defined]
    limits = links(a).limits
    body = bytes(65_536)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        offered = 0
        for _ in range(40):  # 40 rounds of 64 x 64 KiB = 160 MiB offered to a peer that reads nothing
            for _ in range(64):
                links(a).send("node-b", 1, body, reliable=False)
                offered += len(body)
            await asyncio.sleep(0.01)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    stats = links(a).stats("node-b")
    print(f"\nstuck peer: {offered >> 20} MiB of unreliable frames offered, {stats['frames_sent']} framed, "
          f"{stats['unreliable_dropped']} dropped, memory grew {grown / 1048576:.1f} MiB (send buffer {limits.send_buffer >> 20} MiB)")
    assert stats["unreliable_dropped"] > 0
    assert grown < 2 * limits.send_buffer
    # Reliable frames are held, not dropped, up to their bound; then refused.
    futures = []
    for _ in range(limits.reliable_bytes // len(body) + 10):
        future = links(a).send("node-b", 2, body, reliable=True)
        assert future is not None
        futures.append(future)
    await asyncio.sleep(0)
    refused = [f for f in futures if f.done() and isinstance(f.exception(), LinkOverloaded)]
    held = [f for f in futures if not f.done()]
    assert links(a).stats("node-b")["queue_bytes"] <= limits.reliable_bytes
    assert refused and held and len(refused) + len(held) == len(futures)
    stuck.transport.resume_reading()  # type: ignore[attr-defined]
    await asyncio.wait_for(asyncio.gather(*held), 60)
    assert sum(1 for _, kind, _ in handler.frames if kind == 2) == len(held)


async def test_a_node_that_leaves_hands_back_what_it_never_acknowledged(started: list[Broker]) -> None:
    a, b = await pair(started)
    links(b).on_receive(Recorder(hold=True))
    handed: list[tuple[str, list[tuple[int, bytes]]]] = []
    downs: list[str] = []
    links(a).on_unacked(lambda node, frames: handed.append((node, frames)))
    links(a).on_down(downs.append)
    futures = [links(a).send("node-b", 1 + i, bytes([i]), reliable=True) for i in range(5)]
    await eventually(lambda: links(b).stats("node-a")["in_progress"] == 5)
    await b.stop()
    await eventually(lambda: bool(handed), 10)
    assert [(node, [frame for frame in frames if frame[0] in TEST_KINDS]) for node, frames in handed] == [
        ("node-b", [(1 + i, bytes([i])) for i in range(5)])]
    assert downs == ["node-b"] and links(a).peers() == []
    for future in futures:
        assert future is not None and isinstance(future.exception(), PeerGone)
    gone = links(a).send("node-b", 1, b"late", reliable=True)
    assert gone is not None and isinstance(gone.exception(), PeerGone)


async def test_a_wrong_key_or_no_key_cannot_open_a_link(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    port = gossip_port(b)
    # A wrong key fails the acceptor's check of the proof; a dialer without a key sees the
    # acceptor asks for one and gives up (the acceptor counts a handshake that never finished).
    for keys, reason in (([os.urandom(32)], "closed_auth"), (None, "handshake_incomplete")):
        raw = await RawDialer.open(port, "node-a", "node-b", keys)
        with pytest.raises((LinkError, EOFError)):
            await raw.handshake()
        raw.close()
        await eventually(lambda reason=reason: links(b).totals[reason] >= 1)  # type: ignore[misc]
    assert links(a).is_up("node-b") and links(b).is_up("node-a")  # the real link was never touched
    await asyncio.wait_for(links(a).send("node-b", 1, b"still fine", reliable=True), 5)  # type: ignore[arg-type]


async def test_an_unknown_node_is_refused(started: list[Broker]) -> None:
    _a, b = await pair(started, key=KEY)
    raw = await RawDialer.open(gossip_port(b), "node-0", "node-b", [base64.b64decode(KEY)])
    with pytest.raises(LinkError) as error:
        await raw.handshake()
    raw.close()
    assert error.value.reason == "refused" and "unknown-node" in str(error.value)
    await eventually(lambda: links(b).totals["closed_unknown-node"] == 1)  # counted as its close is heard


async def test_garbage_after_the_preamble_closes_that_connection_only(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    for garbage in (b"HQL\x01" + os.urandom(64), b"HQL\x01" + b"\xff\xff\xff\xff", b"HQL\x02", b"H" + os.urandom(100)):
        reader, writer = await asyncio.open_connection("127.0.0.1", gossip_port(b))
        writer.write(garbage)
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionError):
                while await reader.read(65_536):
                    pass
        writer.close()
    await eventually(lambda: sum(links(b).totals[k] for k in ("closed_malformed", "closed_oversized", "closed_preamble")) == 4)
    assert links(a).is_up("node-b")
    await asyncio.wait_for(links(a).send("node-b", 1, b"still fine", reliable=True), 5)  # type: ignore[arg-type]


async def test_a_replayed_frame_closes_the_link_and_the_real_one_comes_back(started: list[Broker], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hookmq.plugins.gossip.link")
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    # Someone with the key poses as node-a: its link replaces the real one (the dialer knows best)...
    pause_dialing(a, "node-b")
    raw = await RawDialer.open(gossip_port(b), "node-a", "node-b", [base64.b64decode(KEY)])
    await raw.handshake()
    raw.connection.write(encode_data(1, 1, b"once"))
    frame = raw.flush()
    await eventually(lambda: handler.bodies() == [b"once"])
    raw.writer.write(frame)  # ...and the same bytes again fail authentication: the link closes
    assert await raw.closed_by_peer()
    raw.close()
    # The socket may close (uvloop closes the handle first) an iteration before the link hears of it.
    await eventually(lambda: links(b).totals["closed_auth"] == 1)
    assert handler.bodies() == [b"once"]
    assert any("failed authentication" in record.getMessage() for record in caplog.records)
    resume_dialing(a)
    await eventually(lambda: links(a).is_up("node-b") and links(b).is_up("node-a"), 20)
    await asyncio.wait_for(links(a).send("node-b", 1, b"after", reliable=True), 10)  # type: ignore[arg-type]
    assert handler.bodies()[-1] == b"after"


async def test_a_full_outbox_says_so_and_wakes_waiting_senders_when_acknowledgements_free_it(started: list[Broker]) -> None:
    a, b = await pair(started)
    handler = Recorder()
    links(b).on_receive(handler)
    await settled(a, "node-b")
    stuck = current_protocol(b, "node-a")
    stuck.transport.pause_reading()  # type: ignore[attr-defined]
    body = bytes(65_536)
    futures: list[asyncio.Future[None]] = []
    assert links(a).has_room("node-b", len(body))
    # Routing may have queued a frame of its own since: the room is what is left beside it.
    held = links(a).stats("node-b")["queue_bytes"]
    assert isinstance(held, int)
    while links(a).has_room("node-b", len(body)):  # what routing does before forwarding a QoS >= 1 message
        future = links(a).send("node-b", 1, body, reliable=True)
        assert future is not None
        futures.append(future)
    assert len(futures) == (links(a).limits.reliable_bytes - held) // len(body)
    refused = links(a).send("node-b", 1, body, reliable=True)  # has_room was right: send refuses
    assert refused is not None and isinstance(refused.exception(), LinkOverloaded)
    waiters = [links(a).wait_for_room("node-b", len(body)) for _ in range(3)]
    await asyncio.sleep(0.3)
    assert not any(waiter.done() for waiter in waiters)
    assert links(a).stats("node-b")["room_waiting"] == 3
    stuck.transport.resume_reading()  # type: ignore[attr-defined]
    assert await asyncio.wait_for(asyncio.gather(*waiters), 30) == [True, True, True]
    assert links(a).has_room("node-b", len(body)) and links(a).stats("node-b")["room_waits"] == 3
    await asyncio.wait_for(asyncio.gather(*futures), 60)
    assert len(handler.frames) == len(futures)
    assert links(a).wait_for_room("node-b").result() is True  # room now: told at once
    assert links(a).wait_for_room("node-x").result() is False  # no such peer


async def test_senders_waiting_for_room_are_told_when_the_peer_leaves(started: list[Broker]) -> None:
    a, b = await pair(started)
    links(b).on_receive(Recorder(hold=True))  # b takes frames and never acknowledges them
    body = bytes(65_536)
    while links(a).has_room("node-b", len(body)):
        links(a).send("node-b", 1, body, reliable=True)
    waiter = links(a).wait_for_room("node-b", len(body))
    await b.stop()
    assert await asyncio.wait_for(waiter, 10) is False
    assert not links(a).has_room("node-b")


async def test_frames_sent_in_one_loop_iteration_go_out_in_one_write(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    await settled(a, "node-b")  # routing's own frames out of the count
    before = links(a).stats("node-b")
    for i in range(1000):
        links(a).send("node-b", 1, i.to_bytes(4, "big") + bytes(60), reliable=False)
    futures = [links(a).send("node-b", 2, i.to_bytes(4, "big"), reliable=True) for i in range(1000)]
    await asyncio.wait_for(asyncio.gather(*futures), 30)  # type: ignore[arg-type]
    after = links(a).stats("node-b")
    frames, writes = int(after["frames_sent"]) - int(before["frames_sent"]), int(after["writes"]) - int(before["writes"])  # type: ignore[call-overload]
    print(f"\n2000 frames sent in one loop iteration: {writes} socket writes")
    assert frames == 2000 and len(handler.frames) == 2000
    assert writes <= 3  # one batch, and at most a keep-alive ping or an ack on its own
    assert [body[:4] for _, kind, body in handler.frames if kind == 1] == [i.to_bytes(4, "big") for i in range(1000)]


async def test_the_operator_sees_up_down_queue_traffic_and_round_trip_time(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    links(b).on_receive(Recorder())
    await asyncio.wait_for(asyncio.gather(*[links(a).send("node-b", 1, bytes(1000), reliable=True) for _ in range(10)]), 10)  # type: ignore[arg-type]
    await eventually(lambda: links(a).stats("node-b")["rtt"] is not None, 10)  # the first keep-alive ping answered
    at_a, at_b = links(a).all_stats()["node-b"], links(b).all_stats()["node-a"]
    assert list(links(a).all_stats()) == ["node-b"]
    assert at_a["up"] is True and at_a["connects"] == 1 and at_a["disconnects"] == 0
    assert at_a["frames_sent"] == at_b["frames_received"] and int(at_a["frames_sent"]) >= 10  # type: ignore[call-overload]
    assert int(at_a["bytes_sent"]) > 10_000 and int(at_b["bytes_received"]) > 10_000  # type: ignore[call-overload]
    assert await eventually(lambda: links(a).all_stats()["node-b"]["queue_frames"] == 0
                            and links(a).all_stats()["node-b"]["queue_bytes"] == 0)
    rtt = at_a["rtt"]
    assert isinstance(rtt, float) and 0.0 < rtt < 5.0  # timed finer than the loop clock: never 0 on loopback
    current_protocol(a, "node-b").abort()  # type: ignore[attr-defined]
    await eventually(lambda: links(a).stats("node-b")["connects"] == 2 and links(a).is_up("node-b"), 20)
    assert links(a).stats("node-b")["disconnects"] == 1 and links(b).stats("node-a")["disconnects"] == 1


def only_our_membership_events(of: Links) -> None:
    """Stop ``of`` hearing the real membership (which holds its peer alive), so only the events
    the test hands it count."""
    of._unsubscribe()
    of._unsubscribe = lambda: None


async def test_a_peer_declared_dead_while_its_link_hears_from_it_is_held_and_released(started: list[Broker]) -> None:
    """Membership views may differ for a while: node-a declares node-b dead (a stale verdict
    after a heal), node-b saw nothing. The link still hears node-b, so node-a holds it: nothing
    is handed back, frames keep flowing and are acknowledged, and it is kept when node-b is
    alive again."""
    a, b = await pair(started, key=KEY)
    only_our_membership_events(links(a))
    at_b = Recorder()
    links(b).on_receive(at_b)
    handed: list[str] = []
    gone: list[str] = []
    links(a).on_unacked(lambda node, frames: handed.append(node))
    links(a).on_gone(gone.append)
    await asyncio.wait_for(asyncio.gather(*[links(a).send("node-b", 1, bytes([i]), reliable=True) for i in range(5)]), 5)  # type: ignore[arg-type]
    cluster = cluster_of(a)
    assert cluster is not None
    member = cluster.member("node-b")
    assert member is not None
    links(a)._membership(ClusterEvent(EventKind.DEAD, member))  # as if only node-a had declared node-b dead
    assert links(a).held("node-b") and links(a).peers() == ["node-b"] and links(a).is_up("node-b")
    await asyncio.wait_for(links(a).send("node-b", 1, b"while held", reliable=True), 10)  # type: ignore[arg-type]
    await asyncio.sleep(links(a).limits.failure_hold * 1.5)  # pings keep it held past the failure hold
    assert links(a).held("node-b") and handed == [] and gone == []
    links(a)._membership(ClusterEvent(EventKind.JOIN, member))  # and saw it alive again
    assert not links(a).held("node-b") and links(a).totals["holds_released"] == 1
    await asyncio.wait_for(links(a).send("node-b", 1, b"after", reliable=True), 10)  # type: ignore[arg-type]
    assert at_b.bodies() == [bytes([i]) for i in range(5)] + [b"while held", b"after"]
    assert handed == [] and gone == [] and links(a).stats("node-b")["disconnects"] == 0


async def test_a_peer_declared_dead_is_dropped_once_its_link_is_silent_for_the_failure_hold(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY, link_ping_interval=0.3, link_idle_timeout=30.0, link_failure_hold=1.0)
    only_our_membership_events(links(a))
    links(b).on_receive(Recorder(hold=True))  # node-b never acknowledges: the frames stay unacknowledged
    handed: list[tuple[str, int]] = []
    gone: list[str] = []
    links(a).on_unacked(lambda node, frames: handed.append((node, len([f for f in frames if f[0] in TEST_KINDS]))))
    links(a).on_gone(gone.append)
    futures = [links(a).send("node-b", 1 + i, bytes([i]), reliable=True) for i in range(3)]
    await eventually(lambda: links(b).stats("node-a")["in_progress"] == 3)
    await eventually(lambda: links(a).stats("node-b")["in_progress"] == 0)  # nothing of ours resumes reading
    current_protocol(a, "node-b").transport.pause_reading()  # type: ignore[attr-defined]  # node-a hears nothing more
    cluster = cluster_of(a)
    assert cluster is not None
    member = cluster.member("node-b")
    assert member is not None
    links(a)._membership(ClusterEvent(EventKind.DEAD, member))
    assert links(a).held("node-b") and gone == []  # heard less than a second ago
    assert await eventually(lambda: gone == ["node-b"], 10)
    assert handed == [("node-b", 3)] and links(a).peers() == [] and links(a).totals["holds_confirmed"] == 1
    for future in futures:
        assert future is not None and isinstance(future.exception(), PeerGone)


async def test_a_peer_declared_dead_whose_link_is_long_silent_is_dropped_at_once(started: list[Broker]) -> None:
    a, _ = await pair(started, key=KEY, link_failure_hold=0)
    only_our_membership_events(links(a))
    gone: list[str] = []
    links(a).on_gone(gone.append)
    cluster = cluster_of(a)
    assert cluster is not None
    member = cluster.member("node-b")
    assert member is not None
    links(a)._membership(ClusterEvent(EventKind.DEAD, member))  # failure_hold 0: membership's verdict alone decides
    assert gone == ["node-b"] and links(a).peers() == [] and not links(a).held("node-b")


def test_links_come_up_and_carry_frames_on_uvloop() -> None:
    """The hookmq command runs on uvloop, whose transports are no asyncio.Transport subclass."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> list[bytes]:
        brokers: list[Broker] = []
        try:
            a, b = await pair(brokers, key=KEY)
            handler = Recorder()
            links(b).on_receive(handler)
            await asyncio.wait_for(links(a).send("node-b", 1, b"on uvloop", reliable=True), 10)  # type: ignore[arg-type]
            return handler.bodies()
        finally:
            for broker in reversed(brokers):
                with contextlib.suppress(Exception):
                    await broker.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.get_loop().__class__.__module__.startswith("uvloop")
        assert runner.run(scenario()) == [b"on uvloop"]


async def test_the_cluster_table_sets_the_link_bounds(started: list[Broker]) -> None:
    a, _ = await pair(started, link_send_buffer=1 << 20, link_queue_bytes=1 << 21, link_queue_frames=100,
                      link_receive_window=64, link_ping_interval=0.5, link_idle_timeout=3.0)
    limits = links(a).limits
    assert (limits.send_buffer, limits.reliable_bytes, limits.reliable_frames, limits.receive_window,
            limits.ping_interval, limits.idle_timeout) == (1 << 20, 1 << 21, 100, 64, 0.5, 3.0)
    for _ in range(100):
        links(a).send("node-b", 1, b"x", reliable=True)
    assert not links(a).has_room("node-b")  # the configured frame bound


def test_the_cluster_table_defaults_are_the_link_defaults() -> None:
    from hookmq.config import ClusterSettings
    from hookmq.plugins.gossip.link import LinkLimits

    settings, limits = ClusterSettings(), LinkLimits()
    assert (settings.link_send_buffer, settings.link_queue_bytes, settings.link_queue_frames, settings.link_receive_window,
            settings.link_ping_interval, settings.link_idle_timeout) == (
        limits.send_buffer, limits.reliable_bytes, limits.reliable_frames, limits.receive_window, limits.ping_interval,
        limits.idle_timeout)
