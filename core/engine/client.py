"""One connected client: reads packets from its connection and applies MQTT semantics.

A `Client` lives as long as one network connection; its `Session` may outlive it. The read
loop decodes bytes into packets and dispatches each to a handler; outgoing messages are
written synchronously by the broker's fan-out, so no task is created per message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..mqtt.codec import Decoder, encode, encode_publish
from ..mqtt.errors import ProtocolError, ProtocolViolation
from ..mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Properties,
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
from .connlog import EndCause, kick_cause, note_end
from .handshake import ClientClosed, Handshake
from .message import Message, with_packet_id
from .persistence import StorageFailed
from .session import AWAIT_PUBCOMP, Outgoing, Session

if TYPE_CHECKING:
    from ..transport.base import Connection
    from .broker import Broker

log = logging.getLogger("hookmq.client")

_PINGRESP = b"\xd0\x00"

#: Largest packet read before CONNECT is accepted (a CONNECT with a large will still fits).
PRE_CONNECT_MAX_PACKET = 1 << 20

#: Seconds a closing connection may take to flush before it is cut (a peer that stopped reading).
CLOSE_GRACE = 5.0


class Client(Handshake):
    """The broker side of one network connection."""

    __slots__ = ()  # declared by Handshake, the base class

    def __init__(self, broker: Broker, conn: Connection) -> None:
        self.broker = broker
        self.conn = conn
        self.remote_address = conn.remote_address
        self.listener = conn.listener
        self.tls_peer_certificate = conn.tls_peer_certificate
        # Until CONNECT is accepted, nobody may make the broker buffer more than a CONNECT needs.
        self.decoder = Decoder(max_packet_size=min(broker.settings.max_packet_size, PRE_CONNECT_MAX_PACKET))
        self.protocol_level = 4
        self.client_id = ""
        self.username: str | None = None
        self.connect: Connect | None = None
        self.session: Session | None = None
        self.keep_alive = 0
        self.clean_start = True
        self.connected_at = time.time()
        self.last_seen = time.monotonic()
        #: How many QoS 1/2 messages may be unacknowledged towards the client.
        self.send_quota = broker.settings.max_inflight
        #: The client's Maximum Packet Size (v5), 0 when it set none.
        self.max_packet_out = 0
        self.topic_aliases: dict[int, str] = {}
        #: Topic aliases the broker assigned towards this client (MQTT 5), created on first use.
        self.alias_out: dict[str, int] | None = None
        #: The client's Topic Alias Maximum: how many aliases the broker may assign (0: none).
        self.alias_out_max = 0
        self.request_problem_information = True
        #: True once CONNACK accepted the connection.
        self.established = False
        #: True after a DISCONNECT that discards the will.
        self.clean_disconnect = False
        #: Set when the session moved to another connection or the broker already cleaned up.
        self.detached = False
        self.disconnect_reason: int = ReasonCode.NORMAL_DISCONNECTION
        self.error: str | None = None
        #: Why the connection ends, for the log (`connlog.note_end`); None until decided.
        self.end_cause: EndCause | None = None
        self._drain_task: asyncio.Task[None] | None = None
        #: Acknowledgements waiting for the store: (operation number, QoS, packet id, reason code).
        # Created on first use: most clients never wait for the store.
        self._pending_acks: deque[tuple[int, int, int, int]] | None = None
        self._ack_task: asyncio.Task[None] | None = None
        self._acks_sent: asyncio.Event | None = None
        self.assigned_client_id: str | None = None
        self._auth_success_properties: Properties | None = None
        #: Bytes of the broker's partial-packet budget this connection holds (partial.py).
        self.partial_reserved = 0

    def __repr__(self) -> str:
        return f"<Client {self.client_id!r} {self.remote_address} v{self.protocol_level}>"

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the connection from CONNECT to close; never raises."""
        try:
            pending = await self._read_connect()
            if pending is None:
                return
            connect, rest = pending
            if not await self._establish(connect):
                return
            for packet in rest:
                await self._dispatch(packet)
            await self._read_loop()
        except ProtocolError as exc:
            self._protocol_error(exc)
        except ClientClosed:
            pass
        except TimeoutError:
            self.error = "no CONNECT within the connect timeout"
            note_end(self, "connect-timeout", detail=self.error)
        except (ConnectionError, OSError) as exc:
            self.error = f"connection error: {exc}"
            note_end(self, "connection-error", detail=str(exc) or type(exc).__name__)
        except asyncio.CancelledError:
            self.error = "broker stopping"
            note_end(self, "server-shutdown")
            raise
        except Exception as exc:  # a broker bug must cost one client, never the broker
            log.exception("internal error serving %r", self)
            self.error = f"internal error: {exc}"
            note_end(self, "internal-error", ReasonCode.UNSPECIFIED_ERROR, str(exc))
            self._send_disconnect(ReasonCode.UNSPECIFIED_ERROR)
        finally:
            if self._ack_task is not None and not self._ack_task.done():
                self._ack_task.cancel()  # unacknowledged messages are resent by the client
            if self.broker.hooks.enabled("on_packet_encode") or self.broker.hooks.enabled("on_packet_sent"):
                await self.broker.flush_deferred()  # hooked writes (a refusing CONNACK) go out first
            self.conn.close()
            self.broker.connection_log.ended(self)
            if self.partial_reserved:
                self.broker.partial_packets.resize(self.partial_reserved, 0)
                self.partial_reserved = 0
            await self.broker.client_gone(self)

    async def _read_loop(self) -> None:
        """Read, decode and dispatch until the connection ends."""
        conn = self.conn
        decoder = self.decoder
        stats = self.broker.stats
        while not self.detached:
            data = await conn.read()
            if not data:
                return
            self.last_seen = time.monotonic()
            stats.bytes_received += len(data)
            packets = decoder.feed(data)
            if decoder.incomplete_packet_size != self.partial_reserved:
                self.hold_partial_packet()
            stats.packets_received += len(packets)
            for packet in packets:
                await self._dispatch(packet)
                if self.detached:
                    return

    def hold_partial_packet(self) -> None:
        """Reserve the broker-wide budget for the large packet being received, or refuse it."""
        reserved = self.broker.partial_packets.resize(self.partial_reserved, self.decoder.incomplete_packet_size)
        if reserved is None:
            raise ProtocolError(ReasonCode.QUOTA_EXCEEDED,
                                "the broker holds too many partly received large packets")
        self.partial_reserved = reserved

    async def _dispatch(self, packet: Packet) -> None:
        """Run the handler of one packet."""
        hooks = self.broker.hooks
        if hooks.enabled("on_packet_read"):
            packet = await hooks.transform("on_packet_read", "packet", client=self, packet=packet)
        handler = _HANDLERS.get(type(packet))
        if handler is None:
            raise ProtocolViolation(f"a client may not send {type(packet).__name__} here")
        await handler(self, packet)

    # ------------------------------------------------------------------ PUBLISH in

    async def _on_publish(self, packet: Publish) -> None:
        """A message from the client: check it, route it, acknowledge it."""
        broker = self.broker
        settings = broker.settings
        if packet.properties is not NO_PROPERTIES:
            if packet.properties.subscription_identifiers:
                raise ProtocolViolation("a client's PUBLISH may not carry a Subscription Identifier")
            packet = self._resolve_topic_alias(packet)
        elif not packet.topic:
            raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, "PUBLISH without a topic name")
        qos = packet.qos
        if qos > settings.maximum_qos:
            self._close_with(ReasonCode.QOS_NOT_SUPPORTED, f"QoS {qos} is above the maximum")
        if packet.retain and not settings.retain_available:
            self._close_with(ReasonCode.RETAIN_NOT_SUPPORTED, "retained messages are not available")
        session = self.session
        assert session is not None
        if qos == 2 and packet.packet_id in session.incoming_qos2:
            self._send(Pubrec(packet.packet_id))
            return
        if qos == 2 and len(session.incoming_qos2) >= settings.receive_maximum:
            self._close_with(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED, "more unacknowledged QoS 2 messages than Receive Maximum")
        persistence = broker.persistence
        recorded_before = persistence.issued
        reason = await self._admit_publish(packet)
        if reason is None:
            reason = await broker.publish_from(self, packet)
        if qos == 2 and reason < 0x80:
            session.incoming_qos2.add(packet.packet_id)
            persistence.incoming(session, packet.packet_id, True)
        if not qos:
            return
        if self._pending_acks or (persistence.must_wait and persistence.issued != recorded_before):
            await self._ack_when_stored(persistence.issued, qos, packet.packet_id, reason)
        else:
            self._send_ack(Puback if qos == 1 else Pubrec, packet.packet_id, reason)

    async def _ack_when_stored(self, target: int, qos: int, packet_id: int, reason: int) -> None:
        """Queue an acknowledgement until the store has what the message changed.

        The read loop goes on meanwhile (acknowledgements leave in order, from one task per
        client), so a publisher's throughput does not depend on the store's commit latency.
        At most Receive Maximum acknowledgements wait; beyond that the read loop waits too.
        """
        if self._pending_acks is None:
            self._pending_acks = deque()
            self._acks_sent = asyncio.Event()
        assert self._acks_sent is not None
        self._pending_acks.append((target, qos, packet_id, reason))
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.get_running_loop().create_task(self._release_acks())
        while len(self._pending_acks) >= self.broker.settings.receive_maximum:
            self._acks_sent.clear()
            await self._acks_sent.wait()

    async def _release_acks(self) -> None:
        """Send queued acknowledgements, in order, as the store makes them durable."""
        persistence = self.broker.persistence
        session = self.session
        assert session is not None
        pending = self._pending_acks
        sent = self._acks_sent
        assert pending is not None and sent is not None
        while pending and not self.detached:
            target, qos, packet_id, reason = pending[0]
            try:
                await persistence.barrier(target)
            except StorageFailed as exc:
                log.warning("not acknowledging %s's message: %s", self.client_id, exc)
                reason = ReasonCode.UNSPECIFIED_ERROR
                if qos == 2:
                    session.incoming_qos2.discard(packet_id)
                    persistence.incoming(session, packet_id, False)
                if self.protocol_level != 5:
                    pending.popleft()  # no v3 code says "not stored": unacknowledged, the client resends
                    sent.set()
                    continue
            pending.popleft()
            self._send_ack(Puback if qos == 1 else Pubrec, packet_id, reason)
            sent.set()

    async def _stored_before_ack(self, recorded_before: int) -> bool:
        """With `ack_after_write`, wait until what this packet changed is stored.

        ``recorded_before`` is the store's operation count before the packet was handled: when
        nothing was recorded since (clean sessions only), there is nothing to wait for.
        False when the store could not store it.
        """
        persistence = self.broker.persistence
        if not persistence.must_wait or persistence.issued == recorded_before:
            return True
        try:
            await persistence.barrier()
        except StorageFailed as exc:
            log.warning("not acknowledging %s's message: %s", self.client_id, exc)
            return False
        return True

    async def _admit_publish(self, packet: Publish) -> int | None:
        """Refusals before routing: `$`-topics, payload format, ACL. None admits."""
        if packet.topic.startswith("$"):
            return ReasonCode.NOT_AUTHORIZED
        if packet.properties.payload_format_indicator == 1:
            try:
                packet.payload.decode("utf-8")
            except UnicodeDecodeError:
                return ReasonCode.PAYLOAD_FORMAT_INVALID
        hooks = self.broker.hooks
        if hooks.enabled("on_acl_check") and not await hooks.decide(
            "on_acl_check", client=self, topic=packet.topic, write=True
        ):
            return ReasonCode.NOT_AUTHORIZED
        return None

    def _send_ack(self, kind: type[Puback] | type[Pubrec], packet_id: int, reason: int) -> None:
        """PUBACK/PUBREC; v3 has no reason codes, so a refused message is acknowledged plainly."""
        if self.protocol_level == 5:
            self._send(kind(packet_id, reason))
        else:
            self._send(kind(packet_id))

    def _resolve_topic_alias(self, packet: Publish) -> Publish:
        """Apply an inbound topic alias (set or use), returning the packet with its topic."""
        alias = packet.properties.topic_alias
        if alias is None:
            if not packet.topic:
                raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, "PUBLISH without a topic name or alias")
            return packet
        if alias == 0 or alias > self.broker.settings.topic_alias_maximum:
            raise ProtocolError(ReasonCode.TOPIC_ALIAS_INVALID, f"topic alias {alias} is out of range")
        if packet.topic:
            self.topic_aliases[alias] = packet.topic
            return packet
        topic = self.topic_aliases.get(alias)
        if topic is None:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"topic alias {alias} was never set")
        return Publish(topic, packet.payload, packet.qos, packet.retain, packet.dup, packet.packet_id, packet.properties)

    # ------------------------------------------------------------------ acknowledgements in

    async def _on_puback(self, packet: Puback) -> None:
        """The client acknowledged a QoS 1 message."""
        if self._complete(packet.packet_id, expect=1):
            await self._qos_complete(packet.packet_id)

    async def _on_pubrec(self, packet: Pubrec) -> None:
        """QoS 2 step 1 towards the client: answer PUBREL (or complete on an error code)."""
        session = self.session
        assert session is not None
        out = session.inflight.get(packet.packet_id)
        if out is None or out.qos != 2:
            self._send(Pubrel(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
                              if self.protocol_level == 5 else 0))
            return
        if packet.reason_code >= 0x80:
            if self._complete(packet.packet_id, expect=2):
                await self._qos_complete(packet.packet_id)
            return
        out.state = AWAIT_PUBCOMP
        self.broker.persistence.save_outgoing(session, out)
        self._send(Pubrel(packet.packet_id))

    async def _on_pubcomp(self, packet: Pubcomp) -> None:
        """QoS 2 completed towards the client."""
        if self._complete(packet.packet_id, expect=2):
            await self._qos_complete(packet.packet_id)

    async def _on_pubrel(self, packet: Pubrel) -> None:
        """QoS 2 from the client: release the packet id and answer PUBCOMP."""
        session = self.session
        assert session is not None
        if packet.packet_id in session.incoming_qos2:
            session.incoming_qos2.discard(packet.packet_id)
            self.broker.persistence.incoming(session, packet.packet_id, False)
            self._send(Pubcomp(packet.packet_id))
        else:
            self._send(Pubcomp(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
                               if self.protocol_level == 5 else 0))

    def _complete(self, packet_id: int, expect: int) -> bool:
        """Free an inflight slot and refill the window; False for an id not awaiting this ack."""
        session = self.session
        assert session is not None
        out = session.inflight.get(packet_id)
        if out is None or out.qos != expect:
            return False
        del session.inflight[packet_id]
        self.broker.persistence.outgoing_done(session, packet_id)
        if session.queue or len(session.inflight) >= self.send_quota:
            self.broker.fill_window(self)
        return True

    async def _qos_complete(self, packet_id: int) -> None:
        hooks = self.broker.hooks
        if hooks.enabled("on_qos_complete"):
            await hooks.notify("on_qos_complete", client=self, packet_id=packet_id)

    # ------------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE

    async def _on_subscribe(self, packet: Subscribe) -> None:
        """Add subscriptions, answer SUBACK, then send matching retained messages."""
        broker = self.broker
        hooks = broker.hooks
        if hooks.enabled("on_subscribe"):
            packet = await hooks.transform("on_subscribe", "packet", client=self, packet=packet)
        identifiers = packet.properties.subscription_identifiers
        identifier = identifiers[0] if identifiers else None
        if identifier is not None and not broker.settings.subscription_identifier_available:
            self._close_with(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, "subscription identifiers are off")
        codes: list[int] = []
        retained_for: list[SubscriberEntry] = []
        recorded_before = broker.persistence.issued
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
        self._send(Suback(packet.packet_id, tuple(codes)))
        await hooks.notify("on_subscribed", client=self, packet=packet, reason_codes=tuple(codes))
        for entry in retained_for:
            broker.send_retained(self, entry)

    async def _subscribe_one(self, subscription: Subscription, identifier: int | None
                             ) -> tuple[int, SubscriberEntry | None, bool]:
        """Check and add one filter; returns (reason code, entry, whether it is new)."""
        broker = self.broker
        settings = broker.settings
        topic_filter = subscription.topic_filter
        group, real_filter = parse_shared(topic_filter)
        failure = SUBACK_V3_FAILURE if self.protocol_level != 5 else None
        if group is not None:
            if not settings.shared_subscription_available:
                return failure or ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, None, False
            if subscription.options.no_local:
                raise ProtocolViolation("No Local on a shared subscription")
        if not settings.wildcard_subscription_available and ("+" in real_filter or "#" in real_filter):
            return failure or ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED, None, False
        hooks = broker.hooks
        if hooks.enabled("on_acl_check") and not await hooks.decide(
            "on_acl_check", client=self, topic=topic_filter, write=False
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
        entry = SubscriberEntry(self.client_id, topic_filter, options, identifier)
        replaced = broker.add_subscription(self, entry)
        return options.qos, entry, replaced is None

    async def _on_unsubscribe(self, packet: Unsubscribe) -> None:
        """Remove subscriptions and answer UNSUBACK."""
        hooks = self.broker.hooks
        if hooks.enabled("on_unsubscribe"):
            packet = await hooks.transform("on_unsubscribe", "packet", client=self, packet=packet)
        recorded_before = self.broker.persistence.issued
        codes = tuple(
            ReasonCode.SUCCESS if self.broker.remove_subscription(self, topic_filter)
            else ReasonCode.NO_SUBSCRIPTION_EXISTED
            for topic_filter in packet.topic_filters
        )
        if not await self._stored_before_ack(recorded_before):
            codes = tuple(ReasonCode.UNSPECIFIED_ERROR for _ in codes)
        self._send(Unsuback(packet.packet_id, codes if self.protocol_level == 5 else ()))
        await hooks.notify("on_unsubscribed", client=self, packet=packet)

    # ------------------------------------------------------------------ PING, DISCONNECT, AUTH

    async def _on_pingreq(self, packet: Pingreq) -> None:
        self.write_bytes(_PINGRESP)

    async def _on_disconnect(self, packet: Disconnect) -> None:
        """The client closes: keep or discard the will, apply a new session expiry."""
        session = self.session
        assert session is not None
        new_expiry = packet.properties.session_expiry_interval
        if new_expiry is not None:
            requested = self.connect.properties.session_expiry_interval if self.connect else None
            if not requested and new_expiry != 0:
                self._close_with(ReasonCode.PROTOCOL_ERROR, "session expiry changed from 0 at DISCONNECT")
            session.expiry_interval = min(new_expiry, self.broker.settings.max_session_expiry)
        self.disconnect_reason = packet.reason_code
        self.clean_disconnect = packet.reason_code != ReasonCode.DISCONNECT_WITH_WILL_MESSAGE
        note_end(self, "client-disconnect", packet.reason_code if self.protocol_level == 5 else None)
        raise ClientClosed

    async def _on_auth(self, packet: Auth) -> None:
        """Re-authentication (MQTT 5) after the connection is established."""
        if self.protocol_level != 5 or self.connect is None:
            raise ProtocolViolation("AUTH outside MQTT 5")
        method = self.connect.properties.authentication_method
        if method is None or packet.properties.authentication_method != method:
            raise ProtocolViolation("AUTH with a different authentication method")
        reply = await self.broker.hooks.first("on_auth_packet", client=self, packet=packet)
        if not isinstance(reply, Auth) or reply.reason_code >= 0x80:
            code = reply.reason_code if isinstance(reply, Auth) else ReasonCode.NOT_AUTHORIZED
            self._close_with(code, "re-authentication failed")
        self._send(reply)

    # ------------------------------------------------------------------ writing

    def _send(self, packet: Packet) -> None:
        """Encode and write one control packet."""
        hooks = self.broker.hooks
        if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
            self.broker.send_hooked(self, packet)
            return
        self.write_bytes(encode(packet, self.protocol_level))

    def write_bytes(self, data: bytes) -> None:
        """Write encoded bytes and count them."""
        stats = self.broker.stats
        stats.bytes_sent += len(data)
        stats.packets_sent += 1
        self.conn.write(data)

    def send_outgoing(self, out: Outgoing, now: float, dup: bool = False) -> None:
        """Write a QoS 1/2 message (or its PUBREL) that holds an inflight slot."""
        if out.state == AWAIT_PUBCOMP:
            self._send(Pubrel(out.packet_id))
            return
        out.sends += 1
        if self.broker.hooks.enabled("on_packet_encode") or self.broker.hooks.enabled("on_packet_sent"):
            self.broker.send_hooked(self, out.message.to_publish(out.qos, out.retain, out.packet_id, now,
                                                                  out.subscription_ids, dup))
            return
        data = self.publish_bytes(out.message, out.qos, out.retain, out.subscription_ids, now, out.packet_id, dup)
        if data is not None:
            self.write_bytes(data)

    def publish_bytes(self, message: Message, qos: int, retain: bool, ids: tuple[int, ...], now: float,
                      packet_id: int = 0, dup: bool = False) -> bytes | None:
        """The PUBLISH bytes for this client, or None when larger than its Maximum Packet Size.

        Without topic aliases they come from the message's shared encoding. A v5 client that
        accepts aliases gets one per topic (the first message carries the topic and the alias,
        later ones the alias alone) until its Topic Alias Maximum is used up.
        """
        if self.alias_out_max:
            data = self._aliased_publish(message, qos, retain, ids, now, packet_id, dup)
            if data is not None:
                return data
        wire = message.wire(self.protocol_level, qos, retain, ids, now)
        data = with_packet_id(wire, packet_id, dup) if qos else wire[0]
        if self.max_packet_out and len(data) > self.max_packet_out:
            return None
        return data

    def _aliased_publish(self, message: Message, qos: int, retain: bool, ids: tuple[int, ...], now: float,
                         packet_id: int, dup: bool) -> bytes | None:
        """The PUBLISH with a topic alias, or None when no alias is free (or it would not fit)."""
        aliases = self.alias_out
        if aliases is None:
            aliases = self.alias_out = {}
        alias = aliases.get(message.topic)
        known = alias is not None
        if alias is None:
            if len(aliases) >= self.alias_out_max:
                return None
            alias = len(aliases) + 1
        packet = message.to_publish(qos, retain, packet_id, now, ids, dup)
        packet = replace(packet, topic="" if known else packet.topic,
                         properties=replace(packet.properties, topic_alias=alias))
        data = encode_publish(packet, 5)[0]
        if self.max_packet_out and len(data) > self.max_packet_out:
            return None
        if not known:
            aliases[message.topic] = alias  # only once the client is sure to learn it
        return data

    def _send_disconnect(self, reason: int) -> None:
        """Tell a v5 client why the server is closing; v3 has no server DISCONNECT."""
        if self.protocol_level == 5 and self.established:
            self.write_bytes(encode(Disconnect(reason_code=reason), 5))

    def _close_with(self, reason: int, message: str) -> None:
        """End the connection for a rule the client broke (raises to unwind the handler)."""
        raise ProtocolError(reason, message)

    def _protocol_error(self, exc: ProtocolError) -> None:
        """Close after bad input: v5 clients get DISCONNECT with the reason code first."""
        self.error = exc.message
        note_end(self, "protocol-error", exc.reason_code, exc.message)
        self.disconnect_reason = exc.reason_code
        if self.established:
            self._send_disconnect(exc.reason_code)
        elif self.protocol_level == 5:
            self._send(Connack(reason_code=exc.reason_code))

    def kick(self, reason: int) -> None:
        """Server-initiated disconnect (takeover, admin action, shutdown, keep-alive)."""
        self.disconnect_reason = reason
        note_end(self, kick_cause(reason), reason)
        self._send_disconnect(reason)
        self.conn.close()
        # A peer that stopped reading would keep a closing connection open for ever.
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self.conn.abort)

    def schedule_drain(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` once the client's write buffer has drained (one waiter at most)."""
        if self._drain_task is not None and not self._drain_task.done():
            return

        async def wait_then_resume() -> None:
            await self.conn.drain()
            if not self.detached:
                resume()

        self._drain_task = asyncio.get_running_loop().create_task(wait_then_resume())

    # ------------------------------------------------------------------ views for plugins

    @property
    def connected(self) -> bool:
        """True while the connection is established and not detached."""
        return self.established and not self.detached

    def keep_alive_expired(self, now: float) -> bool:
        """Whether 1.5 × keep-alive has passed without a packet (``now`` is monotonic)."""
        return self.keep_alive > 0 and now - self.last_seen > self.keep_alive * 1.5

    def info(self) -> dict[str, Any]:
        """A JSON-friendly summary for the dashboard and the API."""
        return describe_client(self.client_id, self.session, self)


#: The handler of each packet type a client may send after CONNECT.
_HANDLERS: dict[type[Any], Callable[[Client, Any], Awaitable[None]]] = {
    Publish: Client._on_publish,
    Puback: Client._on_puback,
    Pubrec: Client._on_pubrec,
    Pubrel: Client._on_pubrel,
    Pubcomp: Client._on_pubcomp,
    Subscribe: Client._on_subscribe,
    Unsubscribe: Client._on_unsubscribe,
    Pingreq: Client._on_pingreq,
    Disconnect: Client._on_disconnect,
    Auth: Client._on_auth,
}


def describe_client(client_id: str, session: Session | None, client: Client | None) -> dict[str, Any]:
    """One client's summary, connected (``client`` given) or only a stored session."""
    return {
        "client_id": client_id,
        "username": client.username if client else (session.username if session else None),
        "remote_address": client.remote_address if client else None,
        "listener": client.listener if client else None,
        "protocol_level": client.protocol_level if client else (session.protocol_level if session else None),
        "connected": client.connected if client else False,
        "connected_at": client.connected_at if client else None,
        "keep_alive": client.keep_alive if client else 0,
        "clean_start": client.clean_start if client else False,
        "subscriptions": len(session.subscriptions) if session else 0,
        "inflight": len(session.inflight) if session else 0,
        "queued": len(session.queue) if session else 0,
    }


__all__ = ["Client", "ClientClosed", "describe_client"]
