"""Suspicions: memberlist's Lifeguard timers exactly, and hookmq's ways of making every one end.

Each addition is checked against ``strict_memberlist``, the switch that turns it off.
"""

from __future__ import annotations

import pytest
from gossip_machine_helpers import Harness, messages_of, peer_alive

from hookmq.plugins.gossip.membership import EventKind, MemberEvent, NodeState, Output, profile
from hookmq.plugins.gossip.wire import Dead, PushNodeState, PushPull, Suspect, vsn_bytes
from hookmq.plugins.gossip.wire.messages import NodeStateCode

LOCAL = profile("local")
STRICT_LOCAL = profile("local", strict_memberlist=True)
P0 = bytes([10, 0, 0, 10])
P2_ENDPOINT = ("10.0.0.12", 7946)


def events(outputs: list[Output]) -> list[tuple[EventKind, str]]:
    return [(o.kind, o.member.name) for o in outputs if isinstance(o, MemberEvent)]


def dead_after(harness: Harness, name: str, limit: float, step: float = 0.001) -> float | None:
    """Seconds until ``name`` is reported dead (None within ``limit``)."""
    start = harness.now
    while harness.now - start < limit:
        if (EventKind.DEAD, name) in events(harness.advance(step)):
            return harness.now - start
    return None


def push_pull_saying(state: NodeStateCode) -> PushPull:
    return PushPull(False, (PushNodeState("p0", P0, 7946, b"", 1, state, vsn_bytes()),), b"")


@pytest.mark.parametrize(("strict", "after"), [(False, 11.381), (True, 24.0)])
def test_a_suspicion_learnt_from_push_pull_is_confirmed_by_our_own_probe(strict: bool, after: float) -> None:
    # memberlist names itself as the accuser here, so its own failed probe never counts and the
    # suspicion runs to its maximum (24 s for LAN, 5 nodes); hookmq counts that probe (11.381 s).
    harness = Harness(config=profile("lan", strict_memberlist=strict), silent={"p0"})
    harness.add_peers(4)
    harness.machine.handle_stream(push_pull_saying(NodeStateCode.SUSPECT), ("10.0.0.11", 40000), harness.now)
    assert (EventKind.SUSPECT, "p0") in events(harness.collect())
    assert dead_after(harness, "p0", 30) == pytest.approx(after, abs=0.002)


@pytest.mark.parametrize(("strict", "after"), [(False, 3.0), (True, 18.0)])
def test_a_push_pull_saying_dead_confirms_our_own_suspicion(strict: bool, after: float) -> None:
    # local, 5 nodes: one confirmation expected, 3 s at least and 18 s at most. Our own probe
    # accused p0; a peer's push/pull then says p0 is dead: that is its verdict, a confirmation.
    # memberlist turns it into a suspicion of its own, which our own accusation already is.
    harness = Harness(config=profile("local", strict_memberlist=strict, gossip_interval=0.0), silent={"p0"})
    harness.add_peers(4)
    harness.machine.suspect_node(Suspect(1, "p0", "me"), harness.now)
    harness.advance(1.0)
    harness.machine.handle_stream(push_pull_saying(NodeStateCode.DEAD), ("10.0.0.11", 40000), harness.now)
    harness.collect()
    assert 1.0 + (dead_after(harness, "p0", 30, step=0.01) or 99) == pytest.approx(after, abs=0.011)


def test_a_push_pull_saying_suspect_is_no_verdict() -> None:
    harness = Harness(config=profile("local", gossip_interval=0.0), silent={"p0"})
    harness.add_peers(4)
    harness.machine.suspect_node(Suspect(1, "p0", "me"), harness.now)
    harness.machine.handle_stream(push_pull_saying(NodeStateCode.SUSPECT), ("10.0.0.11", 40000), harness.now)
    harness.collect()
    assert dead_after(harness, "p0", 17.9, step=0.1) is None


@pytest.mark.parametrize("strict", [False, True])
def test_an_unconfirmed_suspicion_is_gossiped_again_every_minimum(strict: bool) -> None:
    # p0 answers our probes (so they confirm nothing) but never refutes: nobody confirms.
    harness = Harness(config=profile("local", strict_memberlist=strict))
    harness.add_peers(4)
    harness.receive(Suspect(1, "p0", "p1"))
    sent_at: list[float] = []
    while harness.now < 10.0:
        out = harness.advance(0.05)
        # (probes of p0 carry the accusation to p0 itself, so it can refute: not gossip)
        if any(m.node == "p0" and to[0] != "10.0.0.10" for to, m in messages_of(out, Suspect)):  # type: ignore[attr-defined]
            sent_at.append(harness.now)
    reminders = harness.machine.stats["suspicion_reminders"]
    assert reminders == (0 if strict else 3)  # at 3, 6 and 9 s
    assert any(t > 3.0 for t in sent_at) is not strict


