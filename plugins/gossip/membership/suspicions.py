"""Running suspicions: Lifeguard's shrinking timers, and how hookmq makes sure each one ends.

memberlist (state.go ``suspectNode``) starts a timer at the suspicion maximum when a node is
first suspected, shortens it with every independent confirmation and declares the node dead
when it fires; :meth:`Suspicions.handle` keeps that exactly. A survivor that hears neither a
confirmation nor the verdict (broadcasts go a few times to random nodes, and packets get lost)
waits for the maximum, in memberlist: 18 s with the ``local`` profile, 31 s at 50 nodes. hookmq
adds, with messages memberlist already sends and understands (all off with
``strict_memberlist``):

1. a suspicion learnt from a push/pull does not name this node as its accuser, so this node's
   own failed probe still confirms it (memberlist names itself, and then never counts it);
2. another node's *verdict* (a push/pull that reports the node dead, or a dead message from
   another node about a third) never declares a node dead here at once. About a node we
   hold alive it is an accusation: a suspicion starts (and is gossiped, so a live node hears
   it and refutes). About a node we suspect already it is a confirmation that ends the
   suspicion no later than the minimum suspicion time after it started here
   (:meth:`Suspicions.verdict`). memberlist takes a dead message as it is, which after a
   partition heals lets the partitioned side's stale verdicts declare live nodes failed
   before they can refute; and it turns a push/pull's "dead" into a suspicion of its own
   that confirms nothing;
3. this node's own failed probe is gossiped even when enough peers had confirmed already;
4. while a suspicion lacks confirmations it is gossiped again every minimum suspicion time
   (a reminder), and
5. a node that holds the accused node dead answers an accusation with its verdict, sent to
   the sender and the accuser directly, at most once per probe interval each; so a reminder
   fetches the verdict from whoever has one;
6. when the timer declares the node dead, the verdict goes directly to every node heard
   accusing it, besides being gossiped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..wire import Dead, Suspect, encode_message
from .formulas import suspicion_confirmations, suspicion_timeout
from .health import Suspicion
from .nodes import NodeRecord, NodeState
from .outputs import Address, EventKind, Notice
from .timers import Timer

if TYPE_CHECKING:
    from .machine import Membership

__all__ = ["PEER_ACCUSER", "Suspicions"]

PEER_ACCUSER = ""
"""The accuser recorded for what a push/pull said: no node has this (empty) name."""


@dataclass(slots=True)
class _Running:
    suspicion: Suspicion
    #: What is gossiped again as a reminder (ours once our own probe failed too).
    accusation: Suspect
    timer: Timer
    reminder: Timer | None = None


class Suspicions:
    """The running suspicions of one membership, and the verdicts it has told others."""

    __slots__ = ("_answered", "_owner", "_running")

    def __init__(self, owner: Membership) -> None:
        self._owner = owner
        self._running: dict[str, _Running] = {}
        #: accused node -> endpoint -> when it was last told our verdict
        self._answered: dict[str, dict[Address, float]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._running

    def handle(
        self, suspect: Suspect, now: float, *, source: Address | None = None, learnt_from_peer: bool = False,
        verdict: bool = False,
    ) -> None:
        """A suspect message (``suspectNode``); see the module docstring for the flags' meaning.

        ``learnt_from_peer``: it comes from a push/pull (``from_node`` is this node, as in
        memberlist); ``verdict``: that push/pull said "dead"; ``source``: where the packet came from.
        """
        owner = self._owner
        node = owner.node_map.get(suspect.node)
        if node is None or suspect.incarnation < node.incarnation:
            return
        strict = owner.config.strict_memberlist
        from_peer = learnt_from_peer and not strict
        running = self._running.get(suspect.node)
        if verdict and not strict and (running is not None or node.state == NodeState.ALIVE) and node.name != owner.name:
            self._verdict(node, suspect, now, from_peer=True)
            return
        if running is not None:
            self._confirm(node, running, suspect, now, from_peer)
            return
        if node.state != NodeState.ALIVE:
            if node.dead_or_left() and not strict and not learnt_from_peer:
                self._answer(node, suspect, source, now)
            return
        if node.name == owner.name:
            owner.refute(node, suspect.incarnation)
            owner.notice(Notice(logging.WARNING, "refute", f"Refuting a suspect message (from: {suspect.from_node})"))
            return
        self._start(node, suspect, now, from_peer)

    def verdict(self, dead: Dead, now: float) -> bool:
        """A dead message from another node about a third (item 2): True if it was taken as a
        suspicion here, False if :meth:`Membership.dead_node` must handle it as memberlist does
        (``strict_memberlist``; a leave; a verdict about ourselves, refuted at once; a node we
        hold dead already, or an older incarnation, both ignored there)."""
        owner = self._owner
        if owner.config.strict_memberlist or dead.node in (dead.from_node, owner.name):
            return False
        node = owner.node_map.get(dead.node)
        if node is None or dead.incarnation < node.incarnation or node.dead_or_left():
            return False
        owner.stats["verdicts_as_suspicions"] += 1
        self._verdict(node, Suspect(dead.incarnation, dead.node, dead.from_node), now, from_peer=False)
        return True

    def clear(self, name: str) -> None:
        """The node changes state (alive again, dead, or reaped): stop its suspicion, forget whom we told."""
        running = self._running.pop(name, None)
        if running is not None:
            running.timer.cancel()
            if running.reminder is not None:
                running.reminder.cancel()
        self._answered.pop(name, None)

    # ------------------------------------------------------------------ internals

    def _start(self, node: NodeRecord, suspect: Suspect, now: float, from_peer: bool) -> None:
        owner = self._owner
        config = owner.config
        owner.broadcast(suspect.node, encode_message(suspect))
        node.incarnation = suspect.incarnation
        node.state = NodeState.SUSPECT
        node.state_change = now
        n = len(owner.nodes)
        expected = suspicion_confirmations(config.suspicion_mult, n)
        minimum = suspicion_timeout(config.suspicion_mult, n, config.probe_interval)
        maximum = config.suspicion_max_timeout_mult * minimum
        accuser = PEER_ACCUSER if from_peer else suspect.from_node
        suspicion = Suspicion.start(accuser, expected, minimum, maximum, now)
        suspicion.accused = accuser == owner.name
        if not from_peer:
            suspicion.accusers.add(accuser)
        running = _Running(suspicion, suspect, self._expiry(node, suspicion))
        if not config.strict_memberlist and expected >= 1:
            running.reminder = owner.timers.schedule(now + minimum, lambda t: self._remind(node.name, running, t))
        self._running[node.name] = running
        owner.stats["suspicions"] += 1
        owner.report(EventKind.SUSPECT, node)

    def _confirm(self, node: NodeRecord, running: _Running, suspect: Suspect, now: float, from_peer: bool) -> None:
        owner = self._owner
        suspicion = running.suspicion
        if from_peer:
            confirmer = owner.name
        else:
            confirmer = suspect.from_node
            suspicion.accusers.add(confirmer)
        own = suspect.from_node == owner.name and not from_peer
        if suspicion.confirm(confirmer, now):
            running.timer.cancel()
            running.timer = self._expiry(node, suspicion)
            owner.broadcast(suspect.node, encode_message(suspect))
        elif own and not suspicion.accused and not owner.config.strict_memberlist:
            # Our own probe failed too, but enough peers had confirmed already, so memberlist
            # would keep quiet; a node that heard none of their accusations hears ours.
            owner.broadcast(suspect.node, encode_message(suspect))
        if own:
            suspicion.accused = True
            running.accusation = suspect

    def _verdict(self, node: NodeRecord, suspect: Suspect, now: float, *, from_peer: bool) -> None:
        """Another node's verdict. About a node we hold alive: an accusation, an ordinary
        suspicion (the accused has the whole suspicion time to refute, and our own failed probe
        confirms it). About a node we suspect already: a confirmation that also ends the
        suspicion at the latest ``minimum`` after it started here (at once if that is past), so
        a node that is really dead is declared dead as soon as it could be by confirmations."""
        running = self._running.get(node.name)
        if running is None:
            self._start(node, suspect, now, from_peer)
            return
        suspicion = running.suspicion
        confirmer = PEER_ACCUSER if from_peer else suspect.from_node
        if not from_peer:
            suspicion.accusers.add(confirmer)
        before = suspicion.deadline
        if suspicion.confirm(confirmer, now):
            self._owner.broadcast(suspect.node, encode_message(suspect))
        suspicion.deadline = max(now, min(suspicion.deadline, suspicion.started + suspicion.minimum))
        suspicion.verdict |= suspicion.deadline < before
        if running.timer.when != suspicion.deadline:
            running.timer.cancel()
            running.timer = self._expiry(node, suspicion)

    def _remind(self, name: str, running: _Running, now: float) -> None:
        """Gossip an unconfirmed suspicion again: peers that missed it confirm, those with a verdict answer."""
        if self._running.get(name) is not running:
            return
        suspicion = running.suspicion
        if suspicion.confirmations >= suspicion.expected:
            running.reminder = None
            return
        owner = self._owner
        owner.stats["suspicion_reminders"] += 1
        owner.broadcast(name, encode_message(running.accusation))
        running.reminder = owner.timers.schedule(now + suspicion.minimum, lambda t: self._remind(name, running, t))

    def _answer(self, node: NodeRecord, suspect: Suspect, source: Address | None, now: float) -> None:
        """Tell whoever still accuses a node we hold dead (or left) what we concluded."""
        if suspect.incarnation > node.incarnation:
            return  # the accusation is newer than our verdict: the node came back since
        owner = self._owner
        targets = {source} if source is not None else set()
        accuser = owner.node_map.get(suspect.from_node)
        if accuser is not None and accuser.name != owner.name and not accuser.dead_or_left():
            targets.add(accuser.endpoint)
        told = self._answered.setdefault(node.name, {})
        from_node = node.name if node.state == NodeState.LEFT else owner.name
        message = encode_message(Dead(node.incarnation, node.name, from_node))
        for target in sorted(targets):
            if now - told.get(target, -1e18) < owner.config.probe_interval:
                continue
            told[target] = now
            owner.stats["verdicts_answered"] += 1
            owner.send_msg(target, message)

    def _expiry(self, node: NodeRecord, suspicion: Suspicion) -> Timer:
        owner = self._owner
        change = node.state_change
        name = node.name

        def expire(now: float) -> None:
            current = owner.node_map.get(name)
            if current is None or current.state != NodeState.SUSPECT or current.state_change != change:
                return
            owner.notice(Notice(logging.INFO, "failed", (
                f"Marking {name} as failed, suspect timeout reached ({suspicion.confirmations} peer confirmations"
                f"{', a verdict' if suspicion.verdict else ''})"
            )))
            dead = Dead(current.incarnation, name, owner.name)
            owner.dead_node(dead, now)
            if owner.config.strict_memberlist:
                return
            for accuser in sorted(suspicion.accusers - {owner.name, name, PEER_ACCUSER}):
                peer = owner.node_map.get(accuser)
                if peer is not None and not peer.dead_or_left():
                    owner.send_msg(peer.endpoint, encode_message(dead))

        return owner.timers.schedule(suspicion.deadline, expire)

