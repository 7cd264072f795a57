"""Delivering a routed message to each session: send now, queue, or drop.

This is the per-message hot path: everything here is synchronous, writes into the
subscribers' transport buffers, and allocates no task. `Broker` inherits it; the attributes it
uses are the broker's (declared below for the type checker).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..mqtt.codec import encode
from ..mqtt.packets import Packet
from ..mqtt.trie import SubscriberEntry
from .message import Message
from .session import AWAIT_ACK, Outgoing, Queued, Session, ShareKey

if TYPE_CHECKING:
    from ..hooks import HookFacade
    from ..mqtt.trie import SubscriptionTrie
    from .client import Client
    from .persistence import Persistence
    from .retained import RetainedMessages
    from .settings import MqttSettings
    from .stats import Stats


class Delivery:
    """Routing and delivery, the part of the broker every message goes through."""

    if TYPE_CHECKING:
        settings: MqttSettings
        stats: Stats
        sessions: dict[str, Session]
        connected: dict[str, Client]
        trie: SubscriptionTrie
        retained: RetainedMessages
        hooks: HookFacade
        persistence: Persistence
        _share_turn: dict[ShareKey, int]

        def defer(self, name: str, **kwargs: Any) -> None: ...

    def route(self, message: Message) -> int:
        """Deliver to every matching subscription; returns how many sessions got it."""
        matches = self.trie.match(message.topic)
        delivered = 0
        direct = matches.direct
        if direct:
            if len(direct) == 1:
                entry = direct[0]
                if not (entry.options.no_local and entry.client_id == message.origin):
                    delivered = self._deliver_entry(entry, message)
            else:
                delivered = self._deliver_overlapping(direct, message)
        if matches.shared:
            for key, members in matches.shared.items():
                delivered += self._deliver_shared(key, members, message)
        return delivered

    async def _route_selected(self, client: Client | None, message: Message) -> int:
        """Routing with `on_select_subscribers` reshaping the list of subscriptions."""
        matches = self.trie.match(message.topic)
        entries = [e for e in matches.direct if not (e.options.no_local and e.client_id == message.origin)]
        selected = await self.hooks.transform(
            "on_select_subscribers", "subscribers", client=client,
            packet=message.to_publish(message.qos, message.retain), subscribers=entries)
        delivered = self._deliver_overlapping(list(selected), message) if selected else 0
        for key, members in matches.shared.items():
            delivered += self._deliver_shared(key, members, message)
        return delivered

    def _deliver_entry(self, entry: SubscriberEntry, message: Message) -> int:
        """One subscription of one client."""
        session = self.sessions.get(entry.client_id)
        if session is None:
            return 0
        options = entry.options
        qos = message.qos if message.qos < options.qos else options.qos
        retain = message.retain and options.retain_as_published
        ids = (entry.identifier,) if entry.identifier is not None else ()
        return self.deliver(session, message, qos, retain, ids, None)

    def _deliver_overlapping(self, entries: list[SubscriberEntry], message: Message) -> int:
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
        for client_id, (qos, retain, ids) in per_client.items():
            session = self.sessions.get(client_id)
            if session is not None:
                delivered += self.deliver(session, message, min(qos, message.qos), retain, tuple(sorted(ids)), None)
        return delivered

    def _deliver_shared(self, key: ShareKey, members: list[SubscriberEntry], message: Message,
                        exclude: str | None = None) -> int:
        """One member of a share group gets the message: the next connected one in turn."""
        candidates = [m for m in members if m.client_id != exclude and m.client_id in self.sessions]
        if not candidates:
            return 0
        turn = self._share_turn.get(key, 0)
        self._share_turn[key] = turn + 1
        count = len(candidates)
        chosen = candidates[turn % count]
        for offset in range(count):
            candidate = candidates[(turn + offset) % count]
            if candidate.client_id in self.connected:
                chosen = candidate
                break
        session = self.sessions[chosen.client_id]
        options = chosen.options
        qos = min(message.qos, options.qos)
        ids = (chosen.identifier,) if chosen.identifier is not None else ()
        return self.deliver(session, message, qos, False, ids, key)

    def _redeliver_shared(self, message: Message, qos: int, key: ShareKey, leaving: str) -> None:
        """A share-group member went away holding a message: give it to another member."""
        if message.expired(time.time()):
            return
        members = self.trie.match(message.topic).shared.get(key)
        if members:
            self._deliver_shared(key, members, message, exclude=leaving)

    def _release_shared_queue(self, session: Session) -> None:
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
            self._redeliver_shared(item.message, item.qos, item.share, session.client_id)

    def deliver(self, session: Session, message: Message, qos: int, retain: bool,
                ids: tuple[int, ...], share: ShareKey | None) -> int:
        """Send now, queue, or drop one message for one session (the per-message hot path)."""
        client = session.client
        now = time.time()
        if message.expiry_at is not None and now >= message.expiry_at:
            return 0
        if qos == 0:
            if client is None:
                return 0
            if client.conn.buffered_size() > self.settings.max_write_buffer:
                self._dropped(session, message, "client too slow: write buffer full")
                return 0
            return self._write_qos0(client, message, retain, ids, now)
        if (client is not None and not session.queue and len(session.inflight) < client.send_quota
                and client.conn.buffered_size() <= self.settings.max_write_buffer):
            self._send_new(client, session, message, qos, retain, ids, share, now)
            return 1
        self._enqueue(session, Queued(message, qos, retain, ids, share))
        if client is not None and session.queue and len(session.inflight) < client.send_quota:
            client.schedule_drain(lambda: self.fill_window(client))
        return 1

    def _write_qos0(self, client: Client, message: Message, retain: bool, ids: tuple[int, ...], now: float) -> int:
        """Write a QoS 0 message from the shared encoding."""
        data = client.publish_bytes(message, 0, retain, ids, now)
        if data is None:
            self._dropped(client.session, message, "larger than the client's Maximum Packet Size")
            return 0
        hooks = self.hooks
        if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
            self.send_hooked(client, message.to_publish(0, retain, 0, now, ids))
        else:
            client.write_bytes(data)
        self.stats.messages_sent += 1
        return 1

    def _send_new(self, client: Client, session: Session, message: Message, qos: int, retain: bool,
                  ids: tuple[int, ...], share: ShareKey | None, now: float) -> None:
        """Give a QoS 1/2 message an inflight slot and a packet id, and write it."""
        if client.max_packet_out:
            size = len(message.wire(client.protocol_level, qos, retain, ids, now)[0])
            if size > client.max_packet_out:
                self._dropped(session, message, "larger than the client's Maximum Packet Size")
                return
        packet_id = session.allocate_packet_id()
        out = Outgoing(packet_id, message, qos, retain, ids, share)
        session.inflight[packet_id] = out
        client.send_outgoing(out, now)
        self.persistence.save_outgoing(session, out)  # after sending: a reload resends it with DUP
        self.stats.messages_sent += 1
        if self.hooks.enabled("on_qos_publish"):
            self.defer("on_qos_publish", client=client, packet=message.to_publish(qos, retain, packet_id, now, ids),
                       resends=0)

    def _enqueue(self, session: Session, item: Queued) -> None:
        """Queue within the configured bound, reporting what the drop policy discards."""
        settings = self.settings
        dropped = session.enqueue(item, settings.max_queued_messages, settings.queue_drop_policy == "drop_oldest")
        if dropped is not item:
            # The store applies the same bound and policy, so it drops the same oldest message.
            self.persistence.queue_append(session, item)
        if dropped is not None:
            self._dropped(session, dropped.message, "queue full")

    def fill_window(self, client: Client) -> None:
        """Move queued messages into free inflight slots while the client keeps up."""
        session = client.session
        if session is None or client.detached:
            return
        queue = session.queue
        now = time.time()
        limit = self.settings.max_write_buffer
        if session.inflight and not self._resend_held(client, session, now):
            return
        popped = 0
        while queue and len(session.inflight) < client.send_quota:
            if client.conn.buffered_size() > limit:
                client.schedule_drain(lambda: self.fill_window(client))
                break
            item = queue.popleft()
            popped += 1
            if item.message.expired(now):
                self._dropped(session, item.message, "expired")
                continue
            if item.qos == 0:
                self._write_qos0(client, item.message, item.retain, item.subscription_ids, now)
            else:
                self._send_new(client, session, item.message, item.qos, item.retain, item.subscription_ids,
                               item.share, now)
        self.persistence.queue_popped(session, popped)

    def _resend_held(self, client: Client, session: Session, now: float) -> bool:
        """Resend inflight messages held back at reconnect, within the client's Receive Maximum.

        Returns False while some are still held (new messages must wait behind them).
        """
        held = [out for out in session.inflight.values() if out.awaiting_resend]
        if not held:
            return True
        in_flight = len(session.inflight) - len(held)
        for out in held:
            if in_flight >= client.send_quota:
                return False
            out.awaiting_resend = False
            client.send_outgoing(out, now, dup=out.sends > 0)
            in_flight += 1
            if out.state == AWAIT_ACK and self.hooks.enabled("on_qos_publish"):
                self.defer("on_qos_publish", client=client, resends=out.sends - 1,
                           packet=out.message.to_publish(out.qos, out.retain, out.packet_id, now,
                                                         out.subscription_ids, out.sends > 1))
        return True

    def _dropped(self, session: Session | None, message: Message, reason: str) -> None:
        """Count a dropped message and tell `on_publish_dropped`."""
        self.stats.messages_dropped += 1
        if session is not None and self.hooks.enabled("on_publish_dropped"):
            self.defer("on_publish_dropped", client_id=session.client_id,
                       packet=message.to_publish(message.qos, message.retain), reason=reason)

    def _qos_dropped(self, session: Session, out: Outgoing, reason: str) -> None:
        """An inflight QoS 1/2 message will never complete: count it and tell `on_qos_dropped`."""
        self.stats.messages_dropped += 1
        if self.hooks.enabled("on_qos_dropped"):
            self.defer("on_qos_dropped", client_id=session.client_id,
                       packet=out.message.to_publish(out.qos, out.retain, out.packet_id), reason=reason)

    def send_hooked(self, client: Client, packet: Packet) -> None:
        """Writing when `on_packet_encode`/`on_packet_sent` are implemented: in order, off the hot path."""
        self.defer("_send_hooked", client=client, packet=packet)

    async def _send_hooked_now(self, client: Client, packet: Packet) -> None:
        hooks = self.hooks
        if hooks.enabled("on_packet_encode"):
            packet = await hooks.transform("on_packet_encode", "packet", client=client, packet=packet)
        data = encode(packet, client.protocol_level)
        client.write_bytes(data)
        if hooks.enabled("on_packet_sent"):
            await hooks.notify("on_packet_sent", client=client, packet=packet, data=data)

    def send_retained(self, client: Client, entry: SubscriberEntry) -> None:
        """Deliver the retained messages a new subscription matches (retain flag set)."""
        session = client.session
        if session is None:
            return
        ids = (entry.identifier,) if entry.identifier is not None else ()
        for message in self.retained.matching(entry.topic_filter):
            self.deliver(session, message, min(message.qos, entry.options.qos), True, ids, None)
