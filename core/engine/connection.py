"""Serving one connection: the CONNECT handshake, then its packets, as they arrive.

`ConnectionHandler.open` starts serving a new connection. A connection whose transport can
push what it receives (`Connection.set_receiver`: TCP and TLS) is served from its read events
from the first byte on: the CONNECT handshake (`hookmq.engine.handshake`) runs in the read event
that completes CONNECT, with no task, coroutine or read future, unless it must await a
plugin's hook, enhanced authentication, a takeover or a store read (it then goes on in a
task, and comes back to pushing after CONNACK). After CONNACK each read event calls the
`ConnectionHandler` itself from the transport's `data_received`, which decodes the bytes and
runs each packet's handler right there, so an idle connection holds no task and no coroutine,
and a packet costs no wake-up of one. A handler that must wait (a plugin's hook, a full queue of
acknowledgements, SUBSCRIBE and the rarer packets) returns an awaitable: the connection then
stops the pushing, and a task of its own awaits it, handles the packets that came after it in
order, reads what arrived meanwhile, and hands the connection back to the push path once it has
caught up. Transports that cannot push (WebSocket) keep a task that reads in a loop and feeds
the same handlers. Outgoing messages are written synchronously by the delivery path, so no task
is created per message. A QoS 1/2 acknowledgement that must wait (for the store with
`durability = "ack_after_write"`, or for the plugins that forwarded the message) goes into the
client's acknowledgement queue, released in order by one task per client.

State owned: the session this connection attached, and the queue of acknowledgements waiting
with the task that releases them. Who changes it: this handler alone; it changes the session's
``incoming_qos2`` and, through the delivery part, its inflight window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..mqtt.errors import ProtocolError, ProtocolViolation
from ..mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
)
from ..mqtt.reason_codes import SUBACK_V3_FAILURE, ReasonCode
from ..mqtt.topics import parse_shared
from ..mqtt.trie import SubscriberEntry
from . import handshake
from .client import Client, ClientClosed
from .persistence import StorageFailed
from .protocol import check_capabilities
from .session import AWAIT_PUBCOMP

if TYPE_CHECKING:
    from .parts import Parts
    from .session import Session

log = logging.getLogger("hookmq.client")

_PINGRESP = b"\xd0\x00"

#: First bytes of the acknowledgements the handlers write (`Client.send_ack`).
_PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 0x40, 0x50, 0x62, 0x70

#: The "QoS" of a queued PUBREL (QoS 2 towards the client, sent once its "pubrel" state is stored).
_RELEASE = 3

#: One acknowledgement waiting: (store operation number, QoS or _RELEASE, packet id, reason code, forwarding acks).
_PendingAck = tuple[int, int, int, int, "list[Awaitable[Any]] | None"]

#: What a packet handler returns: None when it is done, else what must be awaited before the next packet.
Waiting = Awaitable[None] | None


class ConnectionHandler:
    """The packet handlers of one client connection, run from its read events."""

    # Thousands of idle connections each carry one of these.
    __slots__ = ("_acks", "client", "parts", "session")

    def __init__(self, client: Client, parts: Parts) -> None:
        self.client = client
        self.parts = parts
        self.session: Session | None = None
        #: Acknowledgements waiting, created on first use: most clients never wait.
        self._acks: _AckQueue | None = None

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> Awaitable[None] | None:
        """Start serving a new connection: None when its read events do it (the transport pushes), else the coroutine to await.

        The connection joins the broker's one connect timer at once. On a transport that pushes
        (TCP, TLS) `_connecting` receives its first bytes and runs the handshake in the read
        event itself; otherwise (WebSocket) the returned coroutine reads them.
        """
        client = self.client
        self.parts.connect_deadlines.add(client)
        if client.conn.set_receiver(self._connecting):
            return None
        return self._guarded(self._serve())

    async def _serve(self) -> bool:
        """CONNECT, CONNACK, the packets that came with CONNECT, then reading; True once handed over."""
        client = self.client
        pending = await handshake.read_connect(client, self.parts)
        if pending is None:
            return False
        refusal = handshake.begin(client, self.parts, pending[0])
        established = await self._establish(pending, refusal)
        del pending  # what only the handshake needed is freed at CONNACK
        return established and await self._read_loop()

    async def _establish_then_read(self, pending: tuple[Connect, list[Packet]], refusal: int | None) -> bool:
        """`_establish`, then reading until the connection ends or pushes again (True)."""
        return await self._establish(pending, refusal) and await self._read_loop()

    async def _establish(self, pending: tuple[Connect, list[Packet]], refusal: int | None) -> bool:
        """The handshake after `handshake.begin`, awaiting what it must, then the packets that came with CONNECT.

        False when the connection was refused.
        """
        connect, rest = pending
        self.session = await handshake.establish(self.client, self.parts, connect, refusal)
        if self.session is None:
            return False
        if rest:
            waiting = self._handle(rest, 0)
            if waiting is not None:
                await waiting
        return True

    def _connecting(self, data: bytes) -> None:
        """A read event before CONNECT on a pushing connection (its receiver until CONNACK); never raises.

        Once CONNECT is complete the handshake runs right here (`handshake.establish_now`) and
        the handler becomes the receiver, unless something must be awaited (`handshake.waits`:
        a plugin's hook, enhanced authentication, a takeover, a store read): then the connection
        stops pushing and `_establish_then_read` goes on in a task, the bytes after CONNECT kept for it.
        """
        client = self.client
        conn = client.conn
        if not data:
            conn.set_receiver(None)
            self._spawn(_nothing_more())
            return
        parts = self.parts
        try:
            taken = handshake.take_connect(client, parts, data)
            if taken is None:
                return
            connect, rest = taken
            refusal = handshake.begin(client, parts, connect)
            if handshake.waits(client, parts, connect):
                conn.set_receiver(None)
                self._spawn(self._establish_then_read(taken, refusal))
                return
            session = handshake.establish_now(client, parts, connect, refusal)
            if session is None:
                raise ClientClosed  # refused: the CONNACK said why
            self.session = session
            waiting = self._handle(rest, 0) if rest else None
        except Exception as exc:
            conn.set_receiver(None)
            self._ended_by(exc)
            self._spawn(_nothing_more())
            return
        if waiting is not None or client.detached or not conn.set_receiver(self):
            conn.set_receiver(None)
            self._spawn(self._catch_up(waiting))

    async def _guarded(self, body: Awaitable[bool]) -> None:
        """Await part of the connection's life; when the connection ends there, record why and clean up."""
        handed_over = False
        try:
            handed_over = await body
        except asyncio.CancelledError:
            self.client.error = "broker stopping"
            self.client.note_end("server-shutdown")
            raise
        except Exception as exc:
            self._ended_by(exc)
        finally:
            if not handed_over:
                await self._finish()

    def _ended_by(self, exc: Exception) -> None:
        """Record why a handler's exception ends the connection (a broker bug costs one client, never the broker)."""
        client = self.client
        if isinstance(exc, ProtocolError):
            client.protocol_error(exc)
        elif isinstance(exc, ClientClosed):
            pass
        elif isinstance(exc, TimeoutError):
            client.error = "no CONNECT within the connect timeout"
            client.note_end("connect-timeout", detail=client.error)
        elif isinstance(exc, (ConnectionError, OSError)):
            client.error = f"connection error: {exc}"
            client.note_end("connection-error", detail=str(exc) or type(exc).__name__)
        else:
            log.error("internal error serving %r", client, exc_info=exc)
            client.error = f"internal error: {exc}"
            client.note_end("internal-error", ReasonCode.UNSPECIFIED_ERROR, str(exc))
            client.send_disconnect(ReasonCode.UNSPECIFIED_ERROR)

    async def _finish(self) -> None:
        """The connection has ended: release what it held, close it, end or keep its session."""
        client = self.client
        parts = self.parts
        try:
            if self._acks is not None:
                self._acks.cancel()  # unacknowledged messages are resent by the client
            hooks = parts.hooks
            if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
                await parts.deferred.flush()  # hooked writes (a refusing CONNACK) go out first
            client.conn.close()
            parts.connection_log.ended(client)
            if client.protocol.partial_reserved:
                parts.partial_packets.release(client.protocol)
            await parts.sessions.client_gone(client, self.session)
        finally:
            parts.connections.discard(client)

    def _spawn(self, body: Awaitable[bool]) -> None:
        """Continue the connection in a task of its own (kept by the broker until it is done)."""
        tasks = self.parts.tasks
        task = asyncio.get_running_loop().create_task(self._guarded(body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # ------------------------------------------------------------------ reading

    def __call__(self, data: bytes) -> None:
        """A read event of a connection in push mode: handle its packets now (b"": the stream ended).

        The handler itself is the connection's receiver (no bound method per connection),
        called by the transport's `data_received`; it never raises. When a handler must wait,
        the connection stops pushing and `_catch_up` goes on in a task.
        """
        conn = self.client.conn
        if not data:
            conn.set_receiver(None)
            self._spawn(_nothing_more())
            return
        try:
            waiting = self._take(data)
        except Exception as exc:
            conn.set_receiver(None)
            self._ended_by(exc)
            self._spawn(_nothing_more())
            return
        if waiting is not None or self.client.detached:
            conn.set_receiver(None)
            self._spawn(self._catch_up(waiting))

    async def _catch_up(self, waiting: Waiting) -> bool:
        """Await what a handler waits for, then read on until the connection can push again."""
        if waiting is not None:
            await waiting
        return await self._read_loop()

    async def _read_loop(self) -> bool:
        """Read and handle chunks until the connection ends (False) or is handed to the push path (True)."""
        client = self.client
        conn = client.conn
        while not client.detached:
            if conn.set_receiver(self):
                return True
            data = await conn.read()
            if not data:
                return False
            waiting = self._take(data)
            if waiting is not None:
                await waiting
        return False

    def _take(self, data: bytes) -> Waiting:
        """Decode one chunk and handle its packets; what a handler waits for is returned, the rest chained to it."""
        client = self.client
        protocol = client.protocol
        stats = self.parts.stats
        stats.bytes_received += len(data)
        # ProtocolState.receive, inlined: this runs for every chunk read.
        protocol.last_seen = time.monotonic()
        decoder = protocol.decoder
        packets = decoder.feed(data)
        if decoder.incomplete_packet_size != protocol.partial_reserved:
            self.parts.partial_packets.hold(protocol)
        if not packets:
            return None
        stats.packets_received += len(packets)
        return self._handle(packets, 0)

    def _handle(self, packets: list[Packet], index: int) -> Waiting:
        """Run the handlers of ``packets[index:]`` in order; stops at the first that must wait (see `_then`)."""
        if self.parts.hooks.enabled("on_packet_read"):
            return self._dispatch_all(packets, index)
        waiting, index = self._run(packets, index)
        if waiting is not None and index < len(packets):
            return self._then(waiting, packets, index)
        return waiting

    def _run(self, packets: list[Packet], index: int) -> tuple[Waiting, int]:
        """Handle packets from ``index`` until one must wait: what it waits for, and where to go on.

        The index comes back as ``len(packets)`` when the batch is done or the client detached.
        """
        client = self.client
        count = len(packets)
        while index < count:
            packet = packets[index]
            index += 1
            # A QoS 1 message's two packets by direct calls: compiled, these are native calls,
            # while a call through the table goes through Python's calling convention.
            if type(packet) is Publish:
                waiting = self._on_publish(packet)
            elif type(packet) is Puback:
                waiting = self._on_puback(packet)
            else:
                handler = _HANDLERS.get(type(packet))
                if handler is None:
                    raise ProtocolViolation(f"a client may not send {type(packet).__name__} here")
                waiting = handler(self, packet)
            if client.detached:
                return waiting, count
            if waiting is not None:
                return waiting, index
        return None, count

    async def _then(self, waiting: Awaitable[None], packets: list[Packet], index: int) -> None:
        """Await one handler, then handle the packets after it, awaiting each that must wait.

        A loop, not a chain of coroutines: a read batch can hold thousands of packets that each
        wait (a cluster's QoS 1 publishes wait for other nodes), and nesting one coroutine per
        packet would exceed the interpreter's recursion limit.
        """
        count = len(packets)
        while True:
            await waiting
            if self.client.detached or index >= count:
                return
            if self.parts.hooks.enabled("on_packet_read"):
                await self._dispatch_all(packets, index)
                return
            next_waiting, index = self._run(packets, index)
            if next_waiting is None:
                return
            waiting = next_waiting

    async def _dispatch_all(self, packets: list[Packet], index: int) -> None:
        """Every packet through `on_packet_read` first (a plugin implements it), then its handler."""
        client = self.client
        hooks = self.parts.hooks
        for packet in packets[index:]:
            if hooks.enabled("on_packet_read"):
                packet = await hooks.transform("on_packet_read", "packet", client=client, packet=packet)
            handler = _HANDLERS.get(type(packet))
            if handler is None:
                raise ProtocolViolation(f"a client may not send {type(packet).__name__} here")
            waiting = handler(self, packet)
            if waiting is not None:
                await waiting
            if client.detached:
                return

    # ------------------------------------------------------------------ PUBLISH in

    def _on_publish(self, packet: Publish) -> Waiting:
        """A message from the client: check it, route it, acknowledge it (without a coroutine unless a hook waits)."""
        parts = self.parts
        hooks = parts.hooks
        if hooks.any_enabled(PUBLISH_WAITS) or (packet.retain and hooks.any_enabled(RETAINED_PUBLISH_WAITS)):
            return self._on_publish_hooked(packet)
        settings = parts.settings
        client = self.client
        if packet.properties is not NO_PROPERTIES:
            packet = client.protocol.resolve_topic_alias(packet, settings)
        elif not packet.topic:
            raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, "PUBLISH without a topic name")
        qos = packet.qos
        if qos > settings.maximum_qos or (packet.retain and not settings.retain_available):
            check_capabilities(packet, settings)  # raises with the reason code
        session = self.session
        assert session is not None
        if qos == 2:
            if packet.packet_id in session.incoming_qos2:
                return self._acknowledge_duplicate(packet.packet_id)
            if len(session.incoming_qos2) >= settings.receive_maximum:
                raise ProtocolError(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
                                    "more unacknowledged QoS 2 messages than Receive Maximum")
        persistence = parts.persistence
        recorded_before = persistence.issued
        router = parts.router
        # Only forwarding hands back acknowledgements to wait for: without destinations nothing is allocated.
        acks: list[Awaitable[Any]] | None = [] if qos and router.has_destinations else None
        reason = self._refusal(packet)
        if reason is None:
            if qos == 2 and persistence.keeps_pending(session):
                identity, redelivered = self._pending_identity(session, packet.packet_id)
                return self._route_once_pending(session, packet, acks, identity, redelivered, recorded_before)
            reason = router.publish_now(client, packet, acks)
        if not qos:
            return None
        return self._acknowledge(session, packet.packet_id, qos, reason, recorded_before, acks)

    async def _route_once_pending(self, session: Session, packet: Publish, acks: list[Awaitable[Any]] | None,
                                  identity: bytes, redelivered: bool, recorded_before: int) -> None:
        """Route a QoS 2 message once its id is stored as pending: a crash after a copy left finds it so.

        A copy leaves by a forward or by a write to a local persistent subscriber (which, the
        message having an identity, is itself written only once that copy is stored).
        """
        parts = self.parts
        with contextlib.suppress(StorageFailed):  # a failing store: the acknowledgement says so
            await parts.persistence.barrier()
        reason = parts.router.publish_now(self.client, packet, acks, identity, redelivered)
        waiting = self._acknowledge(session, packet.packet_id, 2, reason, recorded_before, acks)
        if waiting is not None:
            await waiting

    async def _on_publish_hooked(self, packet: Publish) -> None:
        """`_on_publish` when a plugin implements a hook on the way (ACL, `on_publish`, ...): awaited in order."""
        parts = self.parts
        settings = parts.settings
        client = self.client
        if packet.properties is not NO_PROPERTIES:
            packet = client.protocol.resolve_topic_alias(packet, settings)
        elif not packet.topic:
            raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, "PUBLISH without a topic name")
        qos = packet.qos
        if qos > settings.maximum_qos or (packet.retain and not settings.retain_available):
            check_capabilities(packet, settings)  # raises with the reason code
        session = self.session
        assert session is not None
        if qos == 2 and packet.packet_id in session.incoming_qos2:
            waiting = self._acknowledge_duplicate(packet.packet_id)
            if waiting is not None:
                await waiting
            return
        if qos == 2 and len(session.incoming_qos2) >= settings.receive_maximum:
            raise ProtocolError(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
                                "more unacknowledged QoS 2 messages than Receive Maximum")
        persistence = parts.persistence
        recorded_before = persistence.issued
        acks: list[Awaitable[Any]] | None = [] if parts.router.has_destinations and qos else None
        reason = await self._admit_publish(packet)
        if reason is None:
            if qos == 2 and persistence.keeps_pending(session):
                identity, redelivered = self._pending_identity(session, packet.packet_id)
                with contextlib.suppress(StorageFailed):  # routed once the pending id is stored
                    await persistence.barrier()
                reason = await parts.router.publish_from(client, packet, acks, identity, redelivered)
            else:
                reason = await parts.router.publish_from(client, packet, acks)
        if not qos:
            return
        waiting = self._acknowledge(session, packet.packet_id, qos, reason, recorded_before, acks)
        if waiting is not None:
            await waiting

    def _acknowledge(self, session: Session, packet_id: int, qos: int, reason: int, recorded_before: int,
                     acks: list[Awaitable[Any]] | None) -> Waiting:
        """PUBACK/PUBREC now, or queued behind the store and forwarding; what to await when the queue is full."""
        persistence = self.parts.persistence
        if qos == 2 and reason < 0x80:
            session.hold_qos2((packet_id,))
            if not acks:
                persistence.incoming(session, packet_id, True)
            # else stored once the forwards are acknowledged (`_release_acks`): a publisher that
            # resends after this node's crash must find its message not yet received.
        queue = self._acks
        if (queue is not None and queue.pending) or acks or (
                persistence.must_wait and persistence.issued != recorded_before):
            return self._queue_ack(persistence.issued, qos, packet_id, reason, acks or None)
        self.client.send_ack(_PUBACK if qos == 1 else _PUBREC, packet_id, reason)
        return None

    def _pending_identity(self, session: Session, packet_id: int) -> tuple[bytes, bool]:
        """The identity of a QoS 2 message about to be routed, stored as pending before any copy leaves.

        Given here, at the publisher's node, whether the message is forwarded or only
        delivered on this node: until the id is stored as received (`_acknowledge`, or
        `_release_acks` once forwards are acknowledged), the store holds it with this
        identity, so a node that loads the session after this one's crash sends the
        publisher's resend again under it, as a redelivery that sessions already holding or
        having completed the message skip — a local subscriber's session too, whose copy is
        stored with the identity before it is written. A resend of such an id here is that
        case: the identity comes back (and is redelivered).
        """
        resend = session.resend_identities
        if resend and packet_id in resend:
            identity, redelivered = resend.pop(packet_id), True
        else:
            identity, redelivered = os.urandom(16), False
        self.parts.persistence.incoming_pending(session, packet_id, identity)
        return identity, redelivered

    def _acknowledge_duplicate(self, packet_id: int) -> Waiting:
        """A QoS 2 resend of an id not yet released: PUBREC again, never ahead of the first copy's."""
        queue = self._acks
        if queue is not None and queue.pending:
            return self._queue_ack(self.parts.persistence.issued, 2, packet_id, 0, None)
        self.client.send_ack(_PUBREC, packet_id)
        return None

    def _queue_ack(self, target: int, qos: int, packet_id: int, reason: int,
                   acks: list[Awaitable[Any]] | None) -> Waiting:
        """Queue an acknowledgement until the store has what the message changed (and forwarding is acknowledged).

        The connection reads on meanwhile (acknowledgements leave in order, from one task per
        client), so a publisher's throughput does not depend on the store's commit latency.
        At most Receive Maximum acknowledgements wait; beyond that the reading waits too (the
        returned awaitable).
        """
        queue = self._acks
        if queue is None:
            queue = self._acks = _AckQueue()
        queue.pending.append((target, qos, packet_id, reason, acks))
        if queue.task is None or queue.task.done():
            queue.task = asyncio.get_running_loop().create_task(self._release_acks(queue))
        if len(queue.pending) >= self.parts.settings.receive_maximum:
            return self._queue_room(queue)
        return None

    async def _queue_room(self, queue: _AckQueue) -> None:
        """Wait until the acknowledgement queue is below Receive Maximum again."""
        while len(queue.pending) >= self.parts.settings.receive_maximum:
            queue.sent.clear()
            await queue.sent.wait()

    async def _release_acks(self, queue: _AckQueue) -> None:
        """Send queued acknowledgements, in order, as the store makes them durable."""
        persistence = self.parts.persistence
        client = self.client
        session = self.session
        assert session is not None
        pending = queue.pending
        sent = queue.sent
        while pending and not client.detached:
            target, qos, packet_id, reason, acks = pending[0]
            try:
                await persistence.barrier(target)
                if acks:
                    await _forwarded(acks)
                    if qos == 2 and reason < 0x80:
                        persistence.incoming(session, packet_id, True)
                        await persistence.barrier(persistence.issued)
            except (StorageFailed, _ForwardFailed) as exc:
                if qos == _RELEASE:  # not sent: the "pubrel" state is in memory, resent at reconnect
                    pending.popleft()
                    sent.set()
                    continue
                log.warning("not acknowledging %s's message: %s", client.client_id, exc)
                reason = ReasonCode.UNSPECIFIED_ERROR
                if qos == 2:
                    session.release_qos2(packet_id)
                    persistence.incoming(session, packet_id, False)
                if client.protocol.level != 5:
                    pending.popleft()  # no v3 code says "not stored": unacknowledged, the client resends
                    sent.set()
                    continue
            pending.popleft()
            client.send_ack(_PUBACK if qos == 1 else _PUBREC if qos == 2 else _PUBREL, packet_id, reason)
            sent.set()

    async def _stored_before_ack(self, recorded_before: int) -> bool:
        """With `ack_after_write`, wait until what this packet changed is stored.

        ``recorded_before`` is the store's operation count before the packet was handled: when
        nothing was recorded since (clean sessions only), there is nothing to wait for.
        False when the store could not store it.
        """
        persistence = self.parts.persistence
        if not persistence.must_wait or persistence.issued == recorded_before:
            return True
        try:
            await persistence.barrier()
        except StorageFailed as exc:
            log.warning("not acknowledging %s's message: %s", self.client.client_id, exc)
            return False
        return True

    def _refusal(self, packet: Publish) -> int | None:
        """Refusals before routing that need no hook: `$`-topics, payload format. None admits."""
        if packet.topic.startswith("$"):
            return ReasonCode.NOT_AUTHORIZED
        if packet.properties.payload_format_indicator == 1:
            try:
                packet.payload.decode("utf-8")
            except UnicodeDecodeError:
                return ReasonCode.PAYLOAD_FORMAT_INVALID
        return None

    async def _admit_publish(self, packet: Publish) -> int | None:
        """Refusals before routing: `$`-topics, payload format, ACL. None admits."""
        refusal = self._refusal(packet)
        if refusal is not None:
            return refusal
        hooks = self.parts.hooks
        if hooks.enabled("on_acl_check") and not await hooks.decide(
            "on_acl_check", client=self.client, topic=packet.topic, write=True
        ):
            return ReasonCode.NOT_AUTHORIZED
        return None

    # ------------------------------------------------------------------ acknowledgements in

    def _not_found(self) -> int:
        return ReasonCode.PACKET_IDENTIFIER_NOT_FOUND if self.client.protocol.level == 5 else 0

    def _on_puback(self, packet: Puback) -> Waiting:
        """The client acknowledged a QoS 1 message."""
        session = self.session
        assert session is not None
        if self.parts.delivery.complete(session, self.client, packet.packet_id, expect=1):
            return self._qos_complete(packet.packet_id)
        return None

    def _on_pubrec(self, packet: Pubrec) -> Waiting:
        """QoS 2 step 1 towards the client: answer PUBREL (or complete on an error code)."""
        session = self.session
        assert session is not None
        out = session.inflight.get(packet.packet_id)
        if out is None or out.qos != 2:
            self.client.send_ack(_PUBREL, packet.packet_id, self._not_found())
            return None
        if packet.reason_code >= 0x80:
            if self.parts.delivery.complete(session, self.client, packet.packet_id, expect=2):
                return self._qos_complete(packet.packet_id)
            return None
        out.state = AWAIT_PUBCOMP
        persistence = self.parts.persistence
        recorded_before = persistence.issued
        persistence.save_outgoing(session, out)
        if (self._acks is not None and self._acks.pending) or (
                persistence.must_wait and persistence.issued != recorded_before):
            # PUBREL only once "pubrel" is durable: a crash after it must not resend the PUBLISH,
            # which the client (having released the id) would take as a new message.
            return self._queue_ack(persistence.issued, _RELEASE, packet.packet_id, 0, None)
        self.client.send_ack(_PUBREL, packet.packet_id)
        return None

    def _on_pubcomp(self, packet: Pubcomp) -> Waiting:
        """QoS 2 completed towards the client."""
        session = self.session
        assert session is not None
        if self.parts.delivery.complete(session, self.client, packet.packet_id, expect=2):
            return self._qos_complete(packet.packet_id)
        return None

    def _on_pubrel(self, packet: Pubrel) -> Waiting:
        """QoS 2 from the client: release the packet id and answer PUBCOMP."""
        session = self.session
        assert session is not None
        if packet.packet_id in session.incoming_qos2:
            session.release_qos2(packet.packet_id)
            self.parts.persistence.incoming(session, packet.packet_id, False)
            self.client.send_ack(_PUBCOMP, packet.packet_id)
        else:
            self.client.send_ack(_PUBCOMP, packet.packet_id, self._not_found())
        return None

    def _qos_complete(self, packet_id: int) -> Waiting:
        hooks = self.parts.hooks
        if hooks.enabled("on_qos_complete"):
            return hooks.notify("on_qos_complete", client=self.client, packet_id=packet_id)
        return None

    # ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE

    async def _on_subscribe(self, packet: Subscribe) -> None:
        """Add subscriptions, answer SUBACK, then send matching retained messages."""
        parts = self.parts
        hooks = parts.hooks
        client = self.client
        if hooks.enabled("on_subscribe"):
            packet = await hooks.transform("on_subscribe", "packet", client=client, packet=packet)
        identifiers = packet.properties.subscription_identifiers
        identifier = identifiers[0] if identifiers else None
        if identifier is not None and not parts.settings.subscription_identifier_available:
            raise ProtocolError(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, "subscription identifiers are off")
        codes: list[int] = []
        retained_for: list[SubscriberEntry] = []
        recorded_before = parts.persistence.issued
        for subscription in packet.subscriptions:
            code, entry, is_new = await self._subscribe_one(subscription, identifier)
            codes.append(code)
            if entry is not None and entry.share_group is None:
                handling = entry.options.retain_handling
                if handling == 0 or (handling == 1 and is_new):
                    retained_for.append(entry)
        if not await self._stored_before_ack(recorded_before):
            # Granted in memory, but not durable: say so (0x80) rather than promise what a crash loses.
            codes = [ReasonCode.UNSPECIFIED_ERROR if code < 0x80 else code for code in codes]
        client.send(Suback(packet.packet_id, tuple(codes)))
        await hooks.notify("on_subscribed", client=client, packet=packet, reason_codes=tuple(codes))
        session = self.session
        if session is not None:
            for entry in retained_for:
                parts.router.send_retained(session, entry)

    async def _subscribe_one(self, subscription: Subscription, identifier: int | None
                             ) -> tuple[int, SubscriberEntry | None, bool]:
        """Check and add one filter; returns (reason code, entry, whether it is new)."""
        parts = self.parts
        settings = parts.settings
        client = self.client
        topic_filter = subscription.topic_filter
        group, real_filter = parse_shared(topic_filter)
        failure = SUBACK_V3_FAILURE if client.protocol.level != 5 else None
        if group is not None:
            if not settings.shared_subscription_available:
                return failure or ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, None, False
            if subscription.options.no_local:
                raise ProtocolViolation("No Local on a shared subscription")
        if not settings.wildcard_subscription_available and ("+" in real_filter or "#" in real_filter):
            return failure or ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED, None, False
        hooks = parts.hooks
        if hooks.enabled("on_acl_check") and not await hooks.decide(
            "on_acl_check", client=client, topic=topic_filter, write=False
        ):
            return failure or ReasonCode.NOT_AUTHORIZED, None, False
        options = subscription.options
        if options.qos > settings.maximum_qos:
            options = type(options)(settings.maximum_qos, options.no_local, options.retain_as_published,
                                    options.retain_handling)
        limit = settings.max_subscriptions_per_client
        session = self.session
        assert session is not None
        if limit and topic_filter not in session.subscriptions and len(session.subscriptions) >= limit:
            return failure or ReasonCode.QUOTA_EXCEEDED, None, False
        entry = SubscriberEntry(client.client_id, topic_filter, options, identifier)
        replaced = await parts.router.subscribe(session, entry)
        return options.qos, entry, replaced is None

    async def _on_unsubscribe(self, packet: Unsubscribe) -> None:
        """Remove subscriptions and answer UNSUBACK."""
        parts = self.parts
        hooks = parts.hooks
        client = self.client
        if hooks.enabled("on_unsubscribe"):
            packet = await hooks.transform("on_unsubscribe", "packet", client=client, packet=packet)
        session = self.session
        assert session is not None
        recorded_before = parts.persistence.issued
        router = parts.router
        codes = tuple([
            ReasonCode.SUCCESS if await router.unsubscribe(session, topic_filter)
            else ReasonCode.NO_SUBSCRIPTION_EXISTED
            for topic_filter in packet.topic_filters
        ])
        if not await self._stored_before_ack(recorded_before):
            codes = tuple(ReasonCode.UNSPECIFIED_ERROR for _ in codes)
        client.send(Unsuback(packet.packet_id, codes if client.protocol.level == 5 else ()))
        await hooks.notify("on_unsubscribed", client=client, packet=packet)

    # ------------------------------------------------------------------ PING, DISCONNECT, AUTH

    def _on_pingreq(self, packet: Pingreq) -> Waiting:
        self.client.write_bytes(_PINGRESP)
        return None

    def _on_disconnect(self, packet: Disconnect) -> Waiting:
        """The client closes: keep or discard the will, apply a new session expiry."""
        session = self.session
        assert session is not None
        client = self.client
        new_expiry = packet.properties.session_expiry_interval
        if new_expiry is not None:
            requested = client.connect.properties.session_expiry_interval if client.connect else None
            if not requested and new_expiry != 0:
                raise ProtocolError(ReasonCode.PROTOCOL_ERROR, "session expiry changed from 0 at DISCONNECT")
            session.expiry_interval = min(new_expiry, self.parts.settings.max_session_expiry)
        client.disconnect_reason = packet.reason_code
        client.clean_disconnect = packet.reason_code != ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        client.note_end("client-disconnect", packet.reason_code if client.protocol.level == 5 else None)
        raise ClientClosed

    async def _on_auth(self, packet: Auth) -> None:
        """Re-authentication (MQTT 5) after the connection is established."""
        client = self.client
        if client.protocol.level != 5 or client.connect is None:
            raise ProtocolViolation("AUTH outside MQTT 5")
        method = client.connect.properties.authentication_method
        if method is None or packet.properties.authentication_method != method:
            raise ProtocolViolation("AUTH with a different authentication method")
        reply = await self.parts.hooks.first("on_auth_packet", client=client, packet=packet)
        if not isinstance(reply, Auth) or reply.reason_code >= 0x80:
            code = reply.reason_code if isinstance(reply, Auth) else ReasonCode.NOT_AUTHORIZED
            raise ProtocolError(code, "re-authentication failed")
        client.send(reply)


class _AckQueue:
    """A client's acknowledgements waiting for the store or for forwarding, released in order by one task."""

    __slots__ = ("pending", "sent", "task")

    def __init__(self) -> None:
        self.pending: deque[_PendingAck] = deque()
        #: Set whenever an acknowledgement left (the read loop may go on when it was full).
        self.sent = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


class _ForwardFailed(Exception):
    """A plugin that forwarded the message could not get it acknowledged where it went."""


async def _forwarded(acks: list[Awaitable[Any]]) -> None:
    """Wait for every forwarding acknowledgement; any failure means the message is not safe yet."""
    for ack in acks:
        try:
            await ack
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _ForwardFailed(f"forwarding failed: {exc!r}") from exc


async def _nothing_more() -> bool:
    """The body of a `_guarded` task that only ends the connection."""
    return False


#: The hooks `_on_publish_hooked` may wait for on every PUBLISH: the ACL's and the router's
#: (`Router.PUBLISH_HOOKS`, a test checks each is here or in `RETAINED_PUBLISH_WAITS`); while none is
#: implemented, a PUBLISH is handled without a coroutine.
PUBLISH_WAITS = frozenset({"on_acl_check", "on_publish", "on_published", "on_select_subscribers"})

#: The hooks a PUBLISH waits for only when it carries the retain flag. Kept apart because the
#: cluster's routing implements `on_retain_message`: were it in `PUBLISH_WAITS`, every message of
#: a cluster node would take the coroutine path (14-15 % more work per message) for a hook that
#: only retained ones call.
RETAINED_PUBLISH_WAITS = frozenset({"on_retain_message"})

#: The handler of each packet type a client may send after CONNECT: it returns None when done,
#: or an awaitable that the next packet must wait for.
_HANDLERS: dict[type[Any], Callable[[ConnectionHandler, Any], Waiting]] = {
    Publish: ConnectionHandler._on_publish,
    Puback: ConnectionHandler._on_puback,
    Pubrec: ConnectionHandler._on_pubrec,
    Pubrel: ConnectionHandler._on_pubrel,
    Pubcomp: ConnectionHandler._on_pubcomp,
    Subscribe: ConnectionHandler._on_subscribe,
    Unsubscribe: ConnectionHandler._on_unsubscribe,
    Pingreq: ConnectionHandler._on_pingreq,
    Disconnect: ConnectionHandler._on_disconnect,
    Auth: ConnectionHandler._on_auth,
}


__all__ = ["PUBLISH_WAITS", "RETAINED_PUBLISH_WAITS", "ConnectionHandler"]
