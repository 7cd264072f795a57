"""The membership state machine driven by hand, one rule of memberlist at a time."""

from __future__ import annotations

import itertools

import pytest
from gossip_machine_helpers import Harness, messages_of, packets, peer_alive, streams

from hookmq.plugins.gossip.membership import (
    EventKind,
    LeaveDone,
    MemberEvent,
    NodeState,
    Notice,
    StreamPurpose,
    UserMessage,
    profile,
)
from hookmq.plugins.gossip.wire import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Nack,
    Ping,
    PushNodeState,
    PushPull,
    StreamDecoder,
    Suspect,
    UserStream,
    vsn_bytes,
)


def events(outputs: list[object]) -> list[tuple[EventKind, str]]:
    return [(o.kind, o.member.name) for o in outputs if isinstance(o, MemberEvent)]


def test_start_announces_ourselves() -> None:
    harness = Harness()
    assert events(harness.outputs) == [(EventKind.JOIN, "me")]
    member = harness.machine.local_member
    assert (member.address, member.port, member.incarnation, member.protocol) == ("10.0.0.1", 7946, 1, (1, 5, 2))


def test_ping_is_answered_where_the_source_fields_say_with_piggy_backed_gossip() -> None:
    harness = Harness()
    out = harness.receive(Ping(42, "me", bytes([10, 0, 0, 7]), 9000, "p7"))
    acks = messages_of(out, Ack)
    assert acks == [(("10.0.0.7", 9000), Ack(42))]
    # Our own alive is still queued for gossip, so it rides along in the same packet.
    assert messages_of(out, Alive)[0][1].node == "me"  # type: ignore[attr-defined]


def test_ping_for_another_name_is_not_answered() -> None:
    harness = Harness()
    assert messages_of(harness.receive(Ping(1, "someone-else")), Ack) == []


def test_alive_adds_a_member_once_and_meta_changes_are_updates() -> None:
    harness = Harness()
    assert events(harness.receive(peer_alive("p1", 2, meta=b"a"))) == [(EventKind.JOIN, "p1")]
    assert events(harness.receive(peer_alive("p1", 2, meta=b"b"))) == []  # same incarnation: stale
    assert events(harness.receive(peer_alive("p1", 2, incarnation=2, meta=b"b"))) == [(EventKind.UPDATE, "p1")]
    assert {m.name for m in harness.machine.members()} == {"me", "p1"}


def test_alive_without_six_version_bytes_is_ignored() -> None:
    harness = Harness()
    harness.receive(Alive(1, "p1", bytes([10, 0, 0, 2]), 7946, b"", b"\x01\x05\x02"))
    assert harness.machine.member("p1") is None


def test_conflicting_address_is_refused() -> None:
    harness = Harness()
    harness.receive(peer_alive("p1", 2))
    out = harness.receive(peer_alive("p1", 3, incarnation=5))
    assert harness.machine.member("p1").address == "10.0.0.2"  # type: ignore[union-attr]
    assert any(isinstance(o, Notice) and o.key == "conflict" for o in out)


def test_suspicion_of_ourselves_is_refuted_above_the_accusation() -> None:
    harness = Harness()
    harness.add_peers(2)
    harness.receive(Suspect(7, "me", "p0"))
    assert harness.machine.local_member.incarnation == 8
    assert harness.machine.health_score == 1
    queued = [m for m, _ in harness.machine.broadcasts.transmits()]
    assert any(b"me" in m and m[0] == 4 for m in queued)  # an alive for us is queued
    harness.receive(Dead(8, "me", "p1"))
    assert harness.machine.local_member.incarnation == 9
    assert harness.machine.local_member.state == NodeState.ALIVE


@pytest.mark.parametrize("strict", [False, True])
def test_dead_from_the_node_itself_is_a_leave(strict: bool) -> None:
    harness = Harness(config=profile("lan", strict_memberlist=strict))
    harness.add_peers(2)
    assert events(harness.receive(Dead(1, "p0", "p0"))) == [(EventKind.LEFT, "p0")]
    # Another node's verdict: memberlist takes it as it is; hookmq suspects first (test_gossip_suspicions).
    assert events(harness.receive(Dead(1, "p1", "p0"))) == [(EventKind.DEAD if strict else EventKind.SUSPECT, "p1")]
    assert harness.machine.member("p0").state == NodeState.LEFT  # type: ignore[union-attr]


def test_suspicion_lasts_the_minimum_when_no_confirmations_are_expected() -> None:
    harness = Harness()  # LAN, n = 3 (me, p0, p1): k = 0, so 4 s flat
    harness.add_peers(2)
    assert events(harness.receive(Suspect(1, "p0", "p1"))) == [(EventKind.SUSPECT, "p0")]
    assert events(harness.advance(3.999)) == []
    assert events(harness.advance(0.002)) == [(EventKind.DEAD, "p0")]


def test_confirmations_shrink_the_suspicion() -> None:
    harness = Harness()  # LAN, n = 5: k = 2, 24 s -> 11.381 s -> 4 s
    harness.add_peers(4)
    harness.receive(Suspect(1, "p0", "p1"))
    harness.advance(1.0)
    harness.receive(Suspect(1, "p0", "p2"))  # 11.381 s from the start
    assert events(harness.advance(10.38)) == []
    assert events(harness.advance(0.002)) == [(EventKind.DEAD, "p0")]


