"""The CONNECT handshake of one connection: reading CONNECT, identifiers, authentication, CONNACK.

`Handshake` lives from a connection's first bytes until CONNACK, then is dropped; the
connection handler (`hookmq.engine.connection`) takes over with the session it attached.

State owned: the properties an enhanced-authentication exchange ended with, until they go into
CONNACK. Who changes it: the handshake itself. It sets the client's identity (`Client`) and the
negotiated protocol values (`ProtocolState`) once, and asks the session lifecycle to attach
the session.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ..mqtt.codec import encode
from ..mqtt.errors import ProtocolError, ProtocolViolation
from ..mqtt.packets import NO_PROPERTIES, Auth, Connack, Connect, Packet, Properties
from ..mqtt.reason_codes import ReasonCode, connack_v3_code
from .client import Client, ClientClosed
from .lifecycle import Refused

if TYPE_CHECKING:
    from .parts import Parts
    from .session import Session

log = logging.getLogger("hookmq.client")

#: The v3 CONNACK "unacceptable protocol version" answer, for a CONNECT we could not read.
_CONNACK_V3_BAD_VERSION = b"\x20\x02\x00\x01"


class Handshake:
    """From the first bytes to CONNACK, for one connection."""

    __slots__ = ("_auth_success_properties", "client", "parts")

    def __init__(self, client: Client, parts: Parts) -> None:
        self.client = client
        self.parts = parts
        self._auth_success_properties: Properties | None = None

    async def read_connect(self) -> tuple[Connect, list[Packet]] | None:
        """Wait for the first packet, which must be CONNECT; None when the peer went away."""
        client = self.client
        parts = self.parts
        try:
            async with asyncio.timeout(parts.settings.connect_timeout):
                while True:
                    data = await client.conn.read()
                    if not data:
                        return None
                    parts.stats.bytes_received += len(data)
                    protocol = client.protocol
                    packets = protocol.feed(data)
                    if protocol.decoder.incomplete_packet_size != protocol.partial_reserved:
                        parts.partial_packets.hold(protocol)
                    if packets:
                        break
        except ProtocolError as exc:
            self._refuse_unreadable_connect(exc)
            return None
        first = packets[0]
        if not isinstance(first, Connect):
            client.error = f"first packet was {type(first).__name__}, not CONNECT"
            client.note_end("protocol-error", detail=client.error)
            return None
        parts.stats.packets_received += len(packets)
        return first, packets[1:]

    def _refuse_unreadable_connect(self, exc: ProtocolError) -> None:
        """Answer a CONNECT the codec rejected, where the protocol lets us answer at all."""
        client = self.client
        client.error = exc.message
        client.note_end("protocol-error", exc.reason_code, exc.message)
        if exc.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
            client.conn.write(_CONNACK_V3_BAD_VERSION)
        elif client.protocol.decoder.protocol_level == 5:
            client.conn.write(encode(Connack(reason_code=exc.reason_code), 5))

    async def establish(self, connect: Connect) -> Session | None:
        """Validate and authenticate CONNECT, attach the session and answer CONNACK; None when refused."""
        client = self.client
        parts = self.parts
        settings = parts.settings
        hooks = parts.hooks
        client.connect = connect
        client.username = connect.username
        client.clean_start = connect.clean_start
        client.protocol.accept_connect(connect, settings)
        refusal = self._assign_client_id(connect)
        await hooks.notify("on_connect", client=client, connect=connect)
        if refusal is None:
            refusal = parts.sessions.refusal(client, connect)
        if refusal is None:
            refusal = await self._authenticate(connect)
        if refusal is None and connect.will is not None:
            refusal = await self._check_will_topic(connect.will.topic)
        if refusal is not None:
            self._refuse(refusal)
            return None
        try:
            session, session_present = await parts.sessions.attach(client, connect)
        except Refused as refused:
            self._refuse(refused.reason_code)
            return None
        client.protocol.established(connect, settings)
        client.established = True
        client.send(Connack(reason_code=0, session_present=session_present,
                            properties=self._connack_properties(connect, session)))
        parts.connection_log.connected(client, session_present)
        await hooks.notify("on_session_established", client=client, connect=connect,
                           session_present=session_present)
        parts.delivery.resume(session)
        return session

    def _assign_client_id(self, connect: Connect) -> int | None:
        """Apply the client identifier rules; returns a refusal reason code or None."""
        settings = self.parts.settings
        client = self.client
        client_id = connect.client_id
        level = client.protocol.level
        if len(client_id) > settings.client_id_max_length:
            return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
        if not client_id:
            may_assign = level == 5 or (level == 4 and connect.clean_start)
            if not (may_assign and settings.allow_empty_client_id):
                return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
            client_id = f"auto-{uuid.uuid4()}"
            client.assigned_client_id = client_id
        else:
            client.assigned_client_id = None
        client.client_id = client_id
        return None

    async def _authenticate(self, connect: Connect) -> int | None:
        """Run basic or enhanced authentication; returns a refusal reason code or None."""
        hooks = self.parts.hooks
        if connect.properties.authentication_method is not None:
            return await self._enhanced_authentication(connect)
        if await hooks.decide("on_connect_authenticate", client=self.client, connect=connect):
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
        hooks = self.parts.hooks
        if hooks.enabled("on_acl_check") and not await hooks.decide(
            "on_acl_check", client=self.client, topic=topic, write=True
        ):
            return ReasonCode.NOT_AUTHORIZED
        return None

    async def _enhanced_authentication(self, connect: Connect) -> int | None:
        """The MQTT 5 AUTH exchange at CONNECT, driven by `on_auth_packet` implementations."""
        client = self.client
        if client.protocol.level != 5:
            return ReasonCode.BAD_AUTHENTICATION_METHOD
        method = connect.properties.authentication_method
        packet = Auth(reason_code=0, properties=Properties(
            authentication_method=method, authentication_data=connect.properties.authentication_data))
        async with asyncio.timeout(self.parts.settings.connect_timeout):
            while True:
                reply = await self.parts.hooks.first("on_auth_packet", client=client, packet=packet)
                if not isinstance(reply, Auth):
                    return ReasonCode.BAD_AUTHENTICATION_METHOD
                if reply.reason_code == ReasonCode.SUCCESS:
                    self._auth_success_properties = reply.properties
                    return None
                if reply.reason_code != ReasonCode.CONTINUE_AUTHENTICATION:
                    return reply.reason_code
                client.send(reply)
                packet = await self._next_auth_packet()

    async def _next_auth_packet(self) -> Auth:
        """Read the client's next packet during an AUTH exchange; it must be AUTH."""
        client = self.client
        while True:
            data = await client.conn.read()
            if not data:
                raise ClientClosed
            packets = client.protocol.feed(data)
            if packets:
                packet = packets[0]
                if not isinstance(packet, Auth) or len(packets) > 1:
                    raise ProtocolViolation("expected AUTH during the authentication exchange")
                return packet

    def _refuse(self, reason: int) -> None:
        """Answer CONNACK with a refusal and end the connection."""
        client = self.client
        client.error = f"connection refused: {ReasonCode(reason).name}"
        client.note_end("refused", reason)
        if client.protocol.level == 5:
            client.send(Connack(reason_code=reason))
        else:
            client.send(Connack(reason_code=connack_v3_code(reason)))

    def _connack_properties(self, connect: Connect, session: Session) -> Properties:
        """What a v5 client must learn about this server and its session."""
        client = self.client
        if client.protocol.level != 5:
            return NO_PROPERTIES
        settings = self.parts.settings
        requested_expiry = connect.properties.session_expiry_interval or 0
        values: dict[str, Any] = {
            "receive_maximum": settings.receive_maximum,
            "topic_alias_maximum": settings.topic_alias_maximum or None,
        }
        if client.assigned_client_id is not None:
            values["assigned_client_identifier"] = client.assigned_client_id
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
        keep_alive = client.protocol.keep_alive
        if keep_alive != connect.keep_alive:
            values["server_keep_alive"] = keep_alive
        if connect.properties.request_response_information:
            values["response_information"] = f"response/{client.client_id}"
        auth = self._auth_success_properties
        if auth is not None:
            values["authentication_method"] = connect.properties.authentication_method
            values["authentication_data"] = auth.authentication_data
        return Properties(**values)


__all__ = ["Handshake"]
