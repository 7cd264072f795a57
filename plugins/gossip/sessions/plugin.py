"""Cluster sessions for one broker: one owner per session, takeover across nodes, adoption of a dead node's sessions.

One `ClusterSessions` per broker is registered with that broker's plugin manager while the
gossip plugin starts. It stands on public hooks (`on_session_claim`, `on_started`) and Broker
calls (`session_moved`, `import_session`, `load_stored_session`), the data links and
membership, and — with ``[storage] backend = "redis"`` — the fenced store
(`hookmq.plugins.redis_store.fenced`), whose epochs make the store refuse a stale owner.

A CONNECT on this node (`on_session_claim`):

1. reads the client id's owner; if another live node owns it, asks that node over the link
   to end the session as a takeover would (DISCONNECT 0x8E, the will as on one node), flush
   its writes and let go (``TAKEOVER``, acknowledged once done);
2. claims the client id: a new epoch, this node the owner, in one script; if someone claimed
   in between, that node is asked to let go too (the latest CONNECT wins, as on one broker);
3. lets the engine attach, which reads the session the old owner flushed (session present).

Without a shared store the session's state itself travels back in a ``HANDOVER`` frame and is
imported here. When Redis cannot be reached a CONNECT that needs it (a persistent session)
is refused with 0x88 (v5) / 3 (v3.1.1), reported in ``$SYS/cluster/sessions/store`` and the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hookmq import hookimpl
from hookmq.mqtt.packets import Publish
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.mqtt.topics import parse_shared, topic_matches
from hookmq.ratelimit import LogLimiter
from hookmq.store.errors import StoreError
from hookmq.store.records import StoredMessage, SubscriptionRecord

from ..membership import EventKind
from ..routing.frames import FORWARD, Forward
from ..routing.frames import FrameError as RoutingFrameError
from ..routing.frames import decode as decode_routing
from .frames import (
    HANDOVER,
    KINDS,
    ORPHANED,
    TAKEOVER,
    FrameError,
    Handover,
    Orphaned,
    Takeover,
    decode,
    encode_handover,
    encode_orphaned,
    encode_takeover,
)
from .owners import adopter

__all__ = ["ClusterSessions", "SessionEvent"]

log = logging.getLogger("hookmq.plugins.gossip.sessions")
_limited = LogLimiter(log)

STORE_TOPIC = "$SYS/cluster/sessions/store"
#: Bytes of stored messages per ``ORPHANED`` frame (well under any link's frame bound).
ORPHANED_CHUNK = 262_144


def needs_store(client: Any, connect: Any) -> bool:
    """Whether the CONNECT keeps a session beyond its connection (then the shared store must hold it)."""
    if not connect.clean_start:
        return True
    if client.protocol.level == 5:
        return bool(connect.properties.session_expiry_interval)
    return False


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A session moved between nodes, for operators (the dashboard's live feed).

    ``kind`` is ``takeover`` (taken over here from ``node``), ``handed_over`` (this node's
    session handed to ``node``) or ``adoption`` (the sessions of failed or departed ``node``
    adopted here).
    """

    kind: str
    node: str
    client_ids: tuple[str, ...]


