"""Full state exchanges over TCP: joins, periodic push/pull, and hookmq's re-joining.

A push/pull sends every node this one knows (dead ones included, until reaped) and the user
state, and merges the answer as memberlist's ``mergeState`` does: alive and left states are
taken as they are, a remote "dead" only makes us *suspect* the node, so that it can still
refute. The periodic exchange is scaled by cluster size (state.go ``pushPullTrigger``); a
join is the same exchange with ``join`` set. Re-joining (:mod:`.rejoin`) runs every
``rejoin_interval`` while nodes are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..wire import (
    Alive,
    Dead,
    ErrorResponse,
    NodeStateCode,
    PushNodeState,
    PushPull,
    StreamMessage,
    Suspect,
    encode_push_pull,
)
from .formulas import push_pull_interval
from .nodes import NodeState
from .outputs import Address, Notice, RemoteState, StreamPurpose, StreamResult

if TYPE_CHECKING:
    from .machine import Membership

__all__ = ["StateExchange"]


class StateExchange:
    """Push/pull and re-join for one membership."""

    __slots__ = ("_owner",)

    def __init__(self, owner: Membership) -> None:
        self._owner = owner

    def periodic(self, now: float) -> None:
        """The push/pull timer fired: exchange with one random alive node."""
        owner = self._owner
        candidates = owner.random_nodes(1, lambda n: n.name == owner.name or n.state != NodeState.ALIVE)
        if not candidates:
            self._schedule(now)
            return
        self.with_peer(candidates[0].endpoint, join=False, purpose=StreamPurpose.PUSH_PULL)

    def _schedule(self, now: float) -> None:
        # As memberlist: the next exchange is timed from the end of this one.
        owner = self._owner
        interval = push_pull_interval(owner.config.push_pull_interval, len(owner.nodes))
        owner.timers.schedule(now + interval, self.periodic)

    def with_peer(self, to: Address, join: bool, purpose: StreamPurpose) -> int:
        """Exchange full state with ``to`` over TCP and merge its answer; returns the stream token."""
        owner = self._owner
        before = owner.node_map[owner.name].incarnation if owner.name in owner.node_map else 0

        def done(reply: StreamMessage | None, error: str) -> None:
            if not error and not isinstance(reply, PushPull):
                error = f"remote error: {reply.error}" if isinstance(reply, ErrorResponse) else "unexpected answer"
            if isinstance(reply, PushPull) and not error:
                self.merge(reply)
            else:
                owner.notice(Notice.debug("push-pull", f"Push/Pull with {to[0]}:{to[1]} failed: {error}"))
            if purpose == StreamPurpose.PUSH_PULL:
                self._schedule(owner.now)
            if purpose == StreamPurpose.REJOIN and "refused" in error.lower():
                owner.rejoin.refused(to)  # that process is gone; a partition would time out instead
            if purpose == StreamPurpose.REJOIN and not error and owner.node_map[owner.name].incarnation != before:
                # The exchange made us refute a stale "dead" of ours: tell that node at once.
                self.with_peer(to, join=True, purpose=StreamPurpose.JOIN)
            if purpose in (StreamPurpose.JOIN, StreamPurpose.REJOIN):
                owner.emit(StreamResult(token, purpose, to, error))

        token = owner.open_stream(to, self.local_message(join), owner.now + owner.config.tcp_timeout, purpose, done)
        return token

    def local_message(self, join: bool) -> bytes:
        """Our side of a push/pull: every known node and the user state."""
        owner = self._owner
        user_state = owner.local_state(join) if owner.local_state is not None else b""
        return encode_push_pull([node.push_state() for node in owner.nodes], user_state, join)

    def merge(self, message: PushPull) -> None:
        """Merge a peer's push/pull; its user state goes to the driver."""
        owner = self._owner
        self.merge_states(message.nodes, owner.now)
        if message.user_state:
            owner.emit(RemoteState(message.user_state, message.join))

    def merge_states(self, remote: Sequence[PushNodeState], now: float) -> None:
        """Apply node states (``mergeState``): a remote "dead" only makes us suspect."""
        owner = self._owner
        for state in remote:
            if state.state == NodeStateCode.ALIVE:
                port = state.port or owner.advertise_raw[1]
                owner.alive_node(Alive(state.incarnation, state.name, state.addr, port, state.meta, state.vsn), now)
            elif state.state == NodeStateCode.LEFT:
                owner.dead_node(Dead(state.incarnation, state.name, state.name), now)
            elif state.state in (NodeStateCode.DEAD, NodeStateCode.SUSPECT):
                owner.suspect_node(
                    Suspect(state.incarnation, state.name, owner.name), now,
                    learnt_from_peer=True, verdict=state.state == NodeStateCode.DEAD,
                )

    def rejoin_tick(self, now: float) -> None:
        """Re-join failed nodes and seeds while nodes are missing (hookmq, beyond memberlist)."""
        owner = self._owner
        config = owner.config
        owner.timers.schedule(now + config.rejoin_interval, self.rejoin_tick)
        if owner.has_left:
            return
        owner.rejoin.expire(now, config.rejoin_timeout)
        alive = [node for node in owner.nodes if not node.dead_or_left()]
        short = config.expect > 0 and len(alive) < config.expect
        alone = len(alive) <= 1 and bool(owner.rejoin.seeds)
        if not (short or alone or owner.rejoin.missing()):
            return
        endpoints = {node.endpoint for node in alive}
        for target in owner.rejoin.targets(endpoints, owner.rng, include_seeds=True, now=now):
            owner.stats["rejoin_attempts"] += 1
            self.with_peer(target, join=True, purpose=StreamPurpose.REJOIN)