def test_a_confirmed_suspicion_needs_no_reminder() -> None:
    harness = Harness(config=LOCAL)
    harness.add_peers(4)
    harness.receive(Suspect(1, "p0", "p1"), Suspect(1, "p0", "p2"))
    harness.advance(10)
    assert harness.machine.stats["suspicion_reminders"] == 0


@pytest.mark.parametrize("strict", [False, True])
def test_an_accusation_of_a_node_we_hold_dead_is_answered_with_the_verdict(strict: bool) -> None:
    harness = Harness(config=profile("local", strict_memberlist=strict, gossip_interval=0.0))
    harness.add_peers(4)
    harness.machine.dead_node(Dead(1, "p0", "p1"), harness.now)  # we hold p0 dead
    harness.collect()
    late = harness.receive(Suspect(1, "p0", "p2"), source=P2_ENDPOINT)
    answers = [(to, m) for to, m in messages_of(late, Dead) if m.node == "p0"]  # type: ignore[attr-defined]
    if strict:
        assert answers == []
        return
    # (the packet also carries our queued broadcast of the same death, piggy-backed)
    assert {to for to, _ in answers} == {P2_ENDPOINT}
    assert Dead(1, "p0", "me") in [m for _, m in answers]
    # At most once per probe interval to the same node; an accusation newer than the verdict is news.
    again = harness.receive(Suspect(1, "p0", "p2"), source=P2_ENDPOINT)
    assert [m for _, m in messages_of(again, Dead)] == []
    harness.advance(1.0)
    again = harness.receive(Suspect(1, "p0", "p2"), source=P2_ENDPOINT)
    assert {to for to, _ in messages_of(again, Dead)} == {P2_ENDPOINT}
    harness.advance(1.0)
    newer = harness.receive(Suspect(2, "p0", "p2"), source=P2_ENDPOINT)
    assert [m for _, m in messages_of(newer, Dead)] == []


def test_the_relay_and_the_accuser_both_hear_the_verdict_and_a_leave_is_told_as_a_leave() -> None:
    harness = Harness(config=profile("local", gossip_interval=0.0))
    harness.add_peers(4)
    harness.receive(Dead(1, "p0", "p0"))  # p0 left
    out = harness.receive(Suspect(1, "p0", "p3"), source=P2_ENDPOINT)  # p2 relays p3's accusation
    told = {(to, m) for to, m in messages_of(out, Dead)}
    assert told == {(P2_ENDPOINT, Dead(1, "p0", "p0")), (("10.0.0.13", 7946), Dead(1, "p0", "p0"))}


def test_our_own_accusation_is_gossiped_even_when_peers_already_confirmed() -> None:
    harness = Harness(config=LOCAL, silent={"p0"})  # local, 5 nodes: one confirmation expected
    harness.add_peers(4)
    harness.receive(Suspect(1, "p0", "p1"), Suspect(1, "p0", "p2"))  # confirmed already
    queued = lambda: [m for m, _ in harness.machine.broadcasts.transmits()]  # noqa: E731
    for _ in range(100):
        harness.advance(0.1)
        if any(m[0] == 3 and b"me" in m for m in queued()):
            break
    suspects = [m for m in queued() if m[0] == 3]
    assert suspects and all(b"\xa4From\xa2me" in m for m in suspects)


@pytest.mark.parametrize("strict", [False, True])
def test_the_accusers_are_told_directly_when_the_suspicion_ends(strict: bool) -> None:
    harness = Harness(config=profile("local", gossip_interval=0.0, strict_memberlist=strict), silent={"p0"})
    harness.add_peers(4)
    harness.receive(Suspect(1, "p0", "p1"), Suspect(1, "p0", "p2"))  # p1 accuses, p2 confirms: 3 s
    harness.advance(2.999)
    out = harness.advance(0.002)
    assert (EventKind.DEAD, "p0") in events(out)
    told = {to for to, message in messages_of(out, Dead) if message.node == "p0"}  # type: ignore[attr-defined]
    accusers = {("10.0.0.11", 7946), ("10.0.0.12", 7946)}
    assert (accusers <= told) is not strict