def test_second_confirmation_at_once_reaches_the_minimum() -> None:
    harness = Harness()
    harness.add_peers(4)
    harness.receive(Suspect(1, "p0", "p1"))
    harness.receive(Suspect(1, "p0", "p2"), Suspect(1, "p0", "p3"))
    assert events(harness.advance(3.999)) == []
    assert events(harness.advance(0.002)) == [(EventKind.DEAD, "p0")]


def test_a_newer_alive_clears_a_suspicion() -> None:
    harness = Harness()
    harness.add_peers(2)
    harness.receive(Suspect(1, "p0", "p1"))
    harness.receive(peer_alive("p0", 10, incarnation=2))
    assert events(harness.advance(30)) == []
    assert harness.machine.member("p0").state == NodeState.ALIVE  # type: ignore[union-attr]


def _probe_until_ping(harness: Harness, target: str) -> int:
    """Advance until a ping goes to ``target``; return its sequence number."""
    for _ in range(200):
        out = harness.advance(0.05)
        pings = [m for to, m in messages_of(out, Ping) if m.node == target]  # type: ignore[attr-defined]
        if pings:
            return pings[0].seq_no  # type: ignore[attr-defined, no-any-return]
    raise AssertionError(f"no ping to {target}")


def test_failed_probe_goes_indirect_with_nacks_and_tcp_then_suspects() -> None:
    harness = Harness(silent={"p0"})
    harness.add_peers(4)
    seq = _probe_until_ping(harness, "p0")
    out = harness.advance(0.5)  # LAN probe timeout
    indirect = messages_of(out, IndirectPing)
    assert len(indirect) == 3 and all(m.node == "p0" and m.nack and m.seq_no == seq for _, m in indirect)  # type: ignore[attr-defined]
    fallback = [s for s in streams(out) if s.purpose == StreamPurpose.FALLBACK_PING]
    assert len(fallback) == 1 and fallback[0].to == ("10.0.0.10", 7946)
    harness.machine.receive_packet(b"", ("x", 1), harness.now)  # noise does not matter
    harness.machine.stream_done(fallback[0].token, None, "connection refused", harness.now)
    for peer in ("10.0.0.11", "10.0.0.12"):
        harness.receive(Nack(seq), source=(peer, 7946))
    harness.silent.update({"p1", "p2", "p3"})  # so the next probe's ack does not improve health yet
    out = harness.advance(0.6)
    assert (EventKind.SUSPECT, "p0") in events(out)
    # Two of three expected nacks came: local health worsens by one, not three.
    assert harness.machine.health_score == 1


def test_tcp_answer_alone_prevents_the_suspicion() -> None:
    harness = Harness(silent={"p0"})
    harness.add_peers(2)
    seq = _probe_until_ping(harness, "p0")
    out = harness.advance(0.5)
    fallback = next(s for s in streams(out) if s.purpose == StreamPurpose.FALLBACK_PING)
    harness.machine.stream_done(fallback.token, Ack(seq), "", harness.now)
    out = harness.advance(1.0)
    assert events(out) == []
    assert any(isinstance(o, Notice) and o.key == "tcp-only" for o in harness.collect() + out)


def test_no_nacks_or_tcp_to_peers_of_old_protocols() -> None:
    harness = Harness(silent={"p0"})
    harness.add_peers(3, pmax=2)
    _probe_until_ping(harness, "p0")
    out = harness.advance(0.5)
    assert all(not m.nack for _, m in messages_of(out, IndirectPing))  # type: ignore[attr-defined]
    assert not streams(out)


def test_indirect_ping_is_relayed_and_nacked() -> None:
    harness = Harness(silent={"t"})
    out = harness.receive(IndirectPing(77, bytes([10, 0, 0, 5]), 7000, "t", True, bytes([10, 0, 0, 4]), 7946, "asker"))
    pings = messages_of(out, Ping)
    assert pings[0][0] == ("10.0.0.5", 7000)
    local_seq = pings[0][1].seq_no  # type: ignore[attr-defined]
    out = harness.receive(Ack(local_seq), source=("10.0.0.5", 7000))
    assert messages_of(out, Ack) == [(("10.0.0.4", 7946), Ack(77))]
    assert messages_of(harness.advance(1.0), Nack) == []  # the ack cancelled the nack
    harness.receive(IndirectPing(78, bytes([10, 0, 0, 5]), 7000, "t", True, bytes([10, 0, 0, 4]), 7946, "asker"))
    assert messages_of(harness.advance(0.6), Nack) == [(("10.0.0.4", 7946), Nack(78))]


