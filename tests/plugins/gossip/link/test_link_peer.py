"""One peer over successive connections without an event loop: order, resending, the send-buffer bound, time."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.link.connection import LinkConnection
from hookmq.plugins.gossip.link.errors import LinkError
from hookmq.plugins.gossip.link.handshake import LocalIdentity
from hookmq.plugins.gossip.link.peer import LinkLimits, PeerLink
from hookmq.plugins.gossip.link.sequencing import Overloaded
from hookmq.plugins.gossip.wire import Keyring

KEY = os.urandom(32)
LIMITS = LinkLimits(send_buffer=4096, reliable_bytes=1 << 20, reliable_frames=1000)


class Pair:
    """node-a's PeerLink for node-b and node-b's for node-a, over connections made on demand."""

    def __init__(self, limits: LinkLimits = LIMITS) -> None:
        self.ids = {name: LocalIdentity(name, os.urandom(8), Keyring([KEY]), "", limits.max_frame) for name in ("node-a", "node-b")}
        self.a, self.b = PeerLink("node-b", limits), PeerLink("node-a", limits)
        self.received: dict[str, list[tuple[int, int | None, bytes]]] = {"node-a": [], "node-b": []}
        self.now = 0.0

    def connect(self) -> None:
        self.a.attach(LinkConnection("dialer", self.ids["node-a"], base=lambda _: self.a.outbox.base, expected_peer="node-b",
                                     stream=lambda _: self.a.stream), self.now)
        self.b.attach(LinkConnection("acceptor", self.ids["node-b"], base=lambda _: self.b.outbox.base,
                                     admit=lambda _: None, stream=lambda _: self.b.stream), self.now)

    def restart_b(self) -> None:
        self.ids["node-b"] = LocalIdentity("node-b", os.urandom(8), Keyring([KEY]), "", LIMITS.max_frame)
        self.b = PeerLink("node-a", LIMITS)

    def pump(self, finish: bool = True, limit: int | None = None) -> None:
        """Move bytes (at most ``limit`` per direction per round) until quiet; handlers finish at once."""
        for _ in range(1000):
            moved = False
            for sender, receiver, name in ((self.a, self.b, "node-b"), (self.b, self.a, "node-a")):
                data = b"".join(sender.take_output())
                if not data:
                    continue
                moved = True
                result = receiver.receive(data, self.now)
                for frame in result.frames:
                    self.received[name].append((frame.kind, frame.seq, frame.body))
                    if finish and frame.seq is not None:
                        receiver.finished(receiver.peer_boot, frame.seq, True)
            if not moved:
                return

    def break_link(self) -> None:
        self.a.detach()
        self.b.detach()


def test_frames_flow_both_ways_and_reliable_ones_are_acknowledged() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    assert pair.a.up and pair.b.up
    seqs = [pair.a.send_reliable(1, f"r{i}".encode()) for i in range(3)]
    assert pair.b.send_unreliable(2, b"u") is True
    pair.pump()
    assert [body for _, _, body in pair.received["node-b"]] == [b"r0", b"r1", b"r2"]
    assert pair.received["node-a"] == [(2, None, b"u")]
    assert seqs == [1, 2, 3] and len(pair.a.outbox) == 0


def test_a_broken_connection_resends_what_was_not_acknowledged_once() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    for i in range(10):
        pair.a.send_reliable(1, bytes([i]))
    pair.pump(finish=False)  # all taken, none finished: nothing acknowledged
    assert len(pair.a.outbox) == 10
    for seq in range(1, 6):
        pair.b.finished(pair.b.peer_boot, seq, True)
    pair.break_link()
    pair.connect()
    pair.pump()
    bodies = [body[0] for _, _, body in pair.received["node-b"]]
    assert bodies == list(range(10))  # every frame once, in order
    # b repeats its ACK (1-5) with the handshake, so a resends 6-10 only, and b drops those copies.
    assert pair.b.stats["duplicates_dropped"] == 5 and pair.a.outbox.resent == 10
    for seq in range(6, 11):
        pair.b.finished(pair.b.peer_boot, seq, True)
    pair.pump()
    assert len(pair.a.outbox) == 0


def test_a_restarted_receiver_gets_every_unacknowledged_frame_again() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    for i in range(4):
        pair.a.send_reliable(1, bytes([i]))
    pair.pump(finish=False)
    pair.break_link()
    pair.restart_b()
    pair.connect()
    pair.pump()
    assert [body[0] for _, _, body in pair.received["node-b"]] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len(pair.a.outbox) == 0


def test_the_send_buffer_bounds_what_is_framed_for_a_peer_that_does_not_read() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    for _ in range(100):
        pair.a.send_reliable(1, bytes(500))
    framed = sum(len(chunk) for chunk in pair.a.take_output())
    assert framed <= LIMITS.send_buffer + 600
    pair.a.set_transport_buffered(framed)  # the socket holds it all: the peer is not reading
    assert pair.a.send_unreliable(1, b"x") is False
    assert pair.a.stats["unreliable_dropped"] == 1
    assert b"".join(pair.a.take_output()) == b""
    assert pair.a.outbox.unwritten == 100 - framed // 500


def test_an_unreliable_frame_never_overtakes_a_waiting_reliable_one() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    pair.a.set_transport_buffered(LIMITS.send_buffer)
    pair.a.send_reliable(1, b"reliable")
    pair.a.set_transport_buffered(0)
    assert pair.a.send_unreliable(1, b"unreliable") is False


def test_the_reliable_bound_refuses_more() -> None:
    pair = Pair(LinkLimits(reliable_bytes=1000, reliable_frames=10))
    for _ in range(10):
        pair.a.send_reliable(1, b"x")
    with pytest.raises(Overloaded):
        pair.a.send_reliable(1, b"x")


def test_a_body_larger_than_a_frame_is_refused() -> None:
    pair = Pair()
    with pytest.raises(ValueError):
        pair.a.send_reliable(1, bytes(LIMITS.max_frame))


def test_keepalive_pings_measure_rtt_and_silence_closes() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    pair.now = LIMITS.ping_interval
    pair.a.tick(pair.now)
    pair.b.tick(pair.now)
    pair.pump()
    assert pair.a.rtt == 0.0
    with pytest.raises(LinkError) as error:
        pair.a.tick(pair.now + LIMITS.idle_timeout + 1)
    assert error.value.reason == "timeout"


def test_the_round_trip_is_timed_by_the_rtt_clock_when_one_is_given() -> None:
    # The scheduling clock (``now``) stands still, as uvloop's does within a millisecond; the
    # round trip still reads 40 microseconds from the finer clock.
    precise = [10.0]
    pair = Pair()
    pair.a = PeerLink("node-b", LIMITS, rtt_clock=lambda: precise[0])
    pair.connect()
    pair.pump()
    pair.now = LIMITS.ping_interval
    pair.a.tick(pair.now)
    pong = pair.b.receive(b"".join(pair.a.take_output()), pair.now)
    assert pong.frames == []
    precise[0] += 40e-6
    pair.a.receive(b"".join(pair.b.take_output()), pair.now)
    assert pair.a.rtt == pytest.approx(40e-6)
    # An answer that would make the round trip negative (another clock's time) is ignored.
    precise[0] = 0.0
    pair.now = 2 * LIMITS.ping_interval
    pair.a.tick(pair.now)
    pair.b.receive(b"".join(pair.a.take_output()), pair.now)
    precise[0] = -1.0
    pair.a.receive(b"".join(pair.b.take_output()), pair.now)
    assert pair.a.rtt == pytest.approx(40e-6)


def test_a_failed_handler_is_reported_to_the_sender() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    seq = pair.a.send_reliable(1, b"bad")
    pair.pump(finish=False)
    pair.b.finished(pair.b.peer_boot, seq, False)
    data = b"".join(pair.b.take_output())
    result = pair.a.receive(data, 0.0)
    assert result.failed == [seq] and result.acked == [seq]


def test_statistics_count_frames_and_bytes_each_way_batches_disconnects_and_rtt() -> None:
    pair = Pair()
    pair.connect()
    pair.pump()
    writes_before = pair.a.stats["writes"]
    for i in range(50):
        pair.a.send_reliable(1, bytes([i]) * 20)
    batch = pair.a.take_output()  # fifty frames, one write (the transport joins the chunks)
    assert pair.a.stats["writes"] == writes_before + 1
    for frame in pair.b.receive(b"".join(batch), pair.now).frames:
        assert frame.seq is not None
        pair.b.finished(pair.b.peer_boot, frame.seq, True)
    pair.pump()
    a, b = pair.a.snapshot(), pair.b.snapshot()
    assert a["frames_sent"] == b["frames_received"] == 50
    assert a["bytes_sent"] == b["bytes_received"] and b["bytes_sent"] == a["bytes_received"]
    assert a["queue_frames"] == 0 and b["acks_sent"] >= 1
    # Round-trip time: a pings at 2.0, b answers, the answer reaches a at 2.25.
    pair.now = LIMITS.ping_interval
    pair.a.tick(pair.now)
    pong = pair.b.receive(b"".join(pair.a.take_output()), pair.now)
    assert pong.frames == []
    pair.a.receive(b"".join(pair.b.take_output()), pair.now + 0.25)
    assert pair.a.snapshot()["rtt"] == pytest.approx(0.25)
    assert (a["up"], a["connects"], a["disconnects"]) == (True, 1, 0)
    pair.break_link()
    pair.break_link()  # a second detach of a connection already gone is not another disconnect
    assert (pair.a.snapshot()["up"], pair.a.snapshot()["disconnects"], pair.b.snapshot()["disconnects"]) == (False, 1, 1)


@pytest.mark.parametrize("side", ["a", "b"])
def test_a_side_that_dropped_the_peer_starts_a_new_stream_the_other_side_follows(side: str) -> None:
    """One side declared the other dead (and handed back its frames), the other did not: the new
    PeerLink numbers from 1 again under a new stream id, and nothing is taken for a duplicate."""
    pair = Pair()
    pair.connect()
    pair.pump()
    for i in range(5):
        pair.a.send_reliable(1, bytes([i]))
        pair.b.send_reliable(1, bytes([100 + i]))
    pair.pump()
    pair.break_link()
    if side == "a":
        pair.a = PeerLink("node-b", LIMITS)
    else:
        pair.b = PeerLink("node-a", LIMITS)
    pair.connect()
    pair.pump()
    for i in range(5, 8):
        pair.a.send_reliable(1, bytes([i]))
        pair.b.send_reliable(1, bytes([100 + i]))
    pair.pump()
    assert [body[0] for _, _, body in pair.received["node-b"]] == list(range(8))
    assert [body[0] for _, _, body in pair.received["node-a"]] == list(range(100, 108))
    assert len(pair.a.outbox) == 0 and len(pair.b.outbox) == 0


class _Run:
    """A Pair driven by hypothesis: node-a sends, node-b's handlers finish when told to."""

    def __init__(self) -> None:
        self.pair = Pair()
        self.sent = 0
        self.unfinished: list[int] = []
        self.bodies: list[int] = []

    def record(self, frames: list[tuple[int, int | None, bytes]]) -> None:
        for _, seq, body in frames:
            if seq is not None:
                self.bodies.append(int.from_bytes(body, "big"))
                self.unfinished.append(seq)

    def deliver(self, finish: bool) -> None:
        before = len(self.pair.received["node-b"])
        self.pair.pump(finish=finish)
        new = self.pair.received["node-b"][before:]
        if finish:
            self.bodies += [int.from_bytes(body, "big") for _, seq, body in new if seq is not None]
        else:
            self.record(new)

    def cut(self, keep: int) -> None:
        """a's pending bytes reach b only in part, then the connection is gone both ways."""
        data = b"".join(self.pair.a.take_output())
        result = self.pair.b.receive(data[:keep], self.pair.now)
        self.record([(frame.kind, frame.seq, frame.body) for frame in result.frames])
        self.pair.break_link()
        self.pair.connect()

    def finish(self, count: int) -> None:
        for seq in self.unfinished[:count]:
            self.pair.b.finished(self.pair.b.peer_boot, seq, True)
        del self.unfinished[:count]


OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("send"), st.integers(1, 20)),
    st.tuples(st.just("unreliable"), st.just(0)),
    st.tuples(st.just("pump"), st.just(0)),
    st.tuples(st.just("pump-unfinished"), st.just(0)),
    st.tuples(st.just("finish"), st.integers(0, 30)),
    st.tuples(st.just("cut"), st.integers(0, 3000)),
    st.tuples(st.just("reconnect"), st.just(0)),
), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_any_sequence_of_sends_breaks_and_late_handlers_delivers_each_reliable_frame_once_in_order(
        operations: list[tuple[str, int]]) -> None:
    run = _Run()
    run.pair.connect()
    for operation, value in operations:
        if operation == "send":
            for _ in range(value):
                run.pair.a.send_reliable(1, run.sent.to_bytes(4, "big"))
                run.sent += 1
        elif operation == "unreliable":
            run.pair.a.send_unreliable(2, b"u")
        elif operation == "pump":
            run.deliver(finish=True)
        elif operation == "pump-unfinished":
            run.deliver(finish=False)
        elif operation == "finish":
            run.finish(value)
        elif operation == "cut":
            run.cut(value)
        else:
            run.pair.break_link()
            run.pair.connect()
    run.finish(len(run.unfinished))
    run.deliver(finish=True)
    run.finish(len(run.unfinished))
    run.deliver(finish=True)
    assert run.bodies == list(range(run.sent))  # every reliable frame once, in order, whatever broke
    assert len(run.pair.a.outbox) == 0  # and all of them acknowledged
