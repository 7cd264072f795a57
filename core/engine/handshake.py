"""The CONNECT handshake of a client: reading CONNECT, identifiers, authentication, CONNACK.

`Client` inherits it; the attributes it uses are the client's (declared below for the type
checker).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any, cast

from ..mqtt.codec import encode
from ..mqtt.errors import ProtocolError, ProtocolViolation
from ..mqtt.packets import NO_PROPERTIES, Auth, Connack, Connect, Packet, Properties
from ..mqtt.reason_codes import ReasonCode, connack_v3_code
from .connlog import note_end

if TYPE_CHECKING:
    from ..mqtt.codec import Decoder
    from ..transport.base import Connection
    from .broker import Broker
    from .client import Client
    from .connlog import EndCause
    from .session import Session

log = logging.getLogger("hookmq.client")

#: The v3 CONNACK "unacceptable protocol version" answer, for a CONNECT we could not read.
_CONNACK_V3_BAD_VERSION = b"\x20\x02\x00\x01"


class ClientClosed(Exception):
    """Raised inside a handler to end the connection after the reply was sent."""


class Handshake:
    """From the first bytes to CONNACK."""

    # Every attribute of a client; thousands of idle connections each carry one of these.
    __slots__ = (
        "_ack_task", "_acks_sent", "_auth_success_properties", "_drain_task", "_pending_acks",
        "alias_out", "alias_out_max",
        "assigned_client_id", "broker", "clean_disconnect", "clean_start", "client_id", "conn", "connect",
        "connected_at", "decoder", "detached", "disconnect_reason", "end_cause", "error", "established", "keep_alive",
        "last_seen", "listener", "max_packet_out", "partial_reserved", "protocol_level", "remote_address",
        "request_problem_information", "send_quota", "session", "tls_peer_certificate", "topic_aliases",
        "username",
    )

    if TYPE_CHECKING:
        broker: Broker
        conn: Connection
        decoder: Decoder
        protocol_level: int
        client_id: str
        username: str | None
        connect: Connect | None
        session: Session | None
        keep_alive: int
        clean_start: bool
        send_quota: int
        max_packet_out: int
        alias_out_max: int
        request_problem_information: bool
        established: bool
        assigned_client_id: str | None
        _auth_success_properties: Properties | None
        error: str | None
        end_cause: EndCause | None

        partial_reserved: int

        def _send(self, packet: Packet) -> None: ...
        def hold_partial_packet(self) -> None: ...

    async def _read_connect(self) -> tuple[Connect, list[Packet]] | None:
        """Wait for the first packet, which must be CONNECT; None when the peer went away."""
        try:
            async with asyncio.timeout(self.broker.settings.connect_timeout):
                while True:
                    data = await self.conn.read()
                    if not data:
                        return None
                    self.broker.stats.bytes_received += len(data)
                    packets = self.decoder.feed(data)
                    if self.decoder.incomplete_packet_size != self.partial_reserved:
                        self.hold_partial_packet()
                    if packets:
                        break
        except ProtocolError as exc:
            self._refuse_unreadable_connect(exc)
            return None
        first = packets[0]
        if not isinstance(first, Connect):
            self.error = f"first packet was {type(first).__name__}, not CONNECT"
            note_end(cast("Client", self), "protocol-error", detail=self.error)
            return None
        self.broker.stats.packets_received += len(packets)
        return first, packets[1:]

    def _refuse_unreadable_connect(self, exc: ProtocolError) -> None:
        """Answer a CONNECT the codec rejected, where the protocol lets us answer at all."""
        self.error = exc.message
        note_end(cast("Client", self), "protocol-error", exc.reason_code, exc.message)
        if exc.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
            self.conn.write(_CONNACK_V3_BAD_VERSION)
        elif self.decoder.protocol_level == 5:
            self.conn.write(encode(Connack(reason_code=exc.reason_code), 5))

    async def _establish(self, connect: Connect) -> bool:
        """Validate and authenticate CONNECT, set up the session and answer CONNACK."""
        broker = self.broker
        self.connect = connect
        self.protocol_level = connect.protocol_level
        self.username = connect.username
        self.clean_start = connect.clean_start
        props = connect.properties
        self.request_problem_information = props.request_problem_information != 0
        if props.receive_maximum is not None:
            self.send_quota = min(props.receive_maximum, broker.settings.max_inflight)
        self.max_packet_out = props.maximum_packet_size or 0
        self.alias_out_max = props.topic_alias_maximum or 0
        refusal = self._assign_client_id(connect)
        await broker.hooks.notify("on_connect", client=self, connect=connect)
        if refusal is None:
            refusal = broker.connection_refusal(cast("Client", self), connect)
        if refusal is None:
            refusal = await self._authenticate(connect)
        if refusal is None and connect.will is not None:
            refusal = await self._check_will_topic(connect.will.topic)
        if refusal is not None:
            self._refuse(refusal)
            return False

        session_present = await broker.attach_session(cast("Client", self), connect)
        self.decoder.max_packet_size = broker.settings.max_packet_size
        self._apply_keep_alive(connect)
        self.established = True
        self._send(Connack(reason_code=0, session_present=session_present, properties=self._connack_properties(connect)))
        broker.connection_log.connected(cast("Client", self), session_present)
        await broker.hooks.notify("on_session_established", client=self, connect=connect,
                                  session_present=session_present)
        broker.resume_delivery(cast("Client", self))
        return True

    def _assign_client_id(self, connect: Connect) -> int | None:
        """Apply the client identifier rules; returns a refusal reason code or None."""
        settings = self.broker.settings
        client_id = connect.client_id
        if len(client_id) > settings.client_id_max_length:
            return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
        if not client_id:
            may_assign = self.protocol_level == 5 or (self.protocol_level == 4 and connect.clean_start)
            if not (may_assign and settings.allow_empty_client_id):
                return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
            client_id = f"auto-{uuid.uuid4()}"
            self.assigned_client_id = client_id
        else:
            self.assigned_client_id = None
        self.client_id = client_id
        return None

    async def _authenticate(self, connect: Connect) -> int | None:
        """Run basic or enhanced authentication; returns a refusal reason code or None."""
        hooks = self.broker.hooks
        if connect.properties.authentication_method is not None:
            return await self._enhanced_authentication(connect)
        if await hooks.decide("on_connect_authenticate", client=self, connect=connect):
            return None
        if connect.username is not None or connect.password is not None:
            return ReasonCode.BAD_USER_NAME_OR_PASSWORD
        return ReasonCode.NOT_AUTHORIZED

    async def _check_will_topic(self, topic: str) -> int | None:
        """A will is a publish the client arranges in advance: the same rules and ACL apply.

        A `$` topic is refused whatever the auth plugins say: those topics ($SYS) are the
        broker's own, and a forged retained will would stand in for its figures.
        """
        if topic.startswith("$"):
            return ReasonCode.TOPIC_NAME_INVALID
        hooks = self.broker.hooks
        if hooks.enabled("on_acl_check") and not await hooks.decide(
            "on_acl_check", client=self, topic=topic, write=True
        ):
            return ReasonCode.NOT_AUTHORIZED
        return None

    async def _enhanced_authentication(self, connect: Connect) -> int | None:
        """The MQTT 5 AUTH exchange at CONNECT, driven by `on_auth_packet` implementations."""
        if self.protocol_level != 5:
            return ReasonCode.BAD_AUTHENTICATION_METHOD
        method = connect.properties.authentication_method
        packet = Auth(reason_code=0, properties=Properties(
            authentication_method=method, authentication_data=connect.properties.authentication_data))
        async with asyncio.timeout(self.broker.settings.connect_timeout):
            while True:
                reply = await self.broker.hooks.first("on_auth_packet", client=self, packet=packet)
                if not isinstance(reply, Auth):
                    return ReasonCode.BAD_AUTHENTICATION_METHOD
                if reply.reason_code == ReasonCode.SUCCESS:
                    self._auth_success_properties = reply.properties
                    return None
                if reply.reason_code != ReasonCode.CONTINUE_AUTHENTICATION:
                    return reply.reason_code
                self._send(reply)
                packet = await self._next_auth_packet()

    async def _next_auth_packet(self) -> Auth:
        """Read the client's next packet during an AUTH exchange; it must be AUTH."""
        while True:
            data = await self.conn.read()
            if not data:
                raise ClientClosed
            packets = self.decoder.feed(data)
            if packets:
                packet = packets[0]
                if not isinstance(packet, Auth) or len(packets) > 1:
                    raise ProtocolViolation("expected AUTH during the authentication exchange")
                return packet

    def _refuse(self, reason: int) -> None:
        """Answer CONNACK with a refusal and end the connection."""
        self.error = f"connection refused: {ReasonCode(reason).name}"
        note_end(cast("Client", self), "refused", reason)
        if self.protocol_level == 5:
            self._send(Connack(reason_code=reason))
        else:
            self._send(Connack(reason_code=connack_v3_code(reason)))

    def _apply_keep_alive(self, connect: Connect) -> None:
        """Record the keep-alive, lowered to the configured maximum."""
        maximum = self.broker.settings.max_keepalive
        keep_alive = connect.keep_alive
        if maximum and (keep_alive > maximum or (keep_alive == 0 and maximum < 65_535)):
            keep_alive = maximum
        self.keep_alive = keep_alive

    def _connack_properties(self, connect: Connect) -> Properties:
        """What a v5 client must learn about this server and its session."""
        if self.protocol_level != 5:
            return NO_PROPERTIES
        settings = self.broker.settings
        session = self.session
        assert session is not None
        requested_expiry = connect.properties.session_expiry_interval or 0
        values: dict[str, Any] = {
            "receive_maximum": settings.receive_maximum,
            "topic_alias_maximum": settings.topic_alias_maximum or None,
        }
        if self.assigned_client_id is not None:
            values["assigned_client_identifier"] = self.assigned_client_id
        if session.expiry_interval != requested_expiry:
            values["session_expiry_interval"] = session.expiry_interval
        if settings.maximum_qos < 2:
            values["maximum_qos"] = settings.maximum_qos
        if not settings.retain_available:
            values["retain_available"] = 0
        if settings.max_packet_size < 268_435_455:
            values["maximum_packet_size"] = settings.max_packet_size
        if not settings.wildcard_subscription_available:
            values["wildcard_subscription_available"] = 0
        if not settings.subscription_identifier_available:
            values["subscription_identifier_available"] = 0
        if not settings.shared_subscription_available:
            values["shared_subscription_available"] = 0
        if self.keep_alive != connect.keep_alive:
            values["server_keep_alive"] = self.keep_alive
        if connect.properties.request_response_information:
            values["response_information"] = f"response/{self.client_id}"
        auth = self._auth_success_properties
        if auth is not None:
            values["authentication_method"] = connect.properties.authentication_method
            values["authentication_data"] = auth.authentication_data
        return Properties(**values)