# ---------------------------------------------------------------------- another node's verdict


LAN = profile("lan", gossip_interval=0.0)  # 5 nodes: k = 2; 4 s at least, 24 s at most


@pytest.mark.parametrize("strict", [False, True])
def test_a_dead_message_about_a_node_we_hold_alive_is_a_suspicion_it_can_refute(strict: bool) -> None:
    # After a heal, the side that was cut off still holds p0 dead and tells us so; p0 is alive.
    harness = Harness(config=profile("lan", gossip_interval=0.0, strict_memberlist=strict))
    harness.add_peers(4)
    first = events(harness.receive(Dead(1, "p0", "p1")))
    if strict:  # memberlist's deadNode: dead at once
        assert first == [(EventKind.DEAD, "p0")]
        return
    assert first == [(EventKind.SUSPECT, "p0")]
    queued = [m for m, _ in harness.machine.broadcasts.transmits()]
    assert any(m[0] == 3 and b"p0" in m for m in queued)  # the suspicion is gossiped: p0 hears it
    assert harness.machine.stats["verdicts_as_suspicions"] == 1
    harness.advance(1.0)
    harness.receive(peer_alive("p0", 10, incarnation=2))  # p0 refutes
    assert harness.machine.member("p0").state == NodeState.ALIVE  # type: ignore[union-attr]
    assert (EventKind.DEAD, "p0") not in events(harness.advance(30))


def test_a_push_pull_saying_dead_about_a_live_node_is_refuted_in_time() -> None:
    harness = Harness(config=LAN)
    harness.add_peers(4)
    harness.machine.handle_stream(push_pull_saying(NodeStateCode.DEAD), ("10.0.0.11", 40000), harness.now)
    assert events(harness.collect()) == [(EventKind.SUSPECT, "p0")]
    harness.advance(3.9)  # even just before the minimum suspicion time
    harness.receive(peer_alive("p0", 10, incarnation=2))
    assert (EventKind.DEAD, "p0") not in events(harness.advance(30))


@pytest.mark.parametrize("message", [Dead(1, "me", "p1"), Dead(5, "me", "p1")])
def test_a_verdict_about_ourselves_is_refuted_at_once(message: Dead) -> None:
    harness = Harness(config=LAN)
    harness.add_peers(4)
    out = harness.receive(message)
    assert [e for e in events(out) if e[1] == "me"] == []
    assert harness.machine.local_member.incarnation == message.incarnation + 1
    assert harness.machine.stats["refutations"] == 1 and harness.machine.stats["verdicts_as_suspicions"] == 0


@pytest.mark.parametrize(("strict", "verdict_at", "after"), [
    (False, 1.0, 4.0),  # the minimum after the start (one confirmation alone would give 11.381 s)
    (False, 6.0, 6.0),  # past the minimum already: at once
    (True, 1.0, 1.0),   # memberlist: at once
])
def test_a_verdict_about_a_node_we_suspect_ends_the_suspicion_at_the_minimum(
        strict: bool, verdict_at: float, after: float) -> None:
    harness = Harness(config=profile("lan", gossip_interval=0.0, strict_memberlist=strict), silent={"p0"})
    harness.add_peers(4)
    assert events(harness.receive(Suspect(1, "p0", "p1"))) == [(EventKind.SUSPECT, "p0")]
    out = harness.advance(verdict_at)
    out += harness.receive(Dead(1, "p0", "p2"))
    if (EventKind.DEAD, "p0") in events(out):
        took = verdict_at
    else:
        took = verdict_at + (dead_after(harness, "p0", 30) or 99)
    assert took == pytest.approx(after, abs=0.002)


def test_a_node_really_dead_heard_of_only_through_a_verdict_is_confirmed_by_our_own_probe() -> None:
    harness = Harness(config=LAN, silent={"p0"})
    harness.add_peers(4)
    harness.receive(Dead(1, "p0", "p1"))  # p1's verdict; p0 answers none of our probes
    took = dead_after(harness, "p0", 30, step=0.01)
    # Our own failed probe is the confirmation that shortens it: 11.381 s after the start (with
    # no confirmation it would run to the 24 s maximum).
    assert took is not None and took < 13.0
