"""Messages between nodes: sent where `on_forward` says, taken in through `Broker.inject` only.

Sending: a message is encoded once (its MQTT 5 form, the remaining expiry in it) and queued on
the link of each destination it matched, once per node; QoS 0 unreliable, QoS 1/2 reliable.
For QoS 1/2 a future completes when every node it went to acknowledged it (after injecting it
there), and the publisher's PUBACK/PUBREC waits for it.

Back-pressure: a QoS 1/2 message for a node whose link outbox is full (``has_room`` False)
is not refused: it waits in a queue of that node (so order per node holds), and a drainer
sends from it as ``wait_for_room`` says there is room again. Its publisher's PUBACK/PUBREC
waits meanwhile, so the publisher's Receive Maximum stops it; memory stays bounded by the
outbox bound plus the publishers' in-flight windows. A node that goes while messages wait
for it has them re-routed as frames the link handed back.

When a node fails or leaves, the link layer hands back its unacknowledged frames: each
message goes to the current routes instead — a share group's message to another member (here
or on another node), and nodes that have gained a matching route since (the dead node's
sessions adopted elsewhere) — and the publisher's acknowledgement waits for those instead.

Receiving: a FORWARD frame becomes one `Broker.inject` (local sessions only, `$` topics
refused there), started at once, in the order frames arrive, so order per publisher holds;
it becomes a task only if it has to wait (`eager.start_eagerly`). A share group the sender
chose this node for but that has no member here any more goes on to a node that has one (at
most `MAX_HOPS` times).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hookmq import Message
from hookmq.mqtt.errors import ProtocolError
from hookmq.ratelimit import LogLimiter

from ..link import PeerGone
from .eager import start_eagerly
from .frames import FORWARD, Forward, FrameError, decode, encode_forward, encode_publish_body
from .links import DataLinks
from .remote import RemoteRoutes

__all__ = ["MAX_HOPS", "Forwarder"]

log = logging.getLogger("hookmq.plugins.gossip.routing")
_limited = LogLimiter(log)

#: How many times a share group's message may be passed on by nodes that lost their members.
MAX_HOPS = 3

ShareKey = tuple[str, str]


@dataclass(slots=True)
class _Pending:
    """A QoS 1/2 message forwarded and not yet acknowledged by every node it went to."""

    forward_id: int
    done: asyncio.Future[None]
    #: Nodes it was sent to (ever), and those whose acknowledgement is still awaited.
    sent: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    #: Nodes whose frames were handed back (their futures no longer count).
    handed_back: set[str] = field(default_factory=set)


class Forwarder:
    """`on_forward`'s work, a FORWARD frame's delivery, and re-routing of a dead node's frames."""

    def __init__(self, broker: Any, links: DataLinks, remote: RemoteRoutes, name: str) -> None:
        self.broker = broker
        self.links = links
        self.remote = remote
        self.name = name
        self._next_id = 0
        #: Random per process: with the forward id it makes each forwarded message's identity unique cluster-wide.
        self._boot = os.urandom(8)
        self._pending: dict[int, _Pending] = {}
        self.forwarded: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()
        #: Per node, QoS 1/2 bodies waiting for room in its link outbox (back-pressure), oldest first.
        self._queued: dict[str, deque[tuple[_Pending, bytes]]] = {}
        self._drainers: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------ sending

    def forward(self, message: Message, destinations: dict[str, tuple[ShareKey, ...]]) -> asyncio.Future[None] | None:
        """Queue ``message`` to each destination once; QoS 1/2: the future of every node's acknowledgement."""
        now = time.time()
        if message.expired(now):
            return None
        publish, _ = message.wire(5, message.qos, message.retain, (), now)
        if not message.qos:
            for node, shares in destinations.items():
                try:
                    self.links.send(node, FORWARD, encode_forward(0, message.origin, shares, 0, publish), reliable=False)
                except ValueError as error:  # larger than the link takes: as a client's oversized packet, dropped
                    self._too_large(node, error)
                    continue
                self.forwarded[node] += 1
            return None
        self._next_id += 1
        pending = _Pending(self._next_id, asyncio.get_running_loop().create_future())
        identity = message.identity or self._boot + pending.forward_id.to_bytes(8, "big")
        hops = 1 if message.redelivered else 0  # a publisher's resend after a crash: receivers skip who holds it
        for node, shares in destinations.items():
            self._offer(pending, node, encode_forward(pending.forward_id, message.origin, shares, hops, publish, identity))
        return self._settle(pending)

    def _offer(self, pending: _Pending, node: str, body: bytes) -> None:
        """Send a QoS 1/2 body to ``node`` now, or queue it behind others while its link is full."""
        if node in self._queued or not self.links.has_room(node, len(body)):
            self._queue(pending, node, body)
        else:
            self._send_reliable(pending, node, body)

    def waiting_for_room(self, node: str | None = None) -> int:
        """How many QoS 1/2 messages wait for room in a link outbox (to ``node``, or to any)."""
        if node is not None:
            return len(self._queued.get(node, ()))
        return sum(len(queue) for queue in self._queued.values())

    def _queue(self, pending: _Pending, node: str, body: bytes) -> None:
        """The link to ``node`` is full: hold the message (its publisher's acknowledgement waits)."""
        pending.sent.add(node)
        pending.waiting.add(node)
        self._pending[pending.forward_id] = pending
        self._queued.setdefault(node, deque()).append((pending, body))
        self.stats["room_waits"] += 1
        if node not in self._drainers:
            self._drainers[node] = asyncio.get_running_loop().create_task(self._drain(node))

    async def _drain(self, node: str) -> None:
        """Send what waits for ``node`` as room comes, in order; re-route it if the node goes."""
        queue = self._queued[node]
        try:
            while queue:
                pending, body = queue[0]
                if not self.links.has_room(node, len(body)):
                    if await self.links.wait_for_room(node, len(body)):
                        continue
                    self._gone_while_queued(node)  # dead, left or stopping: its messages go elsewhere
                    return
                queue.popleft()
                pending.waiting.discard(node)
                self._send_reliable(pending, node, body)
                self._settle(pending)
        finally:
            self._drainers.pop(node, None)
            if not queue:
                self._queued.pop(node, None)

    def _gone_while_queued(self, node: str) -> None:
        queue = self._queued.pop(node, deque())
        self.handed_back(node, [(FORWARD, body) for _, body in queue])

    async def close(self) -> None:
        """Stop the drainers (the broker is stopping); what waited is not acknowledged to its publishers."""
        drainers = list(self._drainers.values())
        for task in drainers:
            task.cancel()
        await asyncio.gather(*drainers, return_exceptions=True)
        for queue in self._queued.values():
            for pending, _ in queue:
                if not pending.done.done():
                    pending.done.set_exception(ConnectionError("this node is stopping"))
        self._queued.clear()

    def _too_large(self, node: str, error: ValueError) -> None:
        self.stats["too_large"] += 1
        _limited.log("too large", logging.WARNING, "a message could not be forwarded to %s: %s", node, error)

    def _send_reliable(self, pending: _Pending, node: str, body: bytes) -> None:
        pending.sent.add(node)
        try:
            future = self.links.send(node, FORWARD, body, reliable=True)
        except ValueError as error:
            self._too_large(node, error)
            future = asyncio.get_running_loop().create_future()
            future.set_exception(error)
        self.forwarded[node] += 1
        if future is None:
            self.stats["unsendable"] += 1  # no link to that node (it is leaving): nothing will acknowledge
            return
        pending.waiting.add(node)
        self._pending[pending.forward_id] = pending
        future.add_done_callback(partial(self._acknowledged, pending, node))

    def _settle(self, pending: _Pending) -> asyncio.Future[None]:
        if not pending.waiting and not pending.done.done():
            pending.done.set_result(None)
            self._pending.pop(pending.forward_id, None)
        return pending.done

    def _acknowledged(self, pending: _Pending, node: str, future: asyncio.Future[Any]) -> None:
        if node in pending.handed_back or pending.done.done():
            return
        error = None if future.cancelled() else future.exception()
        if isinstance(error, PeerGone):
            # The node is dead or left (its held frames, if any, were handed back and re-routed):
            # its subscribers are gone from the cluster, as a subscriber that left one broker.
            self.stats["peer_gone"] += 1
            error = None
        elif future.cancelled() or error is not None:
            self.stats["forward_failed"] += 1
            self._pending.pop(pending.forward_id, None)
            pending.done.set_exception(ConnectionError(f"node {node} did not acknowledge: {error or 'cancelled'}"))
            return
        pending.waiting.discard(node)
        self._settle(pending)

    # ------------------------------------------------------------------ a node's frames handed back

    def handed_back(self, node: str, frames: list[tuple[int, bytes]]) -> None:
        """``node`` failed or left holding these frames: re-route its messages to the current routes."""
        for kind, body in frames:
            if kind != FORWARD:
                continue
            try:
                frame = decode(kind, body)
            except FrameError:
                continue
            assert isinstance(frame, Forward)
            pending = self._pending.get(frame.forward_id)
            if pending is not None:
                pending.handed_back.add(node)
                pending.waiting.discard(node)
            self.stats["rerouted"] += 1
            self._reroute(frame, node, pending)
            if pending is not None:
                self._settle(pending)

    def _reroute(self, frame: Forward, dead: str, pending: _Pending | None) -> None:
        publish = frame.publish
        sent = pending.sent if pending is not None else {dead}
        scratch = pending or _Pending(0, asyncio.get_running_loop().create_future())
        body_of = partial(self._body, frame)
        # Nodes that have gained a matching route since (the dead node's sessions adopted there).
        for node in self._route_nodes(publish.topic) - sent - {dead}:
            self._offer(scratch, node, body_of(()))
        for key in frame.shares:
            holder = self._share_holder(key, publish.topic, exclude={dead})
            if holder is None:
                self._inject_share(scratch, frame, key)
            else:
                self._offer(scratch, holder, body_of((key,)))
        if pending is None:
            self._settle(scratch)

    def _body(self, frame: Forward, shares: tuple[ShareKey, ...]) -> bytes:
        return encode_forward(frame.forward_id, frame.origin, shares, frame.hops + 1, encode_publish_body(frame.publish),
                              frame.identity)

    def _route_nodes(self, topic: str) -> set[str]:
        matches = self.broker.trie.match(topic)
        return {destination for entry in matches.direct if (destination := getattr(entry, "destination", None))}

    def _share_holder(self, key: ShareKey, topic: str, exclude: set[str]) -> str | None:
        """The remote node with most members of ``key`` (None when this node has members, or nobody has)."""
        if self._has_local_member(key, topic):
            return None
        holders = {node: count for node, count in self.remote.share_holders(key).items() if node not in exclude}
        return max(holders, key=lambda node: holders[node]) if holders else None

    def _has_local_member(self, key: ShareKey, topic: str) -> bool:
        members = self.broker.trie.match(topic).shared.get(key, ())
        return any(getattr(member, "destination", None) is None for member in members)

    def _inject_share(self, pending: _Pending, frame: Forward, key: ShareKey) -> None:
        marker = f"local:{key[0]}/{key[1]}"
        pending.waiting.add(marker)
        self._pending.setdefault(pending.forward_id, pending)
        task = asyncio.get_running_loop().create_task(
            self.broker.inject(frame.publish, origin=frame.origin, shares=(key,), identity=frame.identity,
                               redelivered=True))
        task.add_done_callback(partial(self._acknowledged, pending, marker))

    # ------------------------------------------------------------------ receiving

    def receive(self, node: str, frame: Forward) -> Awaitable[None] | None:
        """Deliver a forwarded message to local sessions, started now (in frame order); returns what
        the acknowledgement waits for, or None when the delivery already finished (the usual case)."""
        self.received[node] += 1
        return start_eagerly(self._deliver(node, frame))

    async def _deliver(self, node: str, frame: Forward) -> None:
        try:
            # hops > 0: sent again (re-routed after a node's crash, or passed on): skip who holds it already.
            result = await self.broker.inject(frame.publish, origin=frame.origin, shares=frame.shares,
                                              identity=frame.identity, redelivered=frame.hops > 0)
        except ProtocolError as error:  # a `$` or invalid topic: a peer cannot forge this broker's $SYS
            self.stats["refused"] += 1
            _limited.log("refused forward", logging.WARNING, "refused a message from node %s: %s", node, error)
            return
        if result.unplaced:
            await self._pass_on(node, frame, result.unplaced)

    async def _pass_on(self, sender: str, frame: Forward, unplaced: tuple[ShareKey, ...]) -> None:
        """Share groups chosen for this node with no member left here go to a node that has one."""
        if frame.hops >= MAX_HOPS:
            self.stats["share_unplaced"] += len(unplaced)
            return
        futures = []
        for key in unplaced:
            holders = self.remote.share_holders(key)
            holders.pop(self.name, None)
            if not holders:
                self.stats["share_unplaced"] += 1
                continue
            node = max(holders, key=lambda name: holders[name])
            body = self._body(frame, (key,))
            reliable = frame.publish.qos > 0
            if reliable and not self.links.has_room(node, len(body)):
                await self.links.wait_for_room(node, len(body))  # and our acknowledgement to the sender waits
            future = self.links.send(node, FORWARD, body, reliable=reliable)
            self.forwarded[node] += 1
            if future is not None:
                futures.append(future)
        if futures:
            await asyncio.gather(*futures, return_exceptions=True)
