"""The life of a session: attach at CONNECT, take over, detach, wills, expiry, moving between brokers.

One client id's connections attach one at a time (a lock per client id): a second connection
waits, then takes over from the first (DISCONNECT 0x8E to a v5 client, the will handled as the
MQTT 5 specification says). A session that outlives its connection keeps its subscriptions in
the trie (so it still receives), publishes its will after the will delay, and expires. A
session can leave this broker (`session_moved`, `export_session`) or arrive from another one
(`import_session`, `load_stored_session`) with exactly the state a store records: that is the
seam a cluster plugin moves sessions through.

State owned: the attach lock of each client id being connected, and whether new connections
are accepted. Who changes it: the lifecycle itself (the broker switches ``accepting`` at start
and stop). It is the only part that changes the session registry (which sessions exist and
which connection each is attached to) and a session's will, expiry and attached client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..mqtt.packets import NO_PROPERTIES, Connect, Properties, Publish, Will
from ..mqtt.reason_codes import ReasonCode
from ..ratelimit import LogLimiter
from ..store.errors import StoreError
from ..store.records import SessionState
from .message import Message
from .persistence import StorageFailed, session_from_state, state_of
from .session import Session

if TYPE_CHECKING:
    from ..hooks import HookFacade
    from .client import Client
    from .deferred import Deferred
    from .delivery import Delivery
    from .persistence import Persistence
    from .registry import SessionRegistry
    from .router import Router
    from .settings import MqttSettings
    from .stats import Stats

log = logging.getLogger("hookmq.broker")
#: Refusals while the store cannot be read repeat with every reconnecting client.
_limited = LogLimiter(log)


class Refused(Exception):
    """A CONNECT must be answered with a refusing CONNACK carrying ``reason_code``."""

    def __init__(self, reason_code: int) -> None:
        super().__init__(f"connection refused: 0x{reason_code:02X}")
        self.reason_code = reason_code


class SessionLifecycle:
    """Attaching connections to sessions, and everything that happens to a session after."""

    def __init__(self, settings: MqttSettings, stats: Stats, registry: SessionRegistry, router: Router,
                 delivery: Delivery, persistence: Persistence, deferred: Deferred, broker: object = None) -> None:
        self.settings = settings
        self.stats = stats
        self.registry = registry
        self.router = router
        self.delivery = delivery
        self.persistence = persistence
        self.deferred = deferred
        self.hooks: HookFacade = deferred.hooks
        #: The broker, for the `client` object hooks see for an offline session.
        self.broker = broker
        #: Whether new connections may attach (False before start and while stopping).
        self.accepting = False
        self._attach_locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ CONNECT

    def refusal(self, client: Client, connect: Connect) -> int | None:
        """Refusals that depend on the server's state and limits rather than credentials."""
        settings = self.settings
        if not self.accepting:
            return ReasonCode.SERVER_UNAVAILABLE
        connected = self.registry.connected
        limit = settings.max_connections
        if limit and len(connected) >= limit and client.client_id not in connected:
            return ReasonCode.QUOTA_EXCEEDED
        will = connect.will
        if will is not None:
            if will.qos > settings.maximum_qos:
                return ReasonCode.QOS_NOT_SUPPORTED
            if will.retain and not settings.retain_available:
                return ReasonCode.RETAIN_NOT_SUPPORTED
        return None

    async def attach(self, client: Client, connect: Connect) -> tuple[Session, bool]:
        """Claim (`on_session_claim`), take over, resume or create the client's session.

        Returns the session and whether it was present; raises `Refused` when a plugin refused
        the claim. The claim runs before the client id's attach lock is taken, so that it may
        move the session in (`import_session`, which takes that lock) from any task.
        Connections with the same client id attach one at a time: the second waits and then
        takes over from the first, so no half-attached session is ever left behind.
        """
        if self.hooks.enabled("on_session_claim"):
            refusal = await self.hooks.first("on_session_claim", client=client, connect=connect)
            if refusal is not None:
                raise Refused(int(refusal))
        # The lock inline rather than through `_locked`: this runs for every CONNECT.
        client_id = client.client_id
        locks = self._attach_locks
        lock = locks.setdefault(client_id, asyncio.Lock())
        try:
            async with lock:
                return await self._attach(client, connect)
        finally:
            if not lock.locked() and locks.get(client_id) is lock:
                del locks[client_id]

    def can_attach_now(self, client: Client, connect: Connect) -> bool:
        """Whether `attach` would await nothing for this CONNECT, so `attach_now` may do it instead.

        True for a new session that needs no store read (a clean start, or no store), and for
        resuming a disconnected session held here (unless a shared store may have a later copy);
        False when a plugin claims sessions, another attach or move of this client id is under
        way (its lock is taken), a connection must be taken over, a session ended, or a store read.
        """
        if self.hooks.enabled("on_session_claim"):
            return False
        client_id = client.client_id
        if client_id in self._attach_locks:
            return False
        session = self.registry.sessions.get(client_id)
        if session is None:
            return connect.clean_start or not self.persistence.may_load()
        return session.client is None and not connect.clean_start and not self._changed_elsewhere(session)

    def attach_now(self, client: Client, connect: Connect) -> tuple[Session, bool]:
        """`attach` without awaiting, when `can_attach_now` said so (just before): the session and whether it was present."""
        client_id = client.client_id
        session = self.registry.sessions.get(client_id)
        if connect.clean_start:
            self.persistence.forget(client_id)
        return self._attached(client, connect, session)

    def holds(self, client_id: str) -> bool:
        """Whether a session of ``client_id`` is here or a connection of it is attaching (or moving) now."""
        return client_id in self.registry.sessions or client_id in self._attach_locks

    def _locked(self, client_id: str) -> _AttachLock:
        return _AttachLock(self._attach_locks, client_id)

    async def _attach(self, client: Client, connect: Connect) -> tuple[Session, bool]:
        client_id = client.client_id
        now = time.time()
        session = self.registry.sessions.get(client_id)
        if session is not None and session.client is not None:
            await self._take_over(session.client, now)
        if not connect.clean_start and (session is None or self._changed_elsewhere(session)):
            session = await self._load_stored_session(client_id, session)
        if session is not None and connect.clean_start:
            await self.end_session(session, now)
            session = None
        if connect.clean_start:
            self.persistence.forget(client_id)  # also what another node may have stored
        return self._attached(client, connect, session)

    def _attached(self, client: Client, connect: Connect, session: Session | None) -> tuple[Session, bool]:
        """Attach ``client`` to ``session`` (a new one when None): the session and whether it was present."""
        client_id = client.client_id
        registry = self.registry
        present = session is not None
        if session is None:
            session = Session(client_id)
        registry.sessions[client_id] = session
        self._configure(session, client, connect)
        session.client = client
        session.disconnected_at = None
        session.will_due_at = None
        registry.connected[client_id] = client
        stats = self.stats
        stats.clients_total += 1
        stats.clients_maximum = max(stats.clients_maximum, len(registry.connected))
        self.persistence.save_session(session)
        return session, present

    def _changed_elsewhere(self, session: Session) -> bool:
        """A disconnected session in a shared store may have been resumed by another broker."""
        return self.persistence.shared and session.client is None

    async def _load_stored_session(self, client_id: str, stale: Session | None) -> Session | None:
        """Read a session from the store, replacing this process's older copy of it.

        Raises `Refused` (Server unavailable) while the store cannot be read or earlier writes
        wait for their retry: a CONNECT then gets a CONNACK that says so, never a silent close.
        """
        try:
            session = await self.persistence.load_session(client_id)
        except (StorageFailed, StoreError) as error:
            _limited.log("store unreadable", logging.WARNING,
                         "refusing %s: its session cannot be read from the store now (%s)", client_id, error)
            raise Refused(ReasonCode.SERVER_UNAVAILABLE) from error
        if stale is not None:
            await self.router.forget(client_id)
            self.registry.sessions.pop(client_id, None)
        if session is not None:
            await self.router.install(session)
        return session

    def _configure(self, session: Session, client: Client, connect: Connect) -> None:
        """Apply this CONNECT's protocol level, user, expiry and will to the session."""
        level = client.protocol.level
        session.protocol_level = level
        session.username = client.username
        if level == 5:
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
        connected = self.registry.connected
        if connected.get(old.client_id) is old:
            del connected[old.client_id]
        session = self.registry.sessions.get(old.client_id)
        if session is None or session.client is not old:
            return
        session.client = None
        session.disconnected_at = now
        if session.will is not None:
            await self._will_after_disconnect(session, now)

    # ------------------------------------------------------------------ the connection ends

    async def client_gone(self, client: Client, session: Session | None) -> None:
        """The connection ended: will, session end or keep, `on_disconnect`."""
        if not client.established:
            return
        if not client.detached and session is not None:
            client.detached = True
            now = time.time()
            connected = self.registry.connected
            if connected.get(client.client_id) is client:
                del connected[client.client_id]
            session.client = None
            session.disconnected_at = now
            if client.clean_disconnect:
                session.will = None
            elif session.will is not None:
                await self._will_after_disconnect(session, now)
            self.router.release_shared_queue(session)
            if session.expiry_interval == 0:
                await self.end_session(session, now)
            else:
                self.persistence.save_session(session)
        if self.hooks.enabled("on_disconnect"):
            await self.hooks.notify("on_disconnect", client=client, reason_code=client.disconnect_reason,
                                    error=client.error)

    async def _will_after_disconnect(self, session: Session, now: float) -> None:
        """Publish the will now, or schedule it after the will delay (MQTT 5)."""
        if session.will_delay > 0 and session.expiry_interval > 0:
            session.will_due_at = now + min(session.will_delay, session.expiry_interval)
            return
        await self.publish_will(session)

    async def publish_will(self, session: Session) -> None:
        """Send the session's will message and forget it."""
        will = session.will
        session.will = None
        session.will_due_at = None
        if will is None:
            return
        hooks = self.hooks
        if hooks.enabled("on_will"):
            will = await hooks.transform("on_will", "will", client=session.client or _Offline(self.broker, session),
                                         will=will)
            if will is None:
                return
        packet = Publish(will.topic, will.payload, will.qos, will.retain, properties=_will_publish_properties(will))
        message = Message.from_publish(packet, session.client_id, time.time(), self.settings.max_message_expiry)
        await self.router.publish(None, message)
        await hooks.notify("on_will_sent", client_id=session.client_id, packet=packet)

    async def end_session(self, session: Session, now: float) -> None:
        """Discard a session: pending will, subscriptions, queued shared messages go elsewhere."""
        if session.will is not None and session.client is None:
            await self.publish_will(session)
        if session.subscriptions:
            await self.router.remove_all(session)
        inflight = list(session.inflight.values())
        session.inflight.clear()
        for out in inflight:
            if out.share is not None:
                self.router.redeliver_shared(out.message, out.share, session.client_id)
            else:
                self.delivery.qos_dropped(session, out, "session ended")
        self.router.release_shared_queue(session)
        sessions = self.registry.sessions
        if sessions.get(session.client_id) is session:
            del sessions[session.client_id]
        self.persistence.delete_session(session)

    # ------------------------------------------------------------------ time

    async def housekeeping(self, now: float, monotonic_now: float) -> None:
        """Keep-alive timeouts, due wills and session expiry, with the clocks handed in."""
        for client in list(self.registry.connected.values()):
            if client.protocol.keep_alive_expired(monotonic_now):
                client.error = "keep-alive timeout"
                client.kick(ReasonCode.KEEP_ALIVE_TIMEOUT)
                client.conn.abort()
        for session in list(self.registry.sessions.values()):
            if session.client is not None:
                continue
            if session.will_due_at is not None and now >= session.will_due_at:
                await self.publish_will(session)
            expires_at = session.expires_at()
            if expires_at is not None and now >= expires_at:
                await self._expire(session, now)

    async def _expire(self, session: Session, now: float) -> None:
        """End a session whose expiry passed, unless another broker resumed it meanwhile."""
        if self.persistence.shared and await self.persistence.resumed_elsewhere(session):
            # Our copy is stale: drop it here, leave the stored (live) session alone.
            await self.router.forget(session.client_id)
            self.registry.sessions.pop(session.client_id, None)
            return
        await self.end_session(session, now)
        self.deferred.notify("on_client_expired", client_id=session.client_id)

    # ------------------------------------------------------------------ sessions at start, and moving

    async def install_loaded(self, sessions: list[Session]) -> None:
        """The sessions the store held at start: registered, their subscriptions in the trie."""
        registry = self.registry.sessions
        for session in sessions:
            registry[session.client_id] = session
            await self.router.install(session, restored=True)

    async def session_moved(self, client_id: str, clean_start: bool) -> SessionState | None:
        """The client connected elsewhere: end it here exactly as a takeover by that connection would.

        A connection attached here gets DISCONNECT 0x8E (v5) and its will is handled as a
        single-broker takeover handles it. With ``clean_start`` the session then ends here
        (a pending will is published, the stored state deleted) and None is returned; without,
        the session leaves this broker and its state is returned for the new owner.
        """
        async with self._locked(client_id):
            session = self.registry.sessions.get(client_id)
            if session is None:
                return None
            now = time.time()
            if session.client is not None:
                await self._take_over(session.client, now)
            if clean_start:
                await self.end_session(session, now)
                return None
            return await self._hand_out(session)

    async def _hand_out(self, session: Session) -> SessionState:
        """Remove a session from this broker and return its state (its stored copy stays where it is shared)."""
        state = state_of(session)
        await self.router.forget(session.client_id)
        session.subscriptions.clear()
        sessions = self.registry.sessions
        if sessions.get(session.client_id) is session:
            del sessions[session.client_id]
        if self.persistence.shared:
            await self.persistence.barrier()  # the new owner reads the shared store: it must be complete
            self.persistence.released(session.client_id)
        else:
            self.persistence.delete_session(session)
        return state

    def export_session(self, client_id: str) -> SessionState | None:
        """A session's state as the store records it; the session stays here unchanged."""
        session = self.registry.sessions.get(client_id)
        return state_of(session) if session is not None else None

    async def import_session(self, state: SessionState) -> None:
        """Take in a session from another broker, disconnected, replacing any copy held here.

        A connection attached to the copy held here is ended as a takeover ends it.
        """
        client_id = state.session.client_id
        async with self._locked(client_id):
            now = time.time()
            old = self.registry.sessions.get(client_id)
            if old is not None:
                if old.client is not None:
                    await self._take_over(old.client, now)
                await self.router.forget(client_id)
                self.registry.sessions.pop(client_id, None)
            session = session_from_state(state, now)
            self.registry.sessions[client_id] = session
            await self.router.install(session, restored=False)
            if not self.persistence.shared:
                self.persistence.save_all(session)

    async def load_stored_session(self, client_id: str) -> bool:
        """Take in a session from the configured store (one another process stored); False when none."""
        async with self._locked(client_id):
            old = self.registry.sessions.get(client_id)
            if old is not None and old.client is not None:
                return False
            session = await self._load_stored_session(client_id, old)
            if session is None:
                return False
            self.registry.sessions[client_id] = session
            return True


class _AttachLock:
    """The per-client-id attach lock, dropped from the table once nobody holds or waits for it."""

    __slots__ = ("_client_id", "_lock", "_locks")

    def __init__(self, locks: dict[str, asyncio.Lock], client_id: str) -> None:
        self._locks = locks
        self._client_id = client_id
        self._lock = locks.setdefault(client_id, asyncio.Lock())

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        lock = self._lock
        lock.release()
        if not lock.locked() and self._locks.get(self._client_id) is lock:
            del self._locks[self._client_id]


class _Offline:
    """What hooks see as `client` for a session whose connection is gone (delayed wills)."""

    def __init__(self, broker: object, session: Session) -> None:
        self.broker = broker
        self.client_id = session.client_id
        self.username = session.username
        self.protocol_level = session.protocol_level
        self.remote_address = None
        self.listener = None
        self.tls_peer_certificate = None
        self.connect = None


def _will_publish_properties(will: Will) -> Properties:
    """The will's properties as a PUBLISH carries them (the will delay is not forwarded)."""
    props: Properties = will.properties
    if props is NO_PROPERTIES or props.will_delay_interval is None:
        return props
    return replace(props, will_delay_interval=None)


__all__ = ["Refused", "SessionLifecycle"]