def test_push_pull_answer_and_merge() -> None:
    harness = Harness()
    remote = PushPull(
        join=True,
        nodes=(
            PushNodeState("r1", bytes([10, 0, 0, 20]), 7946, b"", 3, 0, vsn_bytes()),
            PushNodeState("r2", bytes([10, 0, 0, 21]), 7946, b"", 1, 2, vsn_bytes()),  # dead: only suspected
            PushNodeState("r3", bytes([10, 0, 0, 22]), 7946, b"", 1, 3, vsn_bytes()),  # left
        ),
        user_state=b"theirs",
    )
    harness.machine.local_state = lambda join: b"ours"
    reply = harness.machine.handle_stream(remote, ("10.0.0.20", 50000), harness.now)
    assert reply is not None
    answer = StreamDecoder(harness.machine.codec, labelled=False).feed(reply)
    assert isinstance(answer, PushPull) and answer.user_state == b"ours"
    assert [n.name for n in answer.nodes] == ["me"]  # our state before merging theirs
    assert {m.name for m in harness.machine.members()} == {"me", "r1"}
    assert any(o.payload == b"theirs" for o in harness.collect() if hasattr(o, "payload") and hasattr(o, "join"))


def test_periodic_push_pull_is_scaled_by_cluster_size() -> None:
    harness = Harness(config=profile("lan", push_pull_interval=10.0))
    harness.add_peers(63)  # 64 nodes: twice the interval
    times = []
    for _ in range(400):
        for stream in streams(harness.advance(0.5)):
            if stream.purpose == StreamPurpose.PUSH_PULL:
                times.append(harness.now)
                harness.machine.stream_done(stream.token, None, "refused", harness.now)
        if len(times) >= 3:
            break
    assert [round(b - a) for a, b in itertools.pairwise(times)] == [20, 20]


def test_broadcasts_are_sent_retransmit_limit_times() -> None:
    harness = Harness(config=profile("lan", probe_interval=0.0, push_pull_interval=0.0))
    harness.add_peers(9)  # n = 10: 4 × ceil(log10 11) = 8 transmissions each
    harness.advance(30)
    harness.machine.broadcast_user(b"hello everyone")
    out = harness.advance(30)
    sent = [1 for _, found in packets(out) for m in found if getattr(m, "payload", None) == b"hello everyone"]
    assert len(sent) == 8


def test_dead_nodes_are_reaped_after_gossip_to_the_dead_time() -> None:
    harness = Harness(config=profile("local"))
    harness.add_peers(3)
    harness.machine.dead_node(Dead(1, "p0", "p1"), harness.now)  # (a received one would be a suspicion first)
    harness.collect()
    harness.advance(10)
    assert harness.machine.member("p0") is not None
    harness.advance(20)  # 15 s dead time, reaped when the probe list wraps
    assert harness.machine.member("p0") is None
    assert harness.machine.stats["nodes_reaped"] == 1


def test_leave_broadcasts_our_death_and_finishes() -> None:
    harness = Harness(config=profile("local"))
    harness.add_peers(2)
    harness.machine.leave(harness.now)
    harness.collect()
    out = harness.advance(2.0)
    deads = messages_of(out, Dead)
    assert deads and all(m.node == "me" and m.from_node == "me" for _, m in deads)  # type: ignore[attr-defined]
    assert any(isinstance(o, LeaveDone) for o in out)
    assert harness.machine.local_member.state == NodeState.LEFT


def test_leave_when_alone_is_done_at_once() -> None:
    harness = Harness()
    harness.machine.leave(harness.now)
    assert any(isinstance(o, LeaveDone) for o in harness.collect())


def test_user_messages() -> None:
    harness = Harness()
    harness.add_peers(1)
    harness.machine.receive_packet(b"\x08hi there", ("10.0.0.10", 7946), harness.now)
    assert [o for o in harness.collect() if isinstance(o, UserMessage)] == [UserMessage(b"hi there", False)]
    assert harness.machine.handle_stream(UserStream(b"big"), ("10.0.0.10", 1), harness.now) is None
    assert [o for o in harness.collect() if isinstance(o, UserMessage)] == [UserMessage(b"big", True)]
    harness.machine.send_user("p0", b"udp", reliable=False, now=harness.now)
    token = harness.machine.send_user("p0", b"tcp", reliable=True, now=harness.now)
    out = harness.collect()
    assert any(o.data.endswith(b"udp") for o in out if hasattr(o, "data") and not hasattr(o, "token"))
    assert [s.token for s in streams(out)] == [token]
    with pytest.raises(KeyError):
        harness.machine.send_user("nobody", b"x", reliable=False, now=harness.now)
    with pytest.raises(ValueError):
        harness.machine.send_user("p0", bytes(70_000), reliable=False, now=harness.now)


def test_bad_packets_are_counted_and_add_nobody() -> None:
    harness = Harness()
    for junk in (b"", b"\xff\xff", b"\x07\x05\x00", b"\x0c\x00\x00\x00\x00\x04"):
        harness.machine.receive_packet(junk, ("10.0.0.66", 1), harness.now)
    assert harness.machine.stats["packets_dropped"] == 4
    # Well-formed msgpack but no protocol versions: ignored, not a member.
    harness.machine.receive_packet(b"\x04\x81\xa4Node\xa2zz", ("10.0.0.66", 1), harness.now)
    assert [m.name for m in harness.machine.members()] == ["me"]
