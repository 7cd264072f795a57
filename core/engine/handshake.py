"""The CONNECT handshake of one connection: reading CONNECT, identifiers, authentication, CONNACK.

The connection handler (`hookmq.engine.connection`) feeds a connection's first bytes to
`take_connect` until CONNECT is complete, then calls `begin` and, unless `waits` says a hook,
enhanced authentication or the session's attachment must be awaited, `establish_now`, all from
the read event itself (no task, coroutine or read future per connection); otherwise
`establish`, in a task. It goes on with the session they attached. They are functions, not an
object: a CONNECT should cost no more allocations than it must.

State owned: none that outlives a CONNECT (the properties an enhanced-authentication exchange
ended with travel to CONNACK as a value). Who changes it: nobody; the handshake sets the
client's identity (`Client`) and the negotiated protocol values (`ProtocolState`) once, and
asks the session lifecycle to attach the session.
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

#: The accepting CONNACK of MQTT 3.1.1 by session present (what `encode` gives; 3.1 has no session present flag).
_CONNACK_V4_ACCEPTED = (b"\x20\x02\x00\x00", b"\x20\x02\x01\x00")


#: The hooks a CONNECT waits for when a plugin implements them (the handshake then runs in a task).
CONNECT_WAITS = frozenset({"on_connect", "on_connect_authenticate", "on_session_established"})


def take_connect(client: Client, parts: Parts, data: bytes) -> tuple[Connect, list[Packet]] | None:
    """Feed bytes received before CONNECT: CONNECT and the packets after it, or None until it is complete.

    Raises `ClientClosed` when the connection must end (an unreadable CONNECT, answered where
    the protocol lets us answer; a first packet that is not CONNECT), the reason recorded.
    """
    parts.stats.bytes_received += len(data)
    protocol = client.protocol
    try:
        packets = protocol.feed(data)
    except ProtocolError as exc:
        _refuse_unreadable_connect(client, exc)
        raise ClientClosed from exc
    if protocol.decoder.incomplete_packet_size != protocol.partial_reserved:
        parts.partial_packets.hold(protocol)
    if not packets:
        return None
    first = packets[0]
    if not isinstance(first, Connect):
        client.error = f"first packet was {type(first).__name__}, not CONNECT"
        client.note_end("protocol-error", detail=client.error)
        raise ClientClosed
    parts.stats.packets_received += len(packets)
    return first, packets[1:]


async def read_connect(client: Client, parts: Parts) -> tuple[Connect, list[Packet]] | None:
    """Read until CONNECT arrived (`take_connect`) on a connection that does not push; None when it ends first.

    The connect timeout: the broker's one timer for every waiting connection (which the
    connection handler joined when the connection opened) aborts this one if it is still
    waiting then, and the read below sees the end of the stream.
    """
    while True:
        data = await client.conn.read()
        if not data:
            return None
        try:
            taken = take_connect(client, parts, data)
        except ClientClosed:
            return None
        if taken is not None:
            return taken


def _refuse_unreadable_connect(client: Client, exc: ProtocolError) -> None:
    """Answer a CONNECT the codec rejected, where the protocol lets us answer at all."""
    client.error = exc.message
    client.note_end("protocol-error", exc.reason_code, exc.message)
    if exc.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
        client.conn.write(_CONNACK_V3_BAD_VERSION)
    elif client.protocol.decoder.protocol_level == 5:
        client.conn.write(encode(Connack(reason_code=exc.reason_code), 5))


def begin(client: Client, parts: Parts, connect: Connect) -> int | None:
    """Take the CONNECT's identity and protocol values, assign the client id: a refusal reason code or None.

    The first step of `establish` and `establish_now` alike; it waits for nothing.
    """
    client.connect = connect
    client.username = connect.username
    client.clean_start = connect.clean_start
    client.protocol.accept_connect(connect, parts.settings)
    return _assign_client_id(client, parts, connect)


def waits(client: Client, parts: Parts, connect: Connect) -> bool:
    """Whether establishing this CONNECT (after `begin`) may have to await: `establish` then, else `establish_now`.

    It waits when a plugin implements a hook it calls (`CONNECT_WAITS`, the will's ACL check),
    for enhanced authentication, and when attaching the session does (`SessionLifecycle.can_attach_now`).
    """
    hooks = parts.hooks
    if hooks.any_enabled(CONNECT_WAITS) or connect.properties.authentication_method is not None:
        return True
    if connect.will is not None and hooks.enabled("on_acl_check"):
        return True
    return not parts.sessions.can_attach_now(client, connect)


def establish_now(client: Client, parts: Parts, connect: Connect, refusal: int | None) -> Session | None:
    """`establish` without a coroutine, when `waits` said it need not (just before): the session, None when refused."""
    if refusal is None:
        refusal = parts.sessions.refusal(client, connect)
    if refusal is None and connect.will is not None:
        refusal = _reserved_will_topic(connect.will.topic)  # no ACL hook: `waits` said so
    if refusal is not None:
        _refuse(client, refusal)
        return None
    session, session_present = parts.sessions.attach_now(client, connect)
    _accepted(client, parts, connect, session, session_present, None)
    parts.delivery.resume(session)
    return session


async def establish(client: Client, parts: Parts, connect: Connect, refusal: int | None) -> Session | None:
    """Validate and authenticate CONNECT (after `begin`), attach the session and answer CONNACK; None when refused."""
    hooks = parts.hooks
    # Every hook below is skipped when no plugin implements it: a CONNECT then costs no coroutine for it.
    if hooks.enabled("on_connect"):
        await hooks.notify("on_connect", client=client, connect=connect)
    auth: Properties | None = None
    if refusal is None:
        refusal = parts.sessions.refusal(client, connect)
    if refusal is None:
        refusal, auth = await _authenticate(client, parts, connect)
    if refusal is None and connect.will is not None:
        refusal = await _check_will_topic(client, parts, connect.will.topic)
    if refusal is not None:
        _refuse(client, refusal)
        return None
    try:
        session, session_present = await parts.sessions.attach(client, connect)
    except Refused as refused:
        _refuse(client, refused.reason_code)
        return None
    _accepted(client, parts, connect, session, session_present, auth)
    if hooks.enabled("on_session_established"):
        await hooks.notify("on_session_established", client=client, connect=connect,
                           session_present=session_present)
    parts.delivery.resume(session)
    return session


def _accepted(client: Client, parts: Parts, connect: Connect, session: Session, session_present: bool,
              auth: Properties | None) -> None:
    """The session is attached: the connection is established, CONNACK says so, the log too."""
    protocol = client.protocol
    protocol.established(connect, parts.settings)
    client.established = True
    level = protocol.level
    hooks = parts.hooks
    if level < 5 and not (hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent")):
        # The common CONNACK from bytes, no packet object: `Client.send` would encode exactly these.
        client.write_bytes(_CONNACK_V4_ACCEPTED[1 if level == 4 and session_present else 0])
    else:
        client.send(Connack(reason_code=0, session_present=session_present,
                            properties=_connack_properties(client, parts, connect, session, auth)))
    parts.connection_log.connected(client, session_present)


def _assign_client_id(client: Client, parts: Parts, connect: Connect) -> int | None:
    """Apply the client identifier rules; returns a refusal reason code or None."""
    settings = parts.settings
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


async def _authenticate(client: Client, parts: Parts, connect: Connect) -> tuple[int | None, Properties | None]:
    """Run basic or enhanced authentication: (refusal reason code or None, what AUTH success carried)."""
    if connect.properties.authentication_method is not None:
        return await _enhanced_authentication(client, parts, connect)
    hooks = parts.hooks
    if not hooks.enabled("on_connect_authenticate"):
        return None, None  # what `decide` answers when nobody implements the hook
    if await hooks.decide("on_connect_authenticate", client=client, connect=connect):
        return None, None
    if connect.username is not None or connect.password is not None:
        return ReasonCode.BAD_USER_NAME_OR_PASSWORD, None
    return ReasonCode.NOT_AUTHORIZED, None


def _reserved_will_topic(topic: str) -> int | None:
    """The refusal of a will on a `$` topic (see `_check_will_topic`), or None."""
    return ReasonCode.TOPIC_NAME_INVALID if topic.startswith("$") else None


async def _check_will_topic(client: Client, parts: Parts, topic: str) -> int | None:
    """A will is a publish the client arranges in advance: the same rules and ACL apply.

    A `$` topic is refused whatever the auth plugins say: those topics ($SYS) are the
    broker's own, and a forged retained will would stand in for its figures.
    """
    refusal = _reserved_will_topic(topic)
    if refusal is not None:
        return refusal
    hooks = parts.hooks
    if hooks.enabled("on_acl_check") and not await hooks.decide(
        "on_acl_check", client=client, topic=topic, write=True
    ):
        return ReasonCode.NOT_AUTHORIZED
    return None


async def _enhanced_authentication(client: Client, parts: Parts, connect: Connect) -> tuple[int | None, Properties | None]:
    """The MQTT 5 AUTH exchange at CONNECT, driven by `on_auth_packet` implementations."""
    if client.protocol.level != 5:
        return ReasonCode.BAD_AUTHENTICATION_METHOD, None
    method = connect.properties.authentication_method
    packet = Auth(reason_code=0, properties=Properties(
        authentication_method=method, authentication_data=connect.properties.authentication_data))
    async with asyncio.timeout(parts.settings.connect_timeout):
        while True:
            reply = await parts.hooks.first("on_auth_packet", client=client, packet=packet)
            if not isinstance(reply, Auth):
                return ReasonCode.BAD_AUTHENTICATION_METHOD, None
            if reply.reason_code == ReasonCode.SUCCESS:
                return None, reply.properties
            if reply.reason_code != ReasonCode.CONTINUE_AUTHENTICATION:
                return reply.reason_code, None
            client.send(reply)
            packet = await _next_auth_packet(client)


async def _next_auth_packet(client: Client) -> Auth:
    """Read the client's next packet during an AUTH exchange; it must be AUTH."""
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


def _refuse(client: Client, reason: int) -> None:
    """Answer CONNACK with a refusal and end the connection."""
    client.error = f"connection refused: {ReasonCode(reason).name}"
    client.note_end("refused", reason)
    if client.protocol.level == 5:
        client.send(Connack(reason_code=reason))
    else:
        client.send(Connack(reason_code=connack_v3_code(reason)))


def _connack_properties(client: Client, parts: Parts, connect: Connect, session: Session,
                        auth: Properties | None) -> Properties:
    """What a v5 client must learn about this server and its session."""
    if client.protocol.level != 5:
        return NO_PROPERTIES
    settings = parts.settings
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
    if auth is not None:
        values["authentication_method"] = connect.properties.authentication_method
        values["authentication_data"] = auth.authentication_data
    return Properties(**values)


__all__ = ["CONNECT_WAITS", "begin", "establish", "establish_now", "read_connect", "take_connect", "waits"]
