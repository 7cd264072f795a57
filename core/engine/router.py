"""Routing: which sessions and which plugin-added destinations a message goes to, in one trie match.

The router owns the subscription trie. Local sessions' subscriptions live in it, and so do the
routes a plugin adds for destinations outside this broker (a cluster plugin's other nodes):
a route is a `RouteEntry`, keyed in the trie by a name no MQTT client id can take (it starts
with U+0000, which the codec refuses in every string). One match per message therefore
covers both: matching sessions get the message through the delivery part, and the matching
destinations (each once, however many of its filters matched) are handed with the message to
the plugins' `on_forward` hook. Shared subscriptions pick one member per group, local or
remote, in turn (or as `on_select_share_member` chooses).

State owned: the trie (local subscriptions and routes), the turn of each share group, and the
names of the destinations with routes. Who changes it: local subscriptions change only through
`subscribe`/`unsubscribe`/`install`/`remove_all`/`forget` (called by the connection handler
and the session lifecycle), which also fire the interest hooks; routes change only through the
Broker API (`add_route`, `remove_route`, `remove_destination`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..hooks import RejectPublish
from ..mqtt.packets import SubscriptionOptions
from ..mqtt.reason_codes import ReasonCode
from ..mqtt.topics import validate_topic_filter
from ..mqtt.trie import SubscriberEntry, SubscriptionTrie
from ..ratelimit import LogLimiter
from .message import Message

if TYPE_CHECKING:
    from ..hooks import HookFacade
    from ..mqtt.packets import Publish
    from .client import Client
    from .delivery import Delivery
    from .persistence import Persistence
    from .registry import SessionRegistry
    from .retained import RetainedMessages
    from .session import Session, ShareKey
    from .settings import MqttSettings
    from .stats import Stats

log = logging.getLogger("hookmq.broker")
#: A plugin's mistake repeats per message: logged a bounded number of times.
_plugin_errors = LogLimiter(logging.getLogger("hookmq.hooks"))

#: Trie keys of routes start with this: U+0000 is refused in every MQTT string, so no client id has it.
ROUTE_KEY_PREFIX = "\x00"

#: A route asks for everything as published: the receiving side applies each subscriber's options.
_ROUTE_OPTIONS = SubscriptionOptions(qos=2, no_local=False, retain_as_published=True, retain_handling=0)

#: Destination → the share groups it must serve (empty: its ordinary subscriptions only).
Destinations = dict[str, tuple["ShareKey", ...]]


@dataclass(slots=True)
class RouteEntry(SubscriberEntry):
    """A plugin-added destination's interest in a topic filter (``$share/<group>/…`` for a share group).

    ``destination`` is the name the plugin gave (a node, for a cluster plugin); ``client_id``
    is the route's key in the trie, which no MQTT client can have.
    """

    destination: str = ""


@dataclass(frozen=True, slots=True)
class InjectResult:
    """What `Broker.inject` did: how many local sessions took the message, and share groups it could not place."""

    delivered: int
    #: Share groups the sender asked this broker to serve that have no local member here (any more).
    unplaced: tuple[ShareKey, ...] = ()
    #: Sessions a redelivered message skipped because they already held it (same identity).
    already_held: int = 0


class Router:
    """The subscription trie and what a message does once it is admitted: retain, route, forward."""

    #: The hooks a client's PUBLISH may wait for in `publish_from`; while none is implemented,
    #: `publish_now` does the same without a coroutine.
    PUBLISH_HOOKS: ClassVar[frozenset[str]] = frozenset(
        {"on_publish", "on_published", "on_select_subscribers", "on_retain_message"})

    __slots__ = (
        "_destinations", "_forward", "_route_count", "_sessions", "_share_turn", "connected", "delivery",
        "has_destinations", "hooks", "persistence", "retained", "settings", "stats", "trie",
    )

    def __init__(self, settings: MqttSettings, stats: Stats, registry: SessionRegistry, delivery: Delivery,
                 persistence: Persistence, retained: RetainedMessages, hooks: HookFacade) -> None:
        self.settings = settings
        self.stats = stats
        self._sessions = registry.sessions
        self.connected = registry.connected
        self.delivery = delivery
        self.persistence = persistence
        self.retained = retained
        self.hooks = hooks
        self.trie = SubscriptionTrie()
        self._share_turn: dict[ShareKey, int] = {}
        #: Route key → destination name, for every destination holding routes.
        self._destinations: dict[str, str] = {}
        self._route_count = 0
        #: Whether any destination holds routes (a plain attribute: the message path reads it).
        self.has_destinations = False
        #: Destinations matched during one synchronous routing pass (None when there were none).
        self._forward: Destinations | None = None

    # ------------------------------------------------------------------ publishing

    async def publish_from(self, client: Client, packet: Publish, acks: list[Awaitable[Any]] | None = None,
                           identity: bytes | None = None, redelivered: bool = False) -> int:
        """Route a client's PUBLISH after the `on_publish` hook; returns the ack reason code.

        ``acks`` (when given) collects what forwarding plugins returned for the publisher's
        acknowledgement to wait on. ``identity`` names the message cluster-wide; a
        ``redelivered`` one (a publisher's resend after its node's crash) skips the sessions,
        here and on other nodes, that hold a copy with that identity.
        """
        hooks = self.hooks
        if hooks.enabled("on_publish"):
            try:
                packet = await hooks.transform("on_publish", "packet", client=client, packet=packet)
            except RejectPublish as rejected:
                return rejected.reason_code
        self.stats.messages_received += 1
        message = Message.from_publish(packet, client.client_id, time.time(), self.settings.max_message_expiry)
        if identity is not None:
            message.identity, message.redelivered = identity, redelivered
        delivered = await self.publish(client, message, acks)
        if hooks.enabled("on_published"):
            await hooks.notify("on_published", client=client, packet=packet)
        return ReasonCode.SUCCESS if delivered else ReasonCode.NO_MATCHING_SUBSCRIBERS

    async def publish(self, client: Any, message: Message, acks: list[Awaitable[Any]] | None = None) -> int:
        """Store a retained message if flagged, then route; returns sessions and destinations reached.

        Every message from a client, a will or the Broker API passes here, so a `$` topic is
        dropped here whatever a hook turned it into: only the broker writes `$SYS`, and it does
        so without this path. (Messages from elsewhere enter through `inject`, which refuses
        `$` topics before they get this far.)
        """
        if message.topic.startswith("$"):
            log.warning("dropped a message to the reserved topic %r", message.topic)
            return 0
        hooks = self.hooks
        if message.retain and self.settings.retain_available:
            stored = self.retained.store(message)
            self.persistence.retained(message, stored)
            if hooks.enabled("on_retain_message"):
                await hooks.notify("on_retain_message", client=client, packet=message.to_publish(message.qos, True),
                                   stored=stored, version=self.retained.version(message.topic))
        if hooks.enabled("on_select_subscribers"):
            return await self._route_selected(client, message, acks, forward=True, shares=None)
        return self.route(message, acks)

    def publish_now(self, client: Client, packet: Publish, acks: list[Awaitable[Any]] | None = None,
                    identity: bytes | None = None, redelivered: bool = False) -> int:
        """`publish_from` without awaiting: for when none of `Router.PUBLISH_HOOKS` is implemented.

        The connection handler calls it from the read event itself (no coroutine per
        message); it does what `publish_from` and `publish` do, with the hooks left out
        because nobody implements them.
        """
        self.stats.messages_received += 1
        message = Message.from_publish(packet, client.client_id, time.time(), self.settings.max_message_expiry)
        if identity is not None:
            message.identity, message.redelivered = identity, redelivered
        if message.topic.startswith("$"):
            log.warning("dropped a message to the reserved topic %r", message.topic)
            return ReasonCode.NO_MATCHING_SUBSCRIBERS
        if message.retain and self.settings.retain_available:
            self.persistence.retained(message, self.retained.store(message))
        return ReasonCode.SUCCESS if self.route(message, acks) else ReasonCode.NO_MATCHING_SUBSCRIBERS

    def route(self, message: Message, acks: list[Awaitable[Any]] | None = None) -> int:
        """Deliver to every matching subscription and destination; returns how many were reached."""
        matches = self.trie.match(message.topic)
        delivered = 0
        direct = matches.direct
        if direct and message.redelivered and message.identity is not None:
            direct = self._not_holding(direct, message.identity)
        if direct:
            if len(direct) == 1:
                entry = direct[0]
                if not (entry.options.no_local and entry.client_id == message.origin):
                    delivered = self._deliver_entry(entry, message)
            else:
                delivered = self._deliver_overlapping(direct, message, True)
        if matches.shared:
            for key, members in matches.shared.items():
                delivered += self._deliver_shared(key, members, message, None, True)
        if self._forward is not None:
            delivered += self._flush_forward(message, acks)
        return delivered

    def route_local(self, message: Message) -> int:
        """Deliver to the matching local sessions only (`$SYS` figures stay on their broker)."""
        matches = self.trie.match(message.topic)
        delivered = self._deliver_overlapping(matches.direct, message, False) if matches.direct else 0
        for key, members in matches.shared.items():
            delivered += self._deliver_shared(key, members, message, None, False)
        return delivered

    async def inject(self, message: Message, shares: tuple[ShareKey, ...] = (),
                     redelivered: bool = False) -> InjectResult:
        """Deliver a message from elsewhere to local sessions only (never to a destination).

        Ordinary subscriptions all get it; of the share groups, only those in ``shares``, each
        to one local member. The retained set is left alone. A ``redelivered`` message with an
        identity skips the sessions that already hold it (its first delivery reached them).
        """
        held = 0
        if self.hooks.enabled("on_select_subscribers"):
            delivered = await self._route_selected(None, message, None, forward=False, shares=shares)
        else:
            matches = self.trie.match(message.topic)
            direct = matches.direct
            if redelivered and message.identity is not None and direct:
                kept = self._not_holding(direct, message.identity)
                held, direct = len(direct) - len(kept), kept
            delivered = self._deliver_overlapping(direct, message, False) if direct else 0
            if shares:
                for key in shares:
                    members = matches.shared.get(key)
                    if members:
                        delivered += self._deliver_shared(key, members, message, None, False)
        unplaced = tuple(key for key in shares if not self._has_local_member(key, message.topic)) if shares else ()
        return InjectResult(delivered, unplaced, held)

    def _not_holding(self, entries: list[SubscriberEntry], identity: bytes) -> list[SubscriberEntry]:
        """The entries whose session does not hold a message with ``identity`` already."""
        sessions = self._sessions
        kept = []
        for entry in entries:
            session = sessions.get(entry.client_id)
            if session is not None and session.holds(identity):
                continue
            kept.append(entry)
        return kept

    def _has_local_member(self, key: ShareKey, topic: str) -> bool:
        members = self.trie.match(topic).shared.get(key, ())
        return any(member.client_id in self._sessions for member in members)

    async def _route_selected(self, client: Any, message: Message, acks: list[Awaitable[Any]] | None,
                              forward: bool, shares: tuple[ShareKey, ...] | None) -> int:
        """Routing with `on_select_subscribers` reshaping the list of local subscriptions."""
        matches = self.trie.match(message.topic)
        origin = message.origin
        entries = [e for e in matches.direct if not (e.options.no_local and e.client_id == origin)]
        remote: list[SubscriberEntry] = []
        if self._route_count:
            destinations = self._destinations
            remote = [e for e in entries if e.client_id in destinations] if forward else []
            entries = [e for e in entries if e.client_id not in destinations]
        selected = await self.hooks.transform(
            "on_select_subscribers", "subscribers", client=client,
            packet=message.to_publish(message.qos, message.retain), subscribers=entries)
        # From here on nothing is awaited, so one routing pass is never interleaved with another.
        chosen = [*selected, *remote] if remote else list(selected or ())
        delivered = self._deliver_overlapping(chosen, message, forward) if chosen else 0
        for key, members in matches.shared.items():
            if shares is None or key in shares:
                delivered += self._deliver_shared(key, members, message, None, forward)
        if self._forward is not None:
            delivered += self._flush_forward(message, acks)
        return delivered

    # ------------------------------------------------------------------ one routing pass (synchronous)

    def _deliver_entry(self, entry: SubscriberEntry, message: Message) -> int:
        """One subscription of one client (or one route)."""
        session = self._sessions.get(entry.client_id)
        if session is None:
            if self._route_count:
                self._forward_to(entry.client_id, None)
            return 0
        options = entry.options
        qos = message.qos if message.qos < options.qos else options.qos
        retain = message.retain and options.retain_as_published
        ids = (entry.identifier,) if entry.identifier is not None else ()
        return self.delivery.deliver(session, message, qos, retain, ids, None)

    def _deliver_overlapping(self, entries: list[SubscriberEntry], message: Message, forward: bool) -> int:
        """Several subscriptions matched: one copy per client at the highest granted QoS."""
        per_client: dict[str, tuple[int, bool, list[int]]] = {}
        origin = message.origin
        for entry in entries:
            options = entry.options
            if options.no_local and entry.client_id == origin:
                continue
            qos, retain, ids = per_client.get(entry.client_id, (0, False, []))
            qos = max(qos, options.qos)
            retain = retain or (message.retain and options.retain_as_published)
            if entry.identifier is not None:
                ids.append(entry.identifier)
            per_client[entry.client_id] = (qos, retain, ids)
        delivered = 0
        sessions = self._sessions
        deliver = self.delivery.deliver
        for client_id, (qos, retain, ids) in per_client.items():
            session = sessions.get(client_id)
            if session is not None:
                delivered += deliver(session, message, min(qos, message.qos), retain, tuple(sorted(ids)), None)
            elif forward and self._route_count:
                self._forward_to(client_id, None)
        return delivered

    def _deliver_shared(self, key: ShareKey, members: list[SubscriberEntry], message: Message,
                        exclude: str | None, forward: bool) -> int:
        """One member of a share group gets the message: the next available one in turn."""
        sessions = self._sessions
        remote = forward and self._route_count
        if remote:
            destinations = self._destinations
            candidates = [m for m in members if m.client_id != exclude
                          and (m.client_id in sessions or m.client_id in destinations)]
        else:
            candidates = [m for m in members if m.client_id != exclude and m.client_id in sessions]
        if not candidates:
            return 0
        chosen: SubscriberEntry | None = None
        if self.hooks.enabled("on_select_share_member"):
            picked = self.hooks.first_sync("on_select_share_member", message=message, share_group=key[0],
                                           topic_filter=key[1], members=candidates)
            if any(picked is candidate for candidate in candidates):
                chosen = picked
        if chosen is None:
            chosen = self._next_member(key, candidates, remote)
        session = sessions.get(chosen.client_id)
        if session is None:
            self._forward_to(chosen.client_id, key)
            return 0
        options = chosen.options
        qos = min(message.qos, options.qos)
        ids = (chosen.identifier,) if chosen.identifier is not None else ()
        return self.delivery.deliver(session, message, qos, False, ids, key)

    def _next_member(self, key: ShareKey, candidates: list[SubscriberEntry], remote: bool | int) -> SubscriberEntry:
        """The member whose turn it is, skipping offline local members while any member is reachable."""
        turn = self._share_turn.get(key, 0)
        self._share_turn[key] = turn + 1
        count = len(candidates)
        connected = self.connected
        destinations = self._destinations
        for offset in range(count):
            candidate = candidates[(turn + offset) % count]
            if candidate.client_id in connected or (remote and candidate.client_id in destinations):
                return candidate
        return candidates[turn % count]

    def _forward_to(self, key: str, share: ShareKey | None) -> None:
        """Note a matched destination for this pass (each destination once)."""
        destination = self._destinations.get(key)
        if destination is None:
            return
        forward = self._forward
        if forward is None:
            forward = self._forward = {}
        shares = forward.get(destination, ())
        forward[destination] = (*shares, share) if share is not None else shares

    def _flush_forward(self, message: Message, acks: list[Awaitable[Any]] | None) -> int:
        """Hand the message and the destinations it matched to `on_forward`; returns how many destinations."""
        destinations = self._forward
        assert destinations is not None
        self._forward = None
        if self.hooks.enabled("on_forward"):
            tokens = self.hooks.collect_sync("on_forward", message=message, destinations=destinations)
            for token in tokens:
                if acks is not None and inspect.isawaitable(token):
                    acks.append(token)
                elif inspect.iscoroutine(token):
                    token.close()  # nobody waits for it (QoS 0, a will, a redelivery): it must not linger
                    _plugin_errors.log("on_forward coroutine", logging.ERROR,
                                       "on_forward returned a coroutine where nobody waits (QoS 0, a will): "
                                       "it never ran; forward synchronously and return a future")
        return len(destinations)

    # ------------------------------------------------------------------ shared groups when a member leaves

    def redeliver_shared(self, message: Message, key: ShareKey, leaving: str) -> None:
        """A share-group member went away holding a message: give it to another member."""
        if message.expired(time.time()):
            return
        members = self.trie.match(message.topic).shared.get(key)
        if members:
            self._deliver_shared(key, members, message, leaving, True)
            if self._forward is not None:
                self._flush_forward(message, None)

    def release_shared_queue(self, session: Session) -> None:
        """Queued messages of shared subscriptions go to other members rather than wait."""
        if not any(item.share is not None for item in session.queue):
            return
        kept = [item for item in session.queue if item.share is None]
        moved = [item for item in session.queue if item.share is not None]
        session.queue.clear()
        session.queue.extend(kept)
        self.persistence.queue_rewritten(session)
        for item in moved:
            assert item.share is not None
            self.redeliver_shared(item.message, item.share, session.client_id)

    def send_retained(self, session: Session, entry: SubscriberEntry) -> None:
        """Deliver the retained messages a new subscription matches (retain flag set)."""
        ids = (entry.identifier,) if entry.identifier is not None else ()
        deliver = self.delivery.deliver
        for message in self.retained.matching(entry.topic_filter):
            deliver(session, message, min(message.qos, entry.options.qos), True, ids, None)

    # ------------------------------------------------------------------ local subscriptions (interest)

    async def subscribe(self, session: Session, entry: SubscriberEntry) -> SubscriberEntry | None:
        """Add (or replace) one subscription of a session; returns the entry it replaced."""
        replaced = self.trie.subscribe(entry)
        session.subscriptions[entry.topic_filter] = entry
        self.persistence.save_subscription(session, entry)
        if self.hooks.enabled("on_subscription_added"):
            await self.hooks.notify("on_subscription_added", entry=entry, replaced=replaced, restored=False)
        return replaced

    async def unsubscribe(self, session: Session, topic_filter: str) -> bool:
        """Remove one subscription; returns whether it existed."""
        removed = self.trie.unsubscribe(session.client_id, topic_filter)
        session.subscriptions.pop(topic_filter, None)
        if removed is None:
            return False
        self.persistence.delete_subscription(session, topic_filter)
        if self.hooks.enabled("on_subscription_removed"):
            await self.hooks.notify("on_subscription_removed", entry=removed)
        return True

    async def install(self, session: Session, restored: bool = True) -> None:
        """Put a session's subscriptions (loaded from a store, or moved here) into the trie."""
        trie = self.trie
        added = [(entry, trie.subscribe(entry)) for entry in session.subscriptions.values()]
        if self.hooks.enabled("on_subscription_added"):
            for entry, replaced in added:
                await self.hooks.notify("on_subscription_added", entry=entry, replaced=replaced, restored=restored)

    async def remove_all(self, session: Session) -> None:
        """A session ends: its subscriptions leave the trie and the session."""
        removed = self.trie.remove_client(session.client_id)
        if not removed:
            return
        subscriptions = session.subscriptions
        for entry in removed:
            subscriptions.pop(entry.topic_filter, None)
        if self.hooks.enabled("on_subscription_removed"):
            for entry in removed:
                await self.hooks.notify("on_subscription_removed", entry=entry)

    async def forget(self, client_id: str) -> None:
        """This broker's copy of a session is stale: take its subscriptions out of the trie."""
        removed = self.trie.remove_client(client_id)
        if removed and self.hooks.enabled("on_subscription_removed"):
            for entry in removed:
                await self.hooks.notify("on_subscription_removed", entry=entry)

    def subscription_count(self) -> int:
        """How many local subscriptions there are (routes excluded)."""
        return len(self.trie) - self._route_count

    # ------------------------------------------------------------------ routes (plugin-added destinations)

    def add_route(self, destination: str, topic_filter: str) -> bool:
        """Make messages matching ``topic_filter`` go to ``destination`` too; False when it already had it."""
        validate_topic_filter(topic_filter)
        if not destination:
            raise ValueError("a route needs a destination name")
        key = ROUTE_KEY_PREFIX + destination
        if self.trie.get(key, topic_filter) is not None:
            return False
        self.trie.subscribe(RouteEntry(key, topic_filter, _ROUTE_OPTIONS, destination=destination))
        self._destinations[key] = destination
        self._route_count += 1
        self.has_destinations = True
        return True

    def remove_route(self, destination: str, topic_filter: str) -> bool:
        """Stop sending ``topic_filter``'s messages to ``destination``; False when it had no such route."""
        key = ROUTE_KEY_PREFIX + destination
        if self.trie.unsubscribe(key, topic_filter) is None:
            return False
        self._route_count -= 1
        if not self.trie.subscriptions_of(key):
            self._destinations.pop(key, None)
            self.has_destinations = bool(self._destinations)
        return True

    def remove_destination(self, destination: str) -> int:
        """Drop every route of ``destination`` (it left); returns how many there were."""
        key = ROUTE_KEY_PREFIX + destination
        removed = len(self.trie.remove_client(key))
        self._route_count -= removed
        self._destinations.pop(key, None)
        self.has_destinations = bool(self._destinations)
        return removed

    def routes(self, destination: str | None = None) -> list[RouteEntry]:
        """The routes of one destination, or of all."""
        keys = [ROUTE_KEY_PREFIX + destination] if destination is not None else list(self._destinations)
        return [entry for key in keys for entry in self.trie.subscriptions_of(key) if isinstance(entry, RouteEntry)]


__all__ = ["ROUTE_KEY_PREFIX", "Destinations", "InjectResult", "RouteEntry", "Router"]
