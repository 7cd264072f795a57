"""The broker: sessions, routing, retained messages, wills, expiry and the public Broker API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import replace
from itertools import chain
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..hooks import RejectPublish
from ..mqtt.errors import ProtocolError
from ..mqtt.packets import NO_PROPERTIES, Connect, Properties, Publish
from ..mqtt.reason_codes import ReasonCode
from ..mqtt.trie import SubscriberEntry, SubscriptionTrie
from .banner import log_banner
from .client import Client, describe_client
from .connlog import ConnectionLog
from .delivery import Delivery
from .message import Message
from .partial import PartialPacketBudget
from .persistence import Persistence
from .retained import RetainedMessages
from .session import AWAIT_ACK, Session, ShareKey
from .stats import Stats
from .sysinfo import SysPublisher

if TYPE_CHECKING:
    from ..config import Config
    from ..hooks import HookFacade
    from ..transport.base import Connection
    from ..transport.listeners import RunningListener

log = logging.getLogger("hookmq.broker")



class Broker(Delivery):
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
        #: Bytes held in partly received large packets, for every connection together.
        self.partial_packets = PartialPacketBudget(self.settings.max_incomplete_packet_bytes)
        #: The per-connection log lines (connects, ends with their cause), rate-limited.
        self.connection_log = ConnectionLog(config.log.connection_lines_per_second, config.log.connection_lines_burst)

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
        from ..transport.listeners import start_listeners

        self.stats.started = time.time()
        self._deferred_wakeup = asyncio.Event()
        try:
            await self.persistence.open()
            await self.hooks.per_plugin("plugin_start", broker=self)
            self.listeners = await start_listeners(self.config.listeners, self._serve_connection,
                                                   log=self.connection_log.limiter)
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
        await log_banner(self)
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
        self.connection_log.summary()
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
        """Store a retained message if flagged, then deliver to every matching subscriber.

        Every message from outside the broker passes here (a client's PUBLISH, a will, the
        Broker API, a message from another node), so a `$` topic is dropped here whatever a
        hook turned it into: only the broker writes `$SYS`, and it does so without this path.
        """
        if message.topic.startswith("$"):
            log.warning("dropped a message to the reserved topic %r", message.topic)
            return 0
        if message.retain and self.settings.retain_available:
            stored = self.retained.store(message)
            self.persistence.retained(message, stored)
            if self.hooks.enabled("on_retain_message"):
                await self.hooks.notify("on_retain_message", client=client,
                                        packet=message.to_publish(message.qos, True), stored=stored)
        if self.hooks.enabled("on_select_subscribers"):
            return await self._route_selected(client, message)
        return self.route(message)

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
            # Messages retained on client topics, as the dashboard's API counts them; `$SYS` apart.
            "retained": self.retained.client_count,
            "retained_system": self.retained.system_count,
            "inflight": sum(len(s.inflight) for s in self.sessions.values()),
            "queued": sum(len(s.queue) for s in self.sessions.values()),
            "store_backend": self.config.storage.backend,
            "store_error": self.persistence.last_error or "",
            "store_pending_writes": self.persistence.pending,
            "log_lines_suppressed": self.connection_log.suppressed,
        }

    def clients(self) -> list[dict[str, Any]]:
        """Every session, connected or not, as a summary."""
        return [self._client_view(session) for session in self.sessions.values()]

    def client(self, client_id: str, subscriptions: bool = True) -> dict[str, Any] | None:
        """One session's summary, with its subscriptions unless asked not to, or None."""
        session = self.sessions.get(client_id)
        if session is None:
            return None
        view = self._client_view(session)
        if subscriptions:
            view["subscription_list"] = [
                {"topic_filter": e.topic_filter, "qos": e.options.qos, "identifier": e.identifier}
                for e in session.subscriptions.values()
            ]
        return view

    def client_ids(self) -> list[str]:
        """Every session's client id, oldest session first (a cheap snapshot for paging)."""
        return list(self.sessions)

    def client_subscriptions(self, client_id: str) -> list[SubscriberEntry] | None:
        """One session's subscriptions in the order they were made, or None without a session."""
        session = self.sessions.get(client_id)
        return None if session is None else list(session.subscriptions.values())

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
        """Every subscription of every session, session by session (built from the sessions'
        own tables, which hold the same entries as the trie, at C speed)."""
        return list(chain.from_iterable(session.subscriptions.values() for session in self.sessions.values()))

    def retained_topics(self) -> list[str]:
        """The topics that hold a retained message, oldest first (a cheap snapshot for paging)."""
        return self.retained.topics()

    def retained_message(self, topic: str) -> Publish | None:
        """The retained message of one topic as a PUBLISH packet, or None."""
        message = self.retained.get(topic)
        return None if message is None else message.to_publish(message.qos, True, 0, time.time())

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
        _refuse_reserved_topic(topic)
        packet = Publish(topic, payload, qos, retain, properties=properties)
        message = Message.from_publish(packet, None, time.time(), self.settings.max_message_expiry)
        self.stats.messages_received += 1
        delivered = await self._route_and_retain(None, message)
        if qos and self.persistence.must_wait:
            await self.persistence.barrier()
        return delivered


    async def publish_from_node(self, packet: Publish, origin_client_id: str | None) -> int:
        """Route a message that arrived from another cluster node; returns how many sessions received it.

        The one entry point for inter-node traffic (docs/security.md): a peer node is refused
        a `$` topic as a client is (ProtocolError 0x90), so a compromised or confused node
        cannot forge this broker's `$SYS`.
        """
        _refuse_reserved_topic(packet.topic)
        message = Message.from_publish(packet, origin_client_id, time.time(), self.settings.max_message_expiry)
        self.stats.messages_received += 1
        return await self._route_and_retain(None, message)


def _refuse_reserved_topic(topic: str) -> None:
    """Raise ProtocolError for an invalid topic name or a `$` one (reserved for the broker)."""
    from ..mqtt.topics import validate_topic_name

    validate_topic_name(topic)
    if topic.startswith("$"):
        raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, f"topic {topic!r}: '$' topics are reserved for the broker")


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

