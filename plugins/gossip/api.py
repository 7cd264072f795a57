"""The cluster API other plugins build on (cluster routing, sessions across nodes, the dashboard).

Get it with :func:`hookmq.plugins.gossip.cluster_of` (``None`` unless ``[cluster] mode`` is
on)::

    cluster = cluster_of(broker)
    cluster.on_event(lambda event: print(event.kind, event.member.name, event.member.metadata))
    cluster.on_message(lambda payload, reliable: ...)
    await cluster.send("node-b", b"hello", reliable=True)

Callbacks run in the broker's event loop and must not block. The user-state provider of
push/pull (:meth:`Cluster.set_local_state`) is the one exception: it runs wherever membership
runs (its own thread by default), so it should return prebuilt bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .driver import NodeEvent
from .membership import EventKind, Member, MemberEvent, NodeState, RemoteState, UserMessage
from .metadata import NodeMetadata
from .runner import GossipRunner

__all__ = ["Cluster", "ClusterEvent", "ClusterMember", "EventKind", "MemberRecord", "NodeState"]

log = logging.getLogger("hookmq.plugins.gossip")

EventCallback = Callable[["ClusterEvent"], None]
MessageCallback = Callable[[bytes, bool], None]
StateCallback = Callable[[bytes, bool], None]

ROSTER_KEEP_GONE = 3600.0
"""Seconds a failed or left member stays in :meth:`Cluster.roster` after its last change
(membership itself forgets it after the gossip-to-the-dead time; an operator wants longer)."""
ROSTER_MAX_GONE = 256
"""At most this many failed or left members are remembered (the oldest go first)."""


@dataclass(frozen=True, slots=True)
class ClusterMember:
    """A member as the cluster API shows it: gossip address, state, and decoded metadata."""

    name: str
    address: str
    port: int
    state: NodeState
    incarnation: int
    #: The node's metadata if it is a hookmq node; None for other memberlist nodes.
    metadata: NodeMetadata | None
    #: The metadata bytes as gossiped.
    raw_meta: bytes

    @classmethod
    def of(cls, member: Member) -> ClusterMember:
        """From the state machine's view."""
        return cls(member.name, member.address, member.port, member.state, member.incarnation,
                   NodeMetadata.decode(member.meta), member.meta)


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """A member joined, updated its metadata, became suspect, failed (``DEAD``) or left."""

    kind: EventKind
    member: ClusterMember


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member as an operator sees it: its latest view and when this node saw it change.

    Times are wall-clock (``time.time()``) readings on this node: ``joined_at`` when this
    node saw it join (None if it was a member before this node listened), ``state_since``
    when its current state began, as far as this node saw.
    """

    member: ClusterMember
    joined_at: float | None
    state_since: float


class Cluster:
    """This node's membership: members, events, user messages, metadata."""

    def __init__(self, runner: GossipRunner, metadata: NodeMetadata,
                 clock: Callable[[], float] = time.time) -> None:
        self._runner = runner
        self._metadata = metadata
        self._clock = clock
        #: Every member seen, by name (the operator's roster; failed and left ones kept a while).
        self._roster: dict[str, MemberRecord] = {}
        #: Whether another member has been seen alive (for readiness: "has joined").
        self._met_another = False
        self._event_callbacks: list[EventCallback] = []
        self._message_callbacks: list[MessageCallback] = []
        self._state_callbacks: list[StateCallback] = []
        self._local_state: Callable[[bool], bytes] | None = None
        runner.node.local_state = self._provide_state

    @property
    def name(self) -> str:
        """This node's name."""
        return self._runner.node.name

    @property
    def metadata(self) -> NodeMetadata:
        """This node's metadata."""
        return self._metadata

    @property
    def local(self) -> ClusterMember:
        """This node as a member."""
        found = self.member(self.name)
        return found if found is not None else ClusterMember.of(self._runner.node.local_member)

    def members(self) -> list[ClusterMember]:
        """Alive and suspect members, this node included."""
        return [ClusterMember.of(member) for member in self._runner.node.members()]

    def member(self, name: str) -> ClusterMember | None:
        """One alive or suspect member by name."""
        return next((ClusterMember.of(m) for m in self._runner.node.members() if m.name == name), None)

    def roster(self) -> list[MemberRecord]:
        """Every member this node knows of, sorted by name: the alive and suspect ones, and
        those that failed or left within the last :data:`ROSTER_KEEP_GONE` seconds (read-only).

        Membership's snapshot decides the state of the members it lists (it is refreshed before
        events are delivered, and a refuted suspicion changes it with no event); the events
        add when each member joined and changed state, and the members that are gone."""
        now = self._clock()
        live = {member.name: member for member in self.members()}
        found: dict[str, MemberRecord] = {}
        for name, member in live.items():
            record = self._roster.get(name)
            if record is None or record.member.state != member.state:
                record = MemberRecord(member, record.joined_at if record else None, record.state_since if record else now)
            else:
                record = MemberRecord(member, record.joined_at, record.state_since)
            found[name] = record
        for name, record in self._roster.items():
            # Not in membership's snapshot: failed or left (kept a while), or an event newer than the snapshot.
            if name not in live and (record.member.state < NodeState.DEAD or now - record.state_since <= ROSTER_KEEP_GONE):
                found[name] = record
        return [found[name] for name in sorted(found)]

    @property
    def seeds(self) -> tuple[str, ...]:
        """The configured members to join (``[cluster] members``)."""
        return tuple(self._runner.node.members_config)

    @property
    def joined(self) -> bool:
        """Whether this node has joined: it has no members to join, or has seen another member alive."""
        return not self.seeds or self._met_another or len(self.members()) > 1

    @property
    def stats(self) -> dict[str, int]:
        """Counters of the driver and the state machine (packets, bad input by reason, …)."""
        node = self._runner.node
        machine = node.machine
        for _ in range(5):  # the counters may grow a key in membership's thread meanwhile
            try:
                return {**node.stats, **(machine.stats if machine is not None else {})}
            except RuntimeError:
                continue
        return dict(node.stats)

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every membership change; returns an unsubscribe function."""
        self._event_callbacks.append(callback)
        return lambda: self._event_callbacks.remove(callback)

    def on_message(self, callback: MessageCallback) -> Callable[[], None]:
        """Call ``callback(payload, reliable)`` for every user message received."""
        self._message_callbacks.append(callback)
        return lambda: self._message_callbacks.remove(callback)

    def on_remote_state(self, callback: StateCallback) -> Callable[[], None]:
        """Call ``callback(state, join)`` with each peer's user state from push/pull."""
        self._state_callbacks.append(callback)
        return lambda: self._state_callbacks.remove(callback)

    def set_local_state(self, provider: Callable[[bool], bytes] | None) -> None:
        """Bytes sent as this node's user state in every push/pull (runs in membership's thread)."""
        self._local_state = provider

    async def send(self, name: str, payload: bytes, reliable: bool = True) -> None:
        """Send a user message to one member: over TCP (``reliable``) or one UDP packet.

        :raises KeyError: no live member of that name. :raises OSError: the TCP send failed.
        """
        await self._runner.call(lambda: self._runner.node.send(name, payload, reliable))

    async def broadcast(self, payload: bytes) -> None:
        """Gossip a user message to every member, best effort, piggy-backed on the protocol's packets."""
        await self._runner.run(lambda: self._runner.node.broadcast(payload))

    async def update_metadata(self, metadata: NodeMetadata) -> None:
        """Replace this node's metadata; every member sees an ``UPDATE`` event."""
        encoded = metadata.encode()
        self._metadata = metadata
        await self._runner.run(lambda: self._runner.node.update_meta(encoded))

    def dispatch(self, event: NodeEvent) -> None:
        """Hand one event from the driver to the callbacks (called in the broker's loop)."""
        if isinstance(event, MemberEvent):
            cluster_event = ClusterEvent(event.kind, ClusterMember.of(event.member))
            self._remember(cluster_event)
            for callback in list(self._event_callbacks):
                _call(callback, cluster_event)
        elif isinstance(event, UserMessage):
            for message_callback in list(self._message_callbacks):
                _call(message_callback, event.payload, event.reliable)
        elif isinstance(event, RemoteState):
            for state_callback in list(self._state_callbacks):
                _call(state_callback, event.payload, event.join)

    def _remember(self, event: ClusterEvent) -> None:
        member, now = event.member, self._clock()
        if event.kind == EventKind.JOIN and member.name != self.name:
            self._met_another = True
        previous = self._roster.get(member.name)
        state = member.state  # the event's snapshot was taken as the state changed
        if event.kind == EventKind.JOIN or previous is None:
            joined_at: float | None = now if event.kind == EventKind.JOIN else None
            self._roster[member.name] = MemberRecord(member, joined_at, now)
        else:
            since = previous.state_since if previous.member.state == state else now
            self._roster[member.name] = MemberRecord(member, previous.joined_at, since)
        self._prune(now)

    def _prune(self, now: float) -> None:
        gone = sorted((record.state_since, name) for name, record in self._roster.items()
                      if record.member.state >= NodeState.DEAD)
        for index, (since, name) in enumerate(gone):
            if now - since > ROSTER_KEEP_GONE or index < len(gone) - ROSTER_MAX_GONE:
                del self._roster[name]

    def _provide_state(self, join: bool) -> bytes:
        provider = self._local_state
        if provider is None:
            return b""
        try:
            return provider(join)
        except Exception:
            log.exception("cluster local-state provider failed")
            return b""


def _call(callback: Callable[..., None], *args: object) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("cluster callback %r failed", callback)
