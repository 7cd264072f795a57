"""One probe at a time, as memberlist's ``probeNode`` (state.go), written as a timer-driven machine.

A probe pings its target over UDP and waits ``probe_timeout``; without an ack it asks ``k``
random peers to ping the target (each sends a nack if it hears nothing) and tries a TCP ping,
all until the probe's deadline, which is the probe interval stretched by local health. An ack
by any route ends it well; at the deadline, a TCP-only answer means "network misconfigured",
no answer at all means the target becomes suspect. Local health moves by −1 for a good probe
and, for a failed one, by the nacks that did not come (or +1 when none were expected).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..wire import Ack, IndirectPing, Suspect, encode_message
from .nodes import NodeRecord, NodeState
from .outputs import Notice, StreamPurpose
from .timers import Timer

if TYPE_CHECKING:
    from .machine import Membership

__all__ = ["Prober"]

#: If the driver has not reported the TCP ping at the deadline, wait this long for it at most.
FALLBACK_GRACE = 0.25


@dataclass(slots=True)
class _Probe:
    target: str
    incarnation: int
    seq_no: int
    deadline: float
    timers: list[Timer] = field(default_factory=list)
    expected_nacks: int = 0
    nacks: int = 0
    fallback: bool | None = None  # None: no TCP ping, or not answered yet
    fallback_pending: bool = False
    at_deadline: bool = False


class Prober:
    """The probe in flight, the round-robin cursor and the probe ticker of one membership."""

    __slots__ = ("_index", "_owner", "_pending_tick", "_probe")

    def __init__(self, owner: Membership) -> None:
        self._owner = owner
        self._probe: _Probe | None = None
        self._pending_tick = False
        self._index = 0

    @property
    def busy(self) -> bool:
        """A probe is in flight."""
        return self._probe is not None

    def tick(self, now: float) -> None:
        """The probe ticker fired: probe the next node, or remember the tick while one is in flight.

        Like Go's ticker channel (capacity one), at most one tick waits; the rest are dropped.
        """
        if self._probe is not None:
            self._pending_tick = True
            return
        self._probe_next(now)

    def _probe_next(self, now: float) -> None:
        owner = self._owner
        checked = 0
        while checked < len(owner.nodes):
            if self._index >= len(owner.nodes):
                owner.reap_and_shuffle(now)
                self._index = 0
                checked += 1
                continue
            node = owner.nodes[self._index]
            self._index += 1
            if node.name == owner.name or node.dead_or_left():
                checked += 1
                continue
            self._start(node, now)
            return

    def _start(self, node: NodeRecord, now: float) -> None:
        owner = self._owner
        interval = owner.awareness.scale(owner.config.probe_interval)
        seq = owner.next_seq_no()
        probe = _Probe(node.name, node.incarnation, seq, now + interval)
        self._probe = probe
        owner.stats["probes"] += 1
        owner.expect_ack(seq, interval, now, on_ack=lambda t: self._acked(probe, t), on_nack=lambda: self._nacked(probe))
        ping = owner.ping_for(node.name, seq)
        if node.state == NodeState.ALIVE:
            owner.send_msg(node.endpoint, encode_message(ping))
        else:
            # A suspect target gets the accusation with the ping, so it can refute at once.
            accusation = Suspect(node.incarnation, node.name, owner.name)
            owner.send_compound(node, [encode_message(ping), encode_message(accusation)])
        probe.timers = [
            owner.timers.schedule(now + owner.config.probe_timeout, lambda t: self._direct_timeout(probe, t)),
            owner.timers.schedule(probe.deadline, lambda t: self._deadline(probe, t)),
        ]

    def _acked(self, probe: _Probe, now: float) -> None:
        if self._probe is probe:
            self._finish(probe, -1, now)

    def _nacked(self, probe: _Probe) -> None:
        if self._probe is probe:
            probe.nacks += 1

    def _direct_timeout(self, probe: _Probe, now: float) -> None:
        """No direct ack in time: indirect probes through k peers, and a TCP ping, until the deadline."""
        owner = self._owner
        if self._probe is not probe:
            return
        target = owner.node_map.get(probe.target)
        if target is None:
            return
        owner.notice(Notice.debug("probe", f"Failed UDP ping: {target.name} (timeout reached)"))
        owner.stats["probes_indirect"] += 1
        peers = owner.random_nodes(
            owner.config.indirect_checks,
            lambda n: n.name in (owner.name, target.name) or n.state != NodeState.ALIVE,
        )
        address, port = owner.advertise_raw
        for peer in peers:
            wants_nack = peer.pmax >= 4
            probe.expected_nacks += wants_nack
            request = IndirectPing(probe.seq_no, target.addr, target.port, target.name, wants_nack, address, port, owner.name)
            owner.send_msg(peer.endpoint, encode_message(request))
        if not owner.config.disable_tcp_pings and target.pmax >= 3:
            probe.fallback_pending = True
            owner.open_stream(
                target.endpoint,
                encode_message(owner.ping_for(target.name, probe.seq_no)),
                probe.deadline,
                StreamPurpose.FALLBACK_PING,
                lambda reply, error: self._fallback_done(
                    probe, isinstance(reply, Ack) and reply.seq_no == probe.seq_no, owner.now
                ),
            )

    def _fallback_done(self, probe: _Probe, contacted: bool, now: float) -> None:
        probe.fallback_pending = False
        probe.fallback = contacted
        if self._probe is probe and probe.at_deadline:
            self._conclude(probe, now)

    def _deadline(self, probe: _Probe, now: float) -> None:
        if self._probe is not probe:
            return
        probe.at_deadline = True
        if probe.fallback_pending:
            # The TCP ping shares this deadline; give the driver a moment to report it.
            probe.timers.append(self._owner.timers.schedule(now + FALLBACK_GRACE, lambda t: self._conclude(probe, t)))
            return
        self._conclude(probe, now)

    def _conclude(self, probe: _Probe, now: float) -> None:
        owner = self._owner
        if self._probe is not probe:
            return
        if probe.fallback:
            owner.notice(
                Notice(
                    logging.WARNING,
                    "tcp-only",
                    f"Was able to connect to {probe.target} over TCP but UDP probes failed, network may be misconfigured",
                )
            )
            self._finish(probe, -1, now)
            return
        delta = max(probe.expected_nacks - probe.nacks, 0) if probe.expected_nacks > 0 else 1
        owner.stats["probes_failed"] += 1
        owner.notice(Notice(logging.INFO, "suspect", f"Suspect {probe.target} has failed, no acks received"))
        owner.suspect_node(Suspect(probe.incarnation, probe.target, owner.name), now)
        self._finish(probe, delta, now)

    def _finish(self, probe: _Probe, awareness_delta: int, now: float) -> None:
        for timer in probe.timers:
            timer.cancel()
        self._owner.forget_ack(probe.seq_no)
        self._owner.awareness.apply(awareness_delta)
        self._probe = None
        if self._pending_tick:
            self._pending_tick = False
            self._probe_next(now)
