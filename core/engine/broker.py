"""The broker: sessions, routing, retained messages, wills, expiry and the public Broker API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..hooks import RejectPublish
from ..mqtt.codec import encode
from ..mqtt.packets import NO_PROPERTIES, Connect, Packet, Properties, Publish
from ..mqtt.reason_codes import ReasonCode
from ..mqtt.trie import SubscriberEntry, SubscriptionTrie
from .client import Client, describe_client
from .message import Message
from .persistence import Persistence
from .retained import RetainedMessages
from .session import AWAIT_ACK, Outgoing, Queued, Session, ShareKey
from .stats import Stats
from .sysinfo import SysPublisher

if TYPE_CHECKING:
    from ..config import Config
    from ..hooks import HookFacade
    from ..transport.base import Connection
    from ..transport.listeners import RunningListener

log = logging.getLogger("hookmq.broker")



class Broker:
    """One MQTT broker instance: listeners, plugins, store and every client's state."""

    def __init__(self, config: Config | None = None, extra_plugins: Mapping[str, object] | None = None) -> None:
        if config is None:
            from ..config import Config

            config = Config()
        self.config = config
        self.settings = config.mqtt
        self._extra_plugins = dict(extra_plugins or {})
        self.stats = Stats()
        self.sessions: dict[str, Session] = {}
        #: Established connections by client id.
        self.connected: dict[str, Client] = {}
        #: Every live connection, established or not (for shutdown).
        self._connections: set[Client] = set()
        self.trie = SubscriptionTrie()
        self.retained = RetainedMessages()
        self.listeners: list[RunningListener] = []
        self._share_turn: dict[ShareKey, int] = {}
        self._attach_locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._deferred: list[tuple[str, dict[str, Any]]] = []
        self._deferred_wakeup: asyncio.Event | None = None
        self._stopped = asyncio.Event()
        self._started = False
        self._plugin_manager: Any = None
        self.hooks: HookFacade = self._build_hooks()
        self.persistence = Persistence(self)
        self._sys = SysPublisher(self)

    def _build_hooks(self) -> HookFacade:
        """Create this broker's own plugin manager and hook facade."""
        from ..hooks import HookFacade
        from ..pluginmanager import build_plugin_manager

        self._plugin_manager = build_plugin_manager(self.config, extra_plugins=self._extra_plugins)
        return HookFacade(self._plugin_manager)

    @property
    def plugin_manager(self) -> Any:
        """The pluggy plugin manager of this broker."""
        return self._plugin_manager

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Open the store, start plugins and listeners, then announce `on_started`."""
        from ..transport.listeners import banner_lines, start_listeners

        self.stats.started = time.time()
        self._deferred_wakeup = asyncio.Event()
        try:
            await self.persistence.open()
            await self.hooks.per_plugin("plugin_start", broker=self)
            self.listeners = await start_listeners(self.config.listeners, self._serve_connection)
        except BaseException:
            await self._undo_partial_start()
            raise
        self._tasks = [
            asyncio.create_task(self._housekeeping(), name="hookmq-housekeeping"),
            asyncio.create_task(self._run_deferred(), name="hookmq-deferred-hooks"),
        ]
        if self.settings.sys_interval > 0:
            self._tasks.append(asyncio.create_task(self._sys.run(), name="hookmq-sys"))
        self._started = True
        for line in banner_lines(self.listeners):
            log.info("%s", line)
        if not self.hooks.enabled("on_connect_authenticate"):
            log.warning("no authentication plugin is enabled: anonymous clients are allowed")
        await self.hooks.notify("on_started", broker=self)

    async def _undo_partial_start(self) -> None:
        """A start that failed half-way: release what did start (store, plugins' resources)."""
        try:
            await self.hooks.notify("plugin_stop", broker=self)
        finally:
            await self.persistence.close()

    async def stop(self) -> None:
        """Stop accepting, send DISCONNECT 0x8B to v5 clients, flush state, stop plugins."""
        if not self._started:
            return
        self._started = False
        for listener in self.listeners:
            await listener.close()
        for client in list(self._connections):
            client.kick(ReasonCode.SERVER_SHUTTING_DOWN)
        await self._wait_for_connections(timeout=3.0)
        for listener in self.listeners:
            await listener.close_connections(grace=0.5)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush_deferred()
        await self.persistence.close()
        await self.hooks.notify("plugin_stop", broker=self)
        await self.hooks.notify("on_stopped", broker=self)
        self._stopped.set()

    async def _wait_for_connections(self, timeout: float) -> None:
        """Give client tasks time to run their cleanup, then abort the stragglers."""
        deadline = time.monotonic() + timeout
        while self._connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for client in list(self._connections):
            client.conn.abort()

    async def serve(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop_requested.set)
        try:
            await stop_requested.wait()
        finally:
            log.info("stopping")
            await self.stop()

    # ------------------------------------------------------------------ connections

    async def _serve_connection(self, conn: Connection) -> None:
        """The listener handler: one client from CONNECT to close."""
        client = Client(self, conn)
        self._connections.add(client)
        try:
            await client.run()
        finally:
            self._connections.discard(client)

    def connection_refusal(self, client: Client, connect: Connect) -> int | None:
        """Refusals that depend on the server's state and limits rather than credentials."""
        settings = self.settings
        if not self._started:
            return ReasonCode.SERVER_UNAVAILABLE
        limit = settings.max_connections
        if limit and len(self.connected) >= limit and client.client_id not in self.connected:
            return ReasonCode.QUOTA_EXCEEDED
        will = connect.will
        if will is not None:
            if will.qos > settings.maximum_qos:
                return ReasonCode.QOS_NOT_SUPPORTED
            if will.retain and not settings.retain_available:
                return ReasonCode.RETAIN_NOT_SUPPORTED
        return None

    async def attach_session(self, client: Client, connect: Connect) -> bool:
        """Take over, resume or create the client's session; returns session-present.

        Connections with the same client id attach one at a time: the second waits and then
        takes over from the first, so no half-attached session is ever left behind.
        """
        lock = self._attach_locks.setdefault(client.client_id, asyncio.Lock())
        try:
            async with lock:
                return await self._attach_session(client, connect)
        finally:
            if not lock.locked() and self._attach_locks.get(client.client_id) is lock:
                del self._attach_locks[client.client_id]

    async def _attach_session(self, client: Client, connect: Connect) -> bool:
        client_id = client.client_id
        now = time.time()
        session = self.sessions.get(client_id)
        if session is not None and session.client is not None:
            await self._take_over(session.client, now)
        if not connect.clean_start and (session is None or self._changed_elsewhere(session)):
            session = await self._load_stored_session(client_id, session)
        if session is not None and connect.clean_start:
            await self._end_session(session, now)
            session = None
        if connect.clean_start:
            self.persistence.forget(client_id)  # also what another node may have stored
        present = session is not None
        if session is None:
            session = Session(client_id)
        self.sessions[client_id] = session
        self._configure_session(session, client, connect)
        session.client = client
        session.disconnected_at = None
        session.will_due_at = None
        client.session = session
        self.connected[client_id] = client
        self.stats.clients_total += 1
        self.stats.clients_maximum = max(self.stats.clients_maximum, len(self.connected))
        self.persistence.save_session(session)
        return present

    def _changed_elsewhere(self, session: Session) -> bool:
        """A disconnected session in a shared store may have been resumed by another broker."""
        return self.persistence.shared and session.client is None

    async def _load_stored_session(self, client_id: str, stale: Session | None) -> Session | None:
        """Read a session from the store, replacing this process's older copy of it."""
        if stale is not None:
            self.trie.remove_client(client_id)
            self.sessions.pop(client_id, None)
        return await self.persistence.load_session(client_id)

    def _configure_session(self, session: Session, client: Client, connect: Connect) -> None:
        """Apply this CONNECT's protocol level, user, expiry and will to the session."""
        session.protocol_level = client.protocol_level
        session.username = client.username
        if client.protocol_level == 5:
            requested = connect.properties.session_expiry_interval or 0
            session.expiry_interval = min(requested, self.settings.max_session_expiry)
        else:
            session.expiry_interval = 0 if connect.clean_start else self.settings.max_session_expiry
        will = connect.will
        session.will = will
        session.will_delay = (will.properties.will_delay_interval or 0) if will is not None else 0

    async def _take_over(self, old: Client, now: float) -> None:
        """A new connection claims the session: the old one gets DISCONNECT 0x8E and goes."""
        old.detached = True
        old.kick(ReasonCode.SESSION_TAKEN_OVER)
        session = old.session
        if old.client_id in self.connected and self.connected[old.client_id] is old:
            del self.connected[old.client_id]
        if session is None:
            return
        session.client = None
        session.disconnected_at = now
        if session.will is not None:
            await self._will_after_disconnect(session, now)

    def resume_delivery(self, client: Client) -> None:
        """After CONNACK: resend unacknowledged messages with DUP, then drain the queue."""
        session = client.session
        assert session is not None
        now = time.time()
        for out in list(session.inflight.values()):
            if out.state == AWAIT_ACK and out.sends == 0 and out.message.expired(now):
                del session.inflight[out.packet_id]
                self.persistence.outgoing_done(session, out.packet_id)
                self._qos_dropped(session, out, "message expired")
            else:
                out.awaiting_resend = True
        self.fill_window(client)

    async def client_gone(self, client: Client) -> None:
        """The connection ended: will, session end or keep, `on_disconnect`."""
        if not client.established:
            return
        session = client.session
        if not client.detached and session is not None:
            client.detached = True
            now = time.time()
            if self.connected.get(client.client_id) is client:
                del self.connected[client.client_id]
            session.client = None
            session.disconnected_at = now
            if client.clean_disconnect:
                session.will = None
            elif session.will is not None:
                await self._will_after_disconnect(session, now)
            self._release_shared_queue(session)
            if session.expiry_interval == 0:
                await self._end_session(session, now)
            else:
                self.persistence.save_session(session)
        await self.hooks.notify("on_disconnect", client=client, reason_code=client.disconnect_reason,
                                error=client.error)

    async def _will_after_disconnect(self, session: Session, now: float) -> None:
        """Publish the will now, or schedule it after the will delay (MQTT 5)."""
        if session.will_delay > 0 and session.expiry_interval > 0:
            session.will_due_at = now + min(session.will_delay, session.expiry_interval)
            return
        await self._publish_will(session)

    async def _publish_will(self, session: Session) -> None:
        """Send the session's will message and forget it."""
        will = session.will
        session.will = None
        session.will_due_at = None
        if will is None:
            return
        hooks = self.hooks
        if hooks.enabled("on_will"):
            will = await hooks.transform("on_will", "will", client=session.client or _Offline(self, session), will=will)
            if will is None:
                return
        packet = Publish(will.topic, will.payload, will.qos, will.retain, properties=_will_publish_properties(will))
        message = Message.from_publish(packet, session.client_id, time.time(), self.settings.max_message_expiry)
        await self._route_and_retain(None, message)
        await hooks.notify("on_will_sent", client_id=session.client_id, packet=packet)

    async def _expire_session(self, session: Session, now: float) -> None:
        """End a session whose expiry passed, unless another broker resumed it meanwhile."""
        if self.persistence.shared and await self.persistence.resumed_elsewhere(session):
            # Our copy is stale: drop it here, leave the stored (live) session alone.
            self.trie.remove_client(session.client_id)
            self.sessions.pop(session.client_id, None)
            return
        await self._end_session(session, now)
        self.defer("on_client_expired", client_id=session.client_id)

    async def _end_session(self, session: Session, now: float) -> None:
        """Discard a session: pending will, subscriptions, queued shared messages go elsewhere."""
        if session.will is not None and session.client is None:
            await self._publish_will(session)
        for entry in self.trie.remove_client(session.client_id):
            session.subscriptions.pop(entry.topic_filter, None)
        inflight = list(session.inflight.values())
        session.inflight.clear()
        for out in inflight:
            if out.share is not None:
                self._redeliver_shared(out.message, out.qos, out.share, session.client_id)
            else:
                self._qos_dropped(session, out, "session ended")
        self._release_shared_queue(session)
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        self.persistence.delete_session(session)

    # ------------------------------------------------------------------ publishing

    async def publish_from(self, client: Client, packet: Publish) -> int:
        """Route a client's PUBLISH after the `on_publish` hook; returns the ack reason code."""
        hooks = self.hooks
        if hooks.enabled("on_publish"):
            try:
                packet = await hooks.transform("on_publish", "packet", client=client, packet=packet)
            except RejectPublish as rejected:
                return rejected.reason_code
        self.stats.messages_received += 1
        message = Message.from_publish(packet, client.client_id, time.time(), self.settings.max_message_expiry)
        delivered = await self._route_and_retain(client, message)
        if hooks.enabled("on_published"):
            await hooks.notify("on_published", client=client, packet=packet)
        return ReasonCode.SUCCESS if delivered else ReasonCode.NO_MATCHING_SUBSCRIBERS

    async def _route_and_retain(self, client: Client | None, message: Message) -> int:
        """Store a retained message if flagged, then deliver to every matching subscriber."""
        if message.retain and self.settings.retain_available:
            stored = self.retained.store(message)
            self.persistence.retained(message, stored)
            if self.hooks.enabled("on_retain_message"):
                await self.hooks.notify("on_retain_message", client=client,
                                        packet=message.to_publish(message.qos, True), stored=stored)
        if self.hooks.enabled("on_select_subscribers"):
            return await self._route_selected(client, message)
        return self.route(message)

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

    # ------------------------------------------------------------------ subscriptions

    def add_subscription(self, client: Client, entry: SubscriberEntry) -> SubscriberEntry | None:
        """Add (or replace) one subscription of a connected client."""
        session = client.session
        assert session is not None
        replaced = self.trie.subscribe(entry)
        session.subscriptions[entry.topic_filter] = entry
        self.persistence.save_subscription(session, entry)
        return replaced

    def remove_subscription(self, client: Client, topic_filter: str) -> bool:
        """Remove one subscription; returns whether it existed."""
        session = client.session
        assert session is not None
        removed = self.trie.unsubscribe(client.client_id, topic_filter)
        session.subscriptions.pop(topic_filter, None)
        if removed is not None:
            self.persistence.delete_subscription(session, topic_filter)
        return removed is not None

    # ------------------------------------------------------------------ deferred notifications

    def defer(self, name: str, **kwargs: Any) -> None:
        """Run a hook from synchronous code: queued, then called in order by one task."""
        self._deferred.append((name, kwargs))
        if self._deferred_wakeup is not None:
            self._deferred_wakeup.set()

    async def _run_deferred(self) -> None:
        assert self._deferred_wakeup is not None
        while True:
            await self._deferred_wakeup.wait()
            self._deferred_wakeup.clear()
            await self._flush_deferred()

    async def flush_deferred(self) -> None:
        """Run the queued notifications and hooked writes now (before a connection closes)."""
        await self._flush_deferred()

    async def _flush_deferred(self) -> None:
        while self._deferred:
            batch, self._deferred = self._deferred, []
            for name, kwargs in batch:
                try:
                    if name == "_send_hooked":
                        await self._send_hooked_now(**kwargs)
                    else:
                        await self.hooks.notify(name, **kwargs)
                except Exception:
                    log.exception("deferred hook %s failed", name)

    # ------------------------------------------------------------------ housekeeping

    async def _housekeeping(self) -> None:
        """Twice a second: keep-alive, delayed wills, session and retained expiry."""
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.housekeeping_pass(time.time(), time.monotonic())
            except Exception:
                log.exception("housekeeping failed")

    async def housekeeping_pass(self, now: float, monotonic_now: float) -> None:
        """One pass of the time-driven duties, with the clocks handed in."""
        for client in list(self.connected.values()):
            if client.keep_alive_expired(monotonic_now):
                client.error = "keep-alive timeout"
                client.kick(ReasonCode.KEEP_ALIVE_TIMEOUT)
                client.conn.abort()
        for session in list(self.sessions.values()):
            if session.client is not None:
                continue
            if session.will_due_at is not None and now >= session.will_due_at:
                await self._publish_will(session)
            expires_at = session.expires_at()
            if expires_at is not None and now >= expires_at:
                await self._expire_session(session, now)
        for message in self.retained.expired(now):
            self.persistence.retained(message, False)
            self.defer("on_retained_expired", topic=message.topic)

    # ------------------------------------------------------------------ public API

    def info(self) -> dict[str, Any]:
        """The `$SYS` figures as a dictionary."""
        stats = self.stats
        now = time.time()
        return {
            "version": __version__,
            "started": stats.started,
            "time": now,
            "uptime": int(now - stats.started) if stats.started else 0,
            "bytes_received": stats.bytes_received,
            "bytes_sent": stats.bytes_sent,
            "packets_received": stats.packets_received,
            "packets_sent": stats.packets_sent,
            "messages_received": stats.messages_received,
            "messages_sent": stats.messages_sent,
            "messages_dropped": stats.messages_dropped,
            "clients_connected": len(self.connected),
            "clients_disconnected": sum(1 for s in self.sessions.values() if s.client is None),
            "clients_maximum": stats.clients_maximum,
            "clients_total": stats.clients_total,
            "subscriptions": len(self.trie),
            "retained": len(self.retained),
            "inflight": sum(len(s.inflight) for s in self.sessions.values()),
            "queued": sum(len(s.queue) for s in self.sessions.values()),
            "store_backend": self.config.storage.backend,
            "store_error": self.persistence.last_error or "",
            "store_pending_writes": self.persistence.pending,
        }

    def clients(self) -> list[dict[str, Any]]:
        """Every session, connected or not, as a summary."""
        return [self._client_view(session) for session in self.sessions.values()]

    def client(self, client_id: str) -> dict[str, Any] | None:
        """One session's summary, with its subscriptions, or None."""
        session = self.sessions.get(client_id)
        if session is None:
            return None
        view = self._client_view(session)
        view["subscription_list"] = [
            {"topic_filter": e.topic_filter, "qos": e.options.qos, "identifier": e.identifier}
            for e in session.subscriptions.values()
        ]
        return view

    def _client_view(self, session: Session) -> dict[str, Any]:
        return describe_client(session.client_id, session, session.client)

    async def disconnect_client(self, client_id: str, reason_code: int = ReasonCode.ADMINISTRATIVE_ACTION) -> bool:
        """Disconnect a connected client (v5: DISCONNECT with ``reason_code`` first)."""
        client = self.connected.get(client_id)
        if client is None:
            return False
        client.error = "disconnected by the server"
        client.kick(reason_code)
        return True

    def subscriptions(self) -> list[SubscriberEntry]:
        """Every subscription of every session."""
        return list(self.trie)

    def retained_messages(self) -> list[Publish]:
        """The retained messages as PUBLISH packets."""
        now = time.time()
        return [m.to_publish(m.qos, True, 0, now) for m in self.retained]

    async def delete_retained(self, topic: str) -> bool:
        """Clear the retained message of one topic."""
        message = self.retained.get(topic)
        if message is None:
            return False
        self.retained.delete(topic)
        self.persistence.retained(message, False)
        return True

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                      properties: Properties = NO_PROPERTIES) -> int:
        """Publish as the broker itself; returns how many sessions received it."""
        from ..mqtt.topics import validate_topic_name

        validate_topic_name(topic)
        packet = Publish(topic, payload, qos, retain, properties=properties)
        message = Message.from_publish(packet, None, time.time(), self.settings.max_message_expiry)
        self.stats.messages_received += 1
        delivered = await self._route_and_retain(None, message)
        if qos and self.persistence.must_wait:
            await self.persistence.barrier()
        return delivered


class _Offline:
    """What hooks see as `client` for a session whose connection is gone (delayed wills)."""

    def __init__(self, broker: Broker, session: Session) -> None:
        self.broker = broker
        self.client_id = session.client_id
        self.username = session.username
        self.protocol_level = session.protocol_level
        self.remote_address = None
        self.listener = None
        self.tls_peer_certificate = None
        self.connect = None


def _will_publish_properties(will: Any) -> Properties:
    """The will's properties as a PUBLISH carries them (the will delay is not forwarded)."""
    props: Properties = will.properties
    if props is NO_PROPERTIES or props.will_delay_interval is None:
        return props
    return replace(props, will_delay_interval=None)