class ClusterSessions:
    """Ownership, takeover and adoption of this node's sessions (see the module docstring)."""

    def __init__(self, broker: Any, cluster: Any, links: Any, name: str, store: Any = None, *,
                 takeover_timeout: float = 5.0) -> None:
        self.broker = broker
        self.cluster = cluster
        self.links = links
        self.name = name
        #: The fenced shared store, or None (memory or SQLite: sessions live and die with their node).
        self.store = store
        self.takeover_timeout = takeover_timeout
        self.counts: Counter[str] = Counter()
        self.store_down = False
        self._store_state_published = False
        self._requests = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Handover]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: list[Callable[[], Any]] = []
        #: QoS 1/2 messages forwarded to a node that failed, handed back unacknowledged, by node.
        self._handed_back: dict[str, list[Forward]] = {}
        #: Messages other nodes sent us for the sessions of a failed node we adopt: dead -> cid -> messages.
        self._orphans: dict[str, dict[str, list[StoredMessage]]] = {}
        #: Nodes that have sent all they had for a failed node, and an event set at each report.
        self._reported: dict[str, set[str]] = {}
        self._report_event = asyncio.Event()
        #: Nodes membership reported failed or gone (and not back since).
        self._gone: set[str] = set()
        #: How long an adopter waits for the live nodes' handed-back messages before loading.
        self.orphan_wait = takeover_timeout
        self._listeners: list[Callable[[SessionEvent], None]] = []

    def on_event(self, callback: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with every takeover, handover and adoption here; returns the undo."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _tell(self, kind: str, node: str, client_ids: tuple[str, ...]) -> None:
        event = SessionEvent(kind, node, client_ids)
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # an observer's bug must not break a takeover
                log.exception("session event listener failed")

    # ------------------------------------------------------------------ lifespan

    async def start(self) -> None:
        """Listen to the links, membership and the store's refusals; say plainly what a node's death costs."""
        links = self.links
        for undo in (links.on_receive(self._receive), links.on_up(self._link_up), links.on_unacked(self._unacked)):
            if callable(undo):
                self._unsubscribe.append(undo)
        if self.cluster is not None:
            self._unsubscribe.append(self.cluster.on_event(self._member_event))
        if self.store is not None:
            self._unsubscribe.append(self.store.on_fenced(self._fenced))
            log.info("Cluster sessions: one owner per session, fenced by epoch in the shared Redis store")
        else:
            log.warning("Cluster sessions without a shared store: a takeover moves the session over the links "
                        "while its node lives, but persistent sessions live on one node and die with it "
                        "(set [storage] backend = \"redis\" to keep them)")

    async def stop(self) -> None:
        """Stop listening; cancel what is under way."""
        for undo in self._unsubscribe:
            with contextlib.suppress(Exception):
                undo()
        self._unsubscribe.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for waiter in self._waiting.values():
            waiter.cancel()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the claim of a CONNECT

    @hookimpl
    async def on_session_claim(self, client: Any, connect: Any) -> int | None:
        """Take the client id over from wherever it is, claim it, and let the engine attach it."""
        client_id = client.client_id
        if self.store is None:
            await self._takeover_everywhere(client_id, connect.clean_start)
            return None
        try:
            owner, epoch = await self.store.owner(client_id)
            if owner is not None and owner != self.name:
                await self._takeover(owner, client_id, connect.clean_start, epoch=epoch)
            claim = await self.store.claim(client_id, self.name)
        except StoreError as error:
            self._store_unavailable(error)
            if needs_store(client, connect):
                self.counts["refused_store_unavailable"] += 1
                return int(ReasonCode.SERVER_UNAVAILABLE)
            await self._takeover_everywhere(client_id, True)  # a clean session needs no store
            return None
        self._store_available()
        previous = claim.previous
        if previous is not None and previous != self.name and (previous, claim.previous_epoch) != (owner, epoch):
            # Another node claimed between our read and our claim: ours is the later one, it lets go.
            self.counts["claim_races"] += 1
            await self._takeover(previous, client_id, connect.clean_start, epoch=claim.previous_epoch)
        self.counts["claims"] += 1
        return None

    def _alive(self, node: str) -> bool:
        return self.cluster is None or self.cluster.member(node) is not None

    async def _takeover(self, node: str, client_id: str, clean_start: bool, want_state: bool = False,
                        epoch: int = 0) -> Handover | None:
        """Ask ``node`` to end and hand over ``client_id``'s session; None when it is gone or did not answer.

        A node whose link is down now (dead, partitioned, restarting) is not waited for: with
        a shared store our claim fences it, and it ends its copy when its writes are refused
        or when the link comes back (`verify_ownership`).
        """
        if not self._alive(node) or not self.links.is_up(node):
            self.counts["takeover_node_unreachable"] += 1
            return None
        request_id = next(self._requests)
        waiter: asyncio.Future[Handover] | None = None
        if want_state:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[request_id] = waiter
        try:
            acked = self.links.send(node, TAKEOVER,
                                    encode_takeover(request_id, client_id, clean_start, want_state, epoch),
                                    reliable=True)
            await asyncio.wait_for(acked, self.takeover_timeout)
            self.counts["takeovers_sent"] += 1
            if waiter is None:
                self._tell("takeover", node, (client_id,))  # the store named that node the owner
                return None
            answer = await asyncio.wait_for(waiter, self.takeover_timeout)
            if answer.state is not None:  # without a store, a session came back: there was one to take
                self._tell("takeover", node, (client_id,))
            return answer
        except (TimeoutError, Exception) as error:  # PeerGone, LinkOverloaded, RemoteFailure, a timeout
            self.counts["takeover_failed"] += 1
            _limited.log("takeover", logging.WARNING, "takeover of %s from node %s did not complete: %r",
                         client_id, node, error)
            return None
        finally:
            self._waiting.pop(request_id, None)

    async def _takeover_everywhere(self, client_id: str, clean_start: bool) -> None:
        """Without an owner to ask (no shared store): every live peer ends its copy; a state that comes back is imported."""
        peers = [node for node in self.links.peers() if self.links.is_up(node)]
        if not peers:
            return
        # A clean start discards whatever the old owner held: asking for it would only add the
        # HANDOVER frame's round trip (and the encoding of a state nobody imports).
        want_state = self.store is None and not clean_start
        if len(peers) == 1:  # one sibling (two workers): awaited here, without gather's task
            answers = [await self._takeover(peers[0], client_id, clean_start, want_state=want_state)]
        else:
            answers = await asyncio.gather(*(self._takeover(node, client_id, clean_start, want_state=want_state)
                                             for node in peers))
        states = [answer.state for answer in answers if answer is not None and answer.state is not None]
        if states and not clean_start:
            await self.broker.import_session(states[0])
            self.counts["sessions_moved_in"] += 1

    # ------------------------------------------------------------------ frames from other nodes

    def _receive(self, node: str, kind: int, body: bytes) -> Any:
        if kind not in KINDS:
            return None
        try:
            frame = decode(kind, body)
        except FrameError as error:
            self.counts["bad_frames"] += 1
            _limited.log("bad frame", logging.WARNING, "unreadable sessions frame of kind %d from node %s: %s",
                         kind, node, error)
            return None
        if isinstance(frame, Takeover):
            if self.store is None and not frame.want_state and not self.broker.holds_client_id(frame.client_id):
                # Nothing of that client id here and no CONNECT of it under way (the usual case of a
                # clean start): acknowledged at once, without a task, a lock or a log line.
                self.counts["takeovers_handled"] += 1
                return None
            return self._hand_over(node, frame)
        if isinstance(frame, Orphaned):
            self._orphaned(node, frame)
            return None
        waiter = self._waiting.get(frame.request_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(frame)
        return None

    async def _hand_over(self, node: str, frame: Takeover) -> None:
        """End the session here as a takeover would; the acknowledgement tells the new owner it may go on."""
        if self.store is not None:
            held = self.store.holds(frame.client_id)
            if held is not None and held > frame.epoch:
                self.counts["takeovers_refused_newer"] += 1  # a late request: our claim is the newer one
                return
        held_here = frame.client_id in self.broker.sessions
        state = await self.broker.session_moved(frame.client_id, frame.clean_start)  # flushed with our epoch
        if self.store is not None:
            self.store.forget_epoch(frame.client_id)
        self.counts["takeovers_handled"] += 1
        if held_here:
            self._tell("handed_over", node, (frame.client_id,))
            log.info("Session %s handed over to node %s%s", frame.client_id, node,
                     " (clean start: ended)" if frame.clean_start else "")
        if frame.want_state:
            sent = self.links.send(node, HANDOVER, encode_handover(frame.request_id, state), reliable=True)
            if sent is not None:
                sent.add_done_callback(lambda done: done.cancelled() or done.exception())

    # ------------------------------------------------------------------ stale owners

    def _fenced(self, client_id: str, carried: int, held: int) -> None:
        """The store refused our write: another node owns the session now; end our copy of it."""
        self.counts["fenced_writes"] += 1
        self._spawn(self._let_go_if_stale(client_id))

    async def _let_go_if_stale(self, client_id: str) -> None:
        store = self.store
        if store is None or store.holds(client_id) is not None:
            return  # claimed again here meanwhile
        if client_id not in self.broker.sessions:
            return
        log.info("Session %s is owned by another node now (its epoch is newer): ending it here", client_id)
        self.counts["stale_sessions_ended"] += 1
        await self.broker.session_moved(client_id, False)

    def _link_up(self, node: str) -> None:
        """A link (re)connected, perhaps after a partition: settle who owns our connected sessions."""
        if self.store is not None:
            self._spawn(self.verify_ownership())

    async def verify_ownership(self) -> int:
        """End every local session whose client id a newer epoch holds elsewhere; returns how many."""
        store = self.store
        if store is None:
            return 0
        ended = 0
        for client_id in list(self.broker.sessions):
            held = store.holds(client_id)
            if held is None:
                continue
            try:
                owner, epoch = await store.owner(client_id)
            except StoreError:
                return ended
            if epoch > held and owner != self.name:
                store.forget_epoch(client_id)
                log.info("Session %s: node %s holds a newer epoch (%d > %d); ending it here", client_id, owner,
                         epoch, held)
                await self.broker.session_moved(client_id, False)
                ended += 1
        self.counts["stale_sessions_ended"] += ended
        return ended

    # ------------------------------------------------------------------ sessions at start, and a dead node's

    @hookimpl
    async def on_started(self, broker: Any) -> None:
        """Keep only the stored sessions this node owns (every node reads them all at start)."""
        if broker is not self.broker or self.store is None:
            return
        try:
            owners = await self.store.owners()
        except StoreError as error:
            self._store_unavailable(error)
            return
        for client_id in list(self.broker.sessions):
            if client_id in self.broker.connected:
                continue
            owner, epoch = owners.get(client_id, (None, 0))
            if owner == self.name:
                self.store.adopt(client_id, epoch)  # a restart under the same name: still ours
            elif owner is None and adopter(client_id, self._live_names()) == self.name:
                if await self.store.adopt_from(client_id, self.name, "") is None:
                    await self.broker.session_moved(client_id, False)
            else:
                await self.broker.session_moved(client_id, False)

    def _live_names(self) -> list[str]:
        if self.cluster is None:
            return [self.name]
        return [member.name for member in self.cluster.members()]

    def _member_event(self, event: Any) -> None:
        name = event.member.name
        if name == self.name:
            return
        if event.kind in (EventKind.DEAD, EventKind.LEFT):
            self._gone.add(name)
            if self.store is not None:
                self._spawn(self.adopt_sessions_of(name))
        elif event.kind == EventKind.JOIN:
            self._gone.discard(name)

    def _unacked(self, node: str, frames: list[tuple[int, bytes]]) -> None:
        """``node`` failed holding these frames: keep its QoS 1/2 messages for the sessions it owned."""
        if self.store is None:
            return
        held = self._handed_back.setdefault(node, [])
        for kind, body in frames:
            if kind != FORWARD:
                continue
            try:
                frame = decode_routing(kind, body)
            except RoutingFrameError:
                continue
            if isinstance(frame, Forward) and frame.publish.qos > 0:
                held.append(frame)

    def _orphaned(self, node: str, frame: Orphaned) -> None:
        by_client = self._orphans.setdefault(frame.dead, {})
        for client_id, message in frame.messages:
            by_client.setdefault(client_id, []).append(message)
        if frame.last:
            self._reported.setdefault(frame.dead, set()).add(node)
            self._report_event.set()

    async def adopt_sessions_of(self, dead: str) -> list[str]:
        """Membership declared ``dead`` failed: hand its unacknowledged messages to the adopters of its
        sessions, and adopt the sessions the rule gives this node (with the messages the others sent
        for them queued first); returns the client ids adopted here."""
        store = self.store
        if store is None:
            return []
        held = self._handed_back.pop(dead, [])
        try:
            owners = await store.owners()
        except StoreError as error:
            self._store_unavailable(error)
            return []
        live = [name for name in self._live_names() if name != dead and name not in self._gone]
        # The sessions of every node membership reported failed or gone (two failures close
        # together: the first one's sessions the rule gave to the second are handed on now).
        gone = self._gone | {dead}
        owner_of = {cid: owner for cid, (owner, _) in owners.items() if owner in gone}
        orphans = sorted(cid for cid, owner in owner_of.items() if owner == dead)
        await self._send_orphaned(dead, held, orphans, live)
        mine = [cid for cid in sorted(owner_of) if adopter(cid, live) == self.name]
        if not mine:
            return []
        await self._reports_from(dead, [name for name in live if name != self.name])
        queued = self._orphans.pop(dead, {})
        settings = self.broker.config.mqtt
        adopted = []
        for client_id in mine:
            if await store.adopt_from(client_id, self.name, owner_of[client_id] or "") is None:
                continue  # the client reconnected somewhere first
            already = await self._held_identities(client_id) if queued.get(client_id) else set()
            for message in queued.get(client_id, []):
                if message.identity is not None and message.identity in already:
                    # The dead node had stored it before it could acknowledge the forward: queued
                    # again it would reach the client twice (at QoS 2 under a new packet id).
                    self.counts["orphaned_messages_already_held"] += 1
                    continue
                await store.queue_append(client_id, message, settings.max_queued_messages, settings.queue_drop_policy)
                self.counts["orphaned_messages_queued"] += 1
            if await self.broker.load_stored_session(client_id):
                adopted.append(client_id)
        self._reported.pop(dead, None)
        if adopted:
            self.counts["sessions_adopted"] += len(adopted)
            log.info("Adopted %d session(s) of failed node %s", len(adopted), dead)
            self._tell("adoption", dead, tuple(adopted))
        return adopted

    async def _held_identities(self, client_id: str) -> set[bytes]:
        """Identities of the messages the store holds for ``client_id`` (inflight, queued, recently completed)."""
        try:
            outgoing = await self.store.load_outgoing(client_id)
            queued = await self.store.queue_peek(client_id)
            completed = await self.store.load_completed(client_id)
        except StoreError:
            return set()
        messages = [record.message for record in outgoing] + queued
        return {message.identity for message in messages if message.identity is not None} | set(completed)

    async def _send_orphaned(self, dead: str, held: list[Forward], orphans: list[str], live: list[str]) -> None:
        """Each handed-back message, in the form each matching orphaned session takes it, to that session's adopter."""
        outbox: dict[str, list[tuple[str, StoredMessage]]] = {name: [] for name in live}
        if held and orphans:
            now = time.time()
            for client_id in orphans:
                try:
                    subscriptions = await self.store.load_subscriptions(client_id)
                except StoreError:
                    continue
                for frame in held:
                    stored = _for_session(frame, client_id, subscriptions, now)
                    if stored is not None:
                        outbox[adopter(client_id, live) or self.name].append((client_id, stored))
        for node, messages in outbox.items():
            if node == self.name:
                by_client = self._orphans.setdefault(dead, {})
                for client_id, message in messages:
                    by_client.setdefault(client_id, []).append(message)
                continue
            for chunk, last in _chunks(messages):
                sent = self.links.send(node, ORPHANED, encode_orphaned(dead, last, chunk), reliable=True)
                if sent is not None:
                    sent.add_done_callback(lambda done: done.cancelled() or done.exception())
            self.counts["orphaned_messages_sent"] += len(messages)

    async def _reports_from(self, dead: str, nodes: list[str]) -> None:
        """Wait (at most ``orphan_wait``) until ``nodes`` have sent what they held for ``dead``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.orphan_wait
        while not set(nodes) <= self._reported.get(dead, set()):
            left = end - loop.time()
            if left <= 0:
                missing = sorted(set(nodes) - self._reported.get(dead, set()))
                log.warning("adopting the sessions of %s without word from %s", dead, ", ".join(missing))
                return
            self._report_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._report_event.wait(), left)

    # ------------------------------------------------------------------ the store's health

    def _store_unavailable(self, error: BaseException) -> None:
        if not self.store_down:
            self.store_down = True
            log.error("Cluster sessions: the shared store is unavailable (%s); persistent CONNECTs are refused "
                      "with Server unavailable until it is back", error)
        self._publish_store_state("unavailable")

    def _store_available(self) -> None:
        if self.store_down:
            self.store_down = False
            log.info("Cluster sessions: the shared store is reachable again")
            self._publish_store_state("available")
        elif not self._store_state_published:
            self._publish_store_state("available")  # once, so `$SYS` shows the state from the start

    def _publish_store_state(self, state: str) -> None:
        self._store_state_published = True
        with contextlib.suppress(Exception):
            self.broker.publish_system(STORE_TOPIC, state.encode())


def _for_session(frame: Forward, client_id: str, subscriptions: list[SubscriptionRecord],
                 now: float) -> StoredMessage | None:
    """The message as a session holding ``subscriptions`` queues it (None when none of them matches)."""
    publish = frame.publish
    best: SubscriptionRecord | None = None
    identifiers: list[int] = []
    for subscription in subscriptions:
        group, topic_filter = parse_shared(subscription.topic_filter)
        if group is not None or not topic_matches(topic_filter, publish.topic):
            continue
        if subscription.options.no_local and frame.origin == client_id:
            continue
        if best is None or subscription.options.qos > best.options.qos:
            best = subscription
        if subscription.identifier is not None:
            identifiers.append(subscription.identifier)
    if best is None:
        return None
    interval = publish.properties.message_expiry_interval
    expiry_at = now + interval if interval is not None else None
    props = replace(publish.properties, subscription_identifiers=tuple(identifiers), message_expiry_interval=None)
    queued = Publish(publish.topic, publish.payload, min(publish.qos, best.options.qos),
                     publish.retain and best.options.retain_as_published, False, 0, props)
    return StoredMessage(queued, now, expiry_at, frame.identity)


def _chunks(messages: list[tuple[str, StoredMessage]]) -> list[tuple[list[tuple[str, StoredMessage]], bool]]:
    """The messages in frames of about ``ORPHANED_CHUNK`` bytes each; the last one flagged (one, empty, if none)."""
    chunks: list[list[tuple[str, StoredMessage]]] = [[]]
    size = 0
    for client_id, message in messages:
        weight = len(message.publish.payload) + len(message.publish.topic) + len(client_id) + 64
        if chunks[-1] and size + weight > ORPHANED_CHUNK:
            chunks.append([])
            size = 0
        chunks[-1].append((client_id, message))
        size += weight
    return [(chunk, index == len(chunks) - 1) for index, chunk in enumerate(chunks)]
