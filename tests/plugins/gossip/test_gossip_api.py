"""The cluster API's operator views, without sockets: the roster (members seen, with when they
joined and changed state, failed and left ones kept a while) and `joined`, fed events through
`Cluster.dispatch` with an injected clock."""

from __future__ import annotations

from hookmq.plugins.gossip.api import ROSTER_KEEP_GONE, ROSTER_MAX_GONE, Cluster
from hookmq.plugins.gossip.driver import GossipNode
from hookmq.plugins.gossip.membership import EventKind, Member, MemberEvent, NodeState, profile
from hookmq.plugins.gossip.metadata import NodeMetadata
from hookmq.plugins.gossip.runner import GossipRunner
from hookmq.plugins.gossip.wire import WireCodec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_cluster(members: tuple[str, ...] = ()) -> tuple[Cluster, Clock]:
    node = GossipNode(profile("local"), name="self", bind="127.0.0.1", port=0, advertise="127.0.0.1",
                      codec=WireCodec(), members=members)
    clock = Clock()
    return Cluster(GossipRunner(node, "loop", lambda event: None), NodeMetadata(), clock=clock), clock


def member(name: str, state: NodeState, incarnation: int = 1) -> Member:
    return Member(name, "127.0.0.1", 7946, NodeMetadata().encode(), state, incarnation, (1, 5, 2))


def test_roster_keeps_when_a_member_joined_and_when_its_state_changed() -> None:
    cluster, clock = make_cluster()
    cluster.dispatch(MemberEvent(EventKind.JOIN, member("b", NodeState.ALIVE)))
    clock.now = 1005.0
    cluster.dispatch(MemberEvent(EventKind.UPDATE, member("b", NodeState.ALIVE)))
    clock.now = 1010.0
    cluster.dispatch(MemberEvent(EventKind.SUSPECT, member("b", NodeState.SUSPECT)))
    clock.now = 1020.0
    cluster.dispatch(MemberEvent(EventKind.DEAD, member("b", NodeState.DEAD)))
    [record] = cluster.roster()
    assert record.member.name == "b" and record.member.state == NodeState.DEAD
    assert record.joined_at == 1000.0 and record.state_since == 1020.0
    assert record.member.metadata == NodeMetadata()


def test_an_update_does_not_reset_state_since_and_a_rejoin_resets_joined_at() -> None:
    cluster, clock = make_cluster()
    cluster.dispatch(MemberEvent(EventKind.JOIN, member("b", NodeState.ALIVE)))
    clock.now = 1003.0
    cluster.dispatch(MemberEvent(EventKind.UPDATE, member("b", NodeState.ALIVE, 2)))
    assert cluster.roster()[0].state_since == 1000.0 and cluster.roster()[0].member.incarnation == 2
    cluster.dispatch(MemberEvent(EventKind.LEFT, member("b", NodeState.LEFT, 3)))
    clock.now = 1050.0
    cluster.dispatch(MemberEvent(EventKind.JOIN, member("b", NodeState.ALIVE, 4)))
    record = cluster.roster()[0]
    assert record.member.state == NodeState.ALIVE and record.joined_at == 1050.0


def test_failed_and_left_members_are_forgotten_after_an_hour_and_beyond_the_bound() -> None:
    cluster, clock = make_cluster()
    cluster.dispatch(MemberEvent(EventKind.DEAD, member("gone", NodeState.DEAD)))
    assert [r.member.name for r in cluster.roster()] == ["gone"]
    clock.now += ROSTER_KEEP_GONE + 1
    assert cluster.roster() == []
    for index in range(ROSTER_MAX_GONE + 10):
        clock.now += 1
        cluster.dispatch(MemberEvent(EventKind.LEFT, member(f"n{index:04d}", NodeState.LEFT)))
    names = [r.member.name for r in cluster.roster()]
    assert len(names) == ROSTER_MAX_GONE and names[0] == "n0010"  # the oldest went first


def test_joined_without_seeds_at_once_with_seeds_once_another_member_is_seen() -> None:
    alone, _ = make_cluster()
    assert alone.joined is True and alone.seeds == ()
    seeded, _ = make_cluster(("127.0.0.1:7946",))
    assert seeded.joined is False and seeded.seeds == ("127.0.0.1:7946",)
    seeded.dispatch(MemberEvent(EventKind.JOIN, member("self", NodeState.ALIVE)))
    assert seeded.joined is False  # our own join does not count
    seeded.dispatch(MemberEvent(EventKind.JOIN, member("other", NodeState.ALIVE)))
    assert seeded.joined is True
