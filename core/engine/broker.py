"""The broker: builds the engine's parts, wires them together, runs them, and owns the public API.

`Broker` is where the parts meet (see docs/architecture.md, "Inside the engine"): the
session registry, the retained set, persistence, delivery, the router and the session
lifecycle, each owning its own state, composed here and never inheriting from each other. It
starts and stops them with the listeners and the plugins, runs the time-driven duties, and is
the one object the CLI, the testing fixtures and plugins talk to.

State owned: the configuration, the plugin manager and hook facade, the listeners, the live
connections (for shutdown) and the broker's own tasks. Who changes it: `start` and `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Iterable, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..mqtt.errors import ProtocolError
from ..mqtt.packets import NO_PROPERTIES, Properties, Publish
from ..mqtt.reason_codes import ReasonCode
from ..mqtt.trie import SubscriberEntry, SubscriptionTrie
from ..store.records import SessionState
from .banner import log_banner
from .client import Client
from .collector import tune_collector
from .connection import ConnectionHandler
from .connlog import ConnectionLog
from .deadlines import ConnectDeadlines
from .deferred import Deferred
from .delivery import Delivery
from .lifecycle import SessionLifecycle
from .message import Message
from .partial import PartialPacketBudget
from .parts import Parts
from .persistence import Persistence
from .protocol import ProtocolState
from .registry import SessionRegistry
from .retained import TOMBSTONE_NS, RetainedMessages, RetainedVersion
from .router import InjectResult, RouteEntry, Router
from .session import Session, ShareKey
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
        self._plugin_manager: Any = None
        self.hooks: HookFacade = self._build_hooks()
        self.stats = Stats()
        self.deferred = Deferred(self.hooks)
        self.registry = SessionRegistry()
        self.retained = RetainedMessages()
        self.persistence = Persistence(config, self.stats, self.hooks)
        self.delivery = Delivery(self.settings, self.stats, self.persistence, self.deferred)
        self.router = Router(self.settings, self.stats, self.registry, self.delivery, self.persistence,
                             self.retained, self.hooks)
        self.lifecycle = SessionLifecycle(self.settings, self.stats, self.registry, self.router, self.delivery,
                                          self.persistence, self.deferred, broker=self)
        #: Bytes held in partly received large packets, for every connection together.
        self.partial_packets = PartialPacketBudget(self.settings.max_incomplete_packet_bytes)
        #: The per-connection log lines (connects, ends with their cause), rate-limited.
        self.connection_log = ConnectionLog(config.log.connection_lines_per_second, config.log.connection_lines_burst)
        #: Every live connection, established or not (for shutdown).
        self._connections: set[Client] = set()
        #: Tasks of connections beyond their first (catching up after a hook, ending): cancelled at stop.
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._parts = Parts(self.settings, self.stats, self.hooks, self.deferred, self.persistence, self.delivery,
                            self.router, self.lifecycle, self.partial_packets, self.connection_log, self,
                            self._connections, self._connection_tasks,
                            ConnectDeadlines(self.settings.connect_timeout, self._connections))
        self._sys = SysPublisher(self.info, self.settings.sys_interval, self.retained, self.router,
                                 self.persistence, self.hooks, self)
        self.listeners: list[RunningListener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._started = False

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

    @property
    def sessions(self) -> dict[str, Session]:
        """Every session, connected or not, by client id (read only: the session lifecycle changes it)."""
        return self.registry.sessions

    @property
    def connected(self) -> dict[str, Client]:
        """Established connections by client id (read only)."""
        return self.registry.connected

    @property
    def trie(self) -> SubscriptionTrie:
        """The router's subscription trie (local subscriptions and plugin-added routes)."""
        return self.router.trie

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Open the store, start plugins and listeners, log the banner, then announce `on_started`."""
        from ..transport.listeners import start_listeners

        self.stats.started = time.time()
        try:
            loaded = await self.persistence.open()
            for message, version in loaded.retained:
                self.retained.store(message, version)
            await self.hooks.per_plugin("plugin_start", broker=self)
            await self.lifecycle.install_loaded(loaded.sessions)
            self.listeners = await start_listeners(self.config.listeners, self._open_connection,
                                                   log=self.connection_log.limiter)
        except BaseException:
            await self._undo_partial_start()
            raise
        self._tasks = [
            asyncio.create_task(self._housekeeping(), name="hookmq-housekeeping"),
            asyncio.create_task(self.deferred.run(), name="hookmq-deferred-hooks"),
        ]
        if self.settings.sys_interval > 0:
            self._tasks.append(asyncio.create_task(self._sys.run(), name="hookmq-sys"))
        self._started = True
        self.lifecycle.accepting = True
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
        self.lifecycle.accepting = False
        for listener in self.listeners:
            await listener.close()
        for client in list(self._connections):
            client.kick(ReasonCode.SERVER_SHUTTING_DOWN)
        await self._wait_for_connections(timeout=3.0)
        for listener in self.listeners:
            await listener.close_connections(grace=0.5)
        await self._end_connection_tasks()
        self._parts.connect_deadlines.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.deferred.flush()
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

    async def _end_connection_tasks(self) -> None:
        """Cancel what connections still run (a hook that never returns, say) and wait for their clean-up."""
        for _ in range(3):  # a clean-up may start another task; each round waits for those
            tasks = list(self._connection_tasks)
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def serve(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly.

        A signal during start-up lets the start finish (it is bounded) and then stops as usual,
        so plugins stop in order (a cluster node leaves instead of being seen as failed); a
        second signal then abandons the start.
        """
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        starting = asyncio.ensure_future(self.start())
        abandoned: list[bool] = []

        def on_signal() -> None:
            if not starting.done():
                if stop_requested.is_set():
                    abandoned.append(True)
                    starting.cancel()
                else:
                    log.info("stop requested during start-up: stopping once started (signal again to stop at once)")
            stop_requested.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal)
        try:
            await starting
        except asyncio.CancelledError:
            if not abandoned:
                raise
            return  # abandoned by a second signal; `start` undid what had started
        tune_collector()
        try:
            await stop_requested.wait()
        finally:
            log.info("stopping")
            await self.stop()

    def _open_connection(self, conn: Connection) -> Awaitable[None] | None:
        """The listener handler, called as a client is accepted: None when its read events serve it, else what to await.

        The client leaves `_connections` when its connection ends (`ConnectionHandler`), which
        for a pushing connection is after this returns.
        """
        protocol = ProtocolState(self.settings, time.monotonic())
        client = Client(conn, protocol, self.stats, self.deferred, self)
        self._connections.add(client)
        return ConnectionHandler(client, self._parts).open()

    async def flush_deferred(self) -> None:
        """Run the queued notifications and hooked writes now."""
        await self.deferred.flush()

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
        await self.lifecycle.housekeeping(now, monotonic_now)
        for message in self.retained.expired(now):
            self.persistence.retained(message, False)
            self.deferred.notify("on_retained_expired", topic=message.topic)
        self.retained.forget_tombstones(int(now * 1e9) - TOMBSTONE_NS)

    # ------------------------------------------------------------------ public API

    def info(self) -> dict[str, Any]:
        """The `$SYS` figures as a dictionary."""
        stats = self.stats
        registry = self.registry
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
            "clients_connected": len(registry.connected),
            "clients_disconnected": registry.offline_count(),
            "clients_maximum": stats.clients_maximum,
            "clients_total": stats.clients_total,
            "subscriptions": self.router.subscription_count(),
            # Messages retained on client topics, as the dashboard's API counts them; `$SYS` apart.
            "retained": self.retained.client_count,
            "retained_system": self.retained.system_count,
            "inflight": registry.inflight_count(),
            "queued": registry.queued_count(),
            "store_backend": self.config.storage.backend,
            "store_error": self.persistence.last_error or "",
            "store_pending_writes": self.persistence.pending,
            "log_lines_suppressed": self.connection_log.suppressed,
        }

    def clients(self) -> list[dict[str, Any]]:
        """Every session, connected or not, as a summary."""
        return [describe_client(session.client_id, session, session.client) for session in self.sessions.values()]

    def client(self, client_id: str, subscriptions: bool = True) -> dict[str, Any] | None:
        """One session's summary, with its subscriptions unless asked not to, or None."""
        session = self.sessions.get(client_id)
        if session is None:
            return None
        view = describe_client(session.client_id, session, session.client)
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
        own tables, which hold the same entries as the trie, at C speed; plugin-added routes
        are not subscriptions)."""
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
        """Clear the retained message of one topic (`on_retain_message` fires with ``stored=False``)."""
        message = self.retained.get(topic)
        if message is None:
            return False
        self.retained.delete(topic)
        self.persistence.retained(message, False)
        if self.hooks.enabled("on_retain_message"):
            await self.hooks.notify("on_retain_message", client=None, packet=message.to_publish(message.qos, True),
                                    stored=False, version=self.retained.version(topic))
        return True

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                      properties: Properties = NO_PROPERTIES) -> int:
        """Publish as the broker itself; returns how many sessions (and destinations) received it.

        Raises `ProtocolError` 0x90 for an invalid or a `$` topic (docs/security.md). With QoS 1/2 it returns once the message is as safe as a client's acknowledged one:
        stored where ``durability = "ack_after_write"`` asks, and acknowledged by the
        destinations forwarding plugins sent it to.
        """
        _refuse_reserved_topic(topic)
        packet = Publish(topic, payload, qos, retain, properties=properties)
        message = Message.from_publish(packet, None, time.time(), self.settings.max_message_expiry)
        self.stats.messages_received += 1
        acks: list[Awaitable[Any]] | None = [] if qos and self.router.has_destinations else None
        delivered = await self.router.publish(None, message, acks)
        if qos and self.persistence.must_wait:
            await self.persistence.barrier()
        if acks:
            for ack in acks:
                await ack
        return delivered

    # ------------------------------------------------------------------ the surface of a cluster plugin

    def add_route(self, destination: str, topic_filter: str) -> bool:
        """Send messages matching ``topic_filter`` (``$share/<group>/…`` for a share group) to ``destination`` too.

        Routes live in the same trie as local subscriptions, so a message is matched once for
        both; each matching destination is handed to `on_forward` once per message, however
        many of its routes match. Returns False when the destination already had that route.
        Raises `hookmq.mqtt.errors.ProtocolError` for an invalid filter.
        """
        return self.router.add_route(destination, topic_filter)

    def remove_route(self, destination: str, topic_filter: str) -> bool:
        """Stop sending ``topic_filter``'s messages to ``destination``; False when it had no such route."""
        return self.router.remove_route(destination, topic_filter)

    def remove_destination(self, destination: str) -> int:
        """Drop every route of ``destination`` at once (a node left); returns how many it had."""
        return self.router.remove_destination(destination)

    def routes(self, destination: str | None = None) -> list[RouteEntry]:
        """The routes of one destination, or of every destination."""
        return self.router.routes(destination)

    async def inject(self, packet: Publish, origin: str | None = None,
                     shares: Iterable[ShareKey] = (), identity: bytes | None = None,
                     redelivered: bool = False) -> InjectResult:
        """Deliver a message that arrived from elsewhere to this broker's sessions only.

        ``packet`` is the message as its publisher sent it: topic, payload, QoS, retain flag
        (delivered as published to subscriptions with Retain As Published; the retained set
        is not changed: use `replace_retained`), and the publisher's properties, whose
        Message Expiry Interval is the expiry *remaining* (0: already expired, not delivered).
        ``origin`` is the publishing client's id, for No Local. Ordinary subscriptions all get
        the message; of the share groups only those named in ``shares`` (``(group, filter)``),
        each to one local member. The message is never handed to `on_forward`. With QoS 1/2
        this returns once the message is as safe as a local publish would make it (stored
        where ``durability = "ack_after_write"`` asks).

        ``identity`` (the sending node's name for the message, cluster-wide unique) is stored
        with each session's copy; a ``redelivered`` message (sent again after a node's crash)
        skips the sessions that hold a copy with the same identity already, so a message a
        crashed node had stored is not queued twice.

        This is the one engine entry point for messages from another node: an invalid or a
        `$` topic raises `ProtocolError` 0x90, so a peer cannot forge this broker's `$SYS`.
        """
        _refuse_reserved_topic(packet.topic)
        message = Message.from_publish(packet, origin, time.time(), self.settings.max_message_expiry)
        message.identity = identity
        self.stats.messages_received += 1
        result = await self.router.inject(message, tuple(shares), redelivered)
        if packet.qos and self.persistence.must_wait:
            await self.persistence.barrier()
        return result

    async def publish_from_node(self, packet: Publish, origin_client_id: str | None) -> int:
        """The older name of `inject` (no share groups): how many local sessions received the message."""
        return (await self.inject(packet, origin_client_id)).delivered

    async def session_moved(self, client_id: str, clean_start: bool = False) -> SessionState | None:
        """The client connected to another broker: end it here as a takeover by that connection would.

        A connection attached here gets DISCONNECT 0x8E (Session taken over, v5) and its will
        is handled exactly as a takeover on one broker handles it. With ``clean_start`` the
        session then ends here (its pending will is published, its stored state deleted) and
        None is returned; otherwise the session leaves this broker (its subscriptions leave
        the trie, `on_subscription_removed` fires) and its state, as the store records it, is
        returned for the new owner's `import_session`. With a shared store the stored copy is
        complete when this returns and is left in place; otherwise it is deleted here.
        """
        return await self.lifecycle.session_moved(client_id, clean_start)

    def holds_client_id(self, client_id: str) -> bool:
        """Whether a session of ``client_id`` is here, or a CONNECT of it is attaching or the session
        moving now (cheap: for a cluster plugin that need not ask `session_moved` about a stranger)."""
        return self.lifecycle.holds(client_id)

    def export_session(self, client_id: str) -> SessionState | None:
        """A session's state as the store records it (subscriptions, inflight both ways, queue, will, expiry), or None."""
        return self.lifecycle.export_session(client_id)

    async def import_session(self, state: SessionState) -> None:
        """Take in a session from another broker, disconnected, replacing any copy held here.

        Its subscriptions enter the trie (`on_subscription_added` fires); a connection
        attached to the copy held here is ended as a takeover ends it. With a store that is
        not shared it is written there; a shared store is assumed to hold it already.
        """
        await self.lifecycle.import_session(state)

    async def check_store(self, timeout: float = 1.0) -> str | None:
        """Whether the store answers now: None when it does (or the broker has no store),
        else one line saying why not. One cheap read (the broker's saved counters), bounded by
        ``timeout``; for readiness probes, not for the message path."""
        store = self.persistence.store
        if store is None:
            return None
        try:
            await asyncio.wait_for(store.load_counters(), timeout)
        except TimeoutError:
            return f"the {self.config.storage.backend} store did not answer within {timeout:g} s"
        except Exception as error:  # whatever the backend raises: the probe reports it, the broker goes on
            return f"the {self.config.storage.backend} store failed: {type(error).__name__}: {error}"
        return None

    async def load_stored_session(self, client_id: str) -> bool:
        """Take in a session another process stored in the shared store (adopting a dead node's session).

        False when the store holds none, or a connection is attached to it here.
        """
        return await self.lifecycle.load_stored_session(client_id)

    def publish_system(self, topic: str, payload: bytes) -> int:
        """Set a `$SYS/…` figure of this broker (a retained message) and deliver it to local subscribers only.

        For plugins that add figures of their own (the cluster's under `$SYS/cluster/…`). Like
        the broker's own `$SYS/broker/…` topics it never leaves this broker: it is not handed to
        `on_forward`, and `inject` refuses `$` topics from elsewhere. An unchanged payload is not
        sent again; an empty one is stored as ``ok`` (an empty retained payload would clear the
        topic). Returns how many sessions received it. Raises ValueError for a topic outside `$SYS/`.
        """
        from ..mqtt.topics import validate_topic_name

        if not topic.startswith("$SYS/"):
            raise ValueError(f"topic {topic!r}: system figures live under $SYS/")
        validate_topic_name(topic)
        payload = payload or b"ok"
        current = self.retained.get(topic)
        if current is not None and current.payload == payload:
            return 0
        message = Message(topic, payload, 0, True)
        self.retained.store(message)
        return self.router.route_local(message)

    def retained_versions(self) -> list[RetainedVersion]:
        """The retained set with a version per topic, cleared topics (tombstones) included."""
        return self.retained.snapshot()

    def replace_retained(self, entries: Iterable[RetainedVersion]) -> list[RetainedVersion]:
        """Apply retained states made elsewhere; each wins only over an older version. Returns those applied.

        Nothing is delivered (the retained set is what new subscriptions get). The applied
        states are written to this broker's store unless the store is shared (then it is
        the truth, and whoever made the change wrote it there).
        """
        applied = self.retained.changes(entries)
        if not self.persistence.shared:
            for entry in applied:
                if entry.message is not None and entry.message.payload:
                    self.persistence.retained(entry.message, True)
                else:
                    self.persistence.retained(Message(entry.topic, b"", 0, True), False)
        return applied


def _refuse_reserved_topic(topic: str) -> None:
    """Raise ProtocolError for an invalid topic name or a `$` one (reserved for the broker)."""
    from ..mqtt.topics import validate_topic_name

    validate_topic_name(topic)
    if topic.startswith("$"):
        raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, f"topic {topic!r}: '$' topics are reserved for the broker")


def describe_client(client_id: str, session: Session | None, client: Client | None) -> dict[str, Any]:
    """One client's summary, connected (``client`` given) or only a stored session."""
    return {
        "client_id": client_id,
        "username": client.username if client else (session.username if session else None),
        "remote_address": client.remote_address if client else None,
        "listener": client.listener if client else None,
        "protocol_level": client.protocol.level if client else (session.protocol_level if session else None),
        "connected": client.connected if client else False,
        "connected_at": client.connected_at if client else None,
        "keep_alive": client.protocol.keep_alive if client else 0,
        "clean_start": client.clean_start if client else False,
        "subscriptions": len(session.subscriptions) if session else 0,
        "inflight": len(session.inflight) if session else 0,
        "queued": len(session.queue) if session else 0,
    }


__all__ = ["Broker", "describe_client"]
