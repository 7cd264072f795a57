"""Packet bodies from bytes: one function per packet type, with the validation of each.

Every decoder takes ``(flags, data, pos, end, level)``: the low nibble of the fixed header,
the buffer, where the body starts and ends, and the protocol level (3, 4 or 5) in force.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ._wire import decode_text, read_binary, read_string, read_u8, read_u16
from .errors import MalformedPacket, ProtocolError, ProtocolViolation
from .packets import (
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)
from .properties import WILL, decode_properties
from .reason_codes import REASON_CODES_BY_PACKET_TYPE, SUBACK_V3_CODES, ReasonCode
from .topics import validate_subscription, validate_topic_filter, validate_topic_name

#: The protocol name each supported protocol level must arrive with.
PROTOCOL_NAMES: Final = {3: "MQIsdp", 4: "MQTT", 5: "MQTT"}

#: The fixed-header flags every packet type but PUBLISH must carry (MQTT 5.0 §2.1.3).
REQUIRED_FLAGS: Final = (0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)

_PUBLISH: Final = PacketType.PUBLISH

Decoder = Callable[[int, bytes, int, int, int], Packet]


def decode_publish(flags: int, data: bytes, pos: int, end: int, level: int) -> Publish:
    """PUBLISH; the per-message path, so the common case is written out inline."""
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    dup = flags & 8 != 0
    if dup and not qos:
        raise ProtocolViolation("PUBLISH with DUP set and QoS 0")
    stop = pos + 2
    if stop > end:
        raise MalformedPacket("PUBLISH ends before its topic name")
    stop += (data[pos] << 8) | data[pos + 1]
    if stop > end:
        raise MalformedPacket("PUBLISH topic name runs past the end of the packet")
    topic = decode_text(data[pos + 2 : stop], "topic name")
    pos = stop
    packet_id = 0
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("PUBLISH ends before its packet identifier")
        packet_id = (data[pos] << 8) | data[pos + 1]
        if not packet_id:
            raise ProtocolViolation("PUBLISH with QoS > 0 and packet identifier 0")
        pos += 2
    properties = NO_PROPERTIES
    if level == 5:
        if pos < end and data[pos] == 0:
            pos += 1
        else:
            properties, pos = decode_properties(data, pos, end, _PUBLISH)
    if not topic:
        if level < 5:
            validate_topic_name(topic)
        if properties.topic_alias is None:
            raise ProtocolViolation("PUBLISH with an empty topic name and no topic alias")
    elif "+" in topic or "#" in topic:
        validate_topic_name(topic)
    return Publish(topic, data[pos:end], qos, flags & 1 == 1, dup, packet_id, properties)


def decode_connect(flags: int, data: bytes, pos: int, end: int, level: int) -> Connect:
    """CONNECT; ``level`` is ignored, the packet carries its own."""
    name, pos = read_string(data, pos, end, "protocol name")
    level, pos = read_u8(data, pos, end, "protocol level")
    if PROTOCOL_NAMES.get(level) != name:
        raise ProtocolError(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
                            f"unsupported protocol {name!r} level {level}")
    connect_flags, pos = read_u8(data, pos, end, "connect flags")
    _check_connect_flags(connect_flags, level)
    keep_alive, pos = read_u16(data, pos, end, "keep alive")
    properties = NO_PROPERTIES
    if level == 5:
        properties, pos = decode_properties(data, pos, end, PacketType.CONNECT)
        if properties.authentication_data is not None and properties.authentication_method is None:
            raise ProtocolViolation("authentication data without an authentication method")
    client_id, pos = read_string(data, pos, end, "client identifier")
    will = None
    if connect_flags & 0x04:
        will, pos = _read_will(connect_flags, data, pos, end, level)
    username = password = None
    if connect_flags & 0x80:
        username, pos = read_string(data, pos, end, "user name")
    if connect_flags & 0x40:
        password, pos = read_binary(data, pos, end, "password")
    _expect_end(pos, end, "CONNECT")
    return Connect(client_id, level, name, connect_flags & 0x02 != 0, keep_alive, username, password,
                   will, properties)


def _check_connect_flags(connect_flags: int, level: int) -> None:
    if connect_flags & 0x01:
        raise MalformedPacket("CONNECT flags: the reserved bit is set")
    will_qos = (connect_flags >> 3) & 3
    if not connect_flags & 0x04 and (will_qos or connect_flags & 0x20):
        raise MalformedPacket("CONNECT flags: will QoS or will retain set without the will flag")
    if will_qos == 3:
        raise MalformedPacket("CONNECT flags: will QoS 3")
    if level < 5 and connect_flags & 0x40 and not connect_flags & 0x80:
        raise MalformedPacket("CONNECT flags: password flag set without the user name flag")


def _read_will(connect_flags: int, data: bytes, pos: int, end: int, level: int) -> tuple[Will, int]:
    properties = NO_PROPERTIES
    if level == 5:
        properties, pos = decode_properties(data, pos, end, WILL)
    topic, pos = read_string(data, pos, end, "will topic")
    validate_topic_name(topic)
    payload, pos = read_binary(data, pos, end, "will payload")
    will = Will(topic, payload, (connect_flags >> 3) & 3, connect_flags & 0x20 != 0, properties)
    return will, pos


def decode_connack(flags: int, data: bytes, pos: int, end: int, level: int) -> Connack:
    """CONNACK; v3 carries a return code (0-5), v5 a reason code and properties."""
    ack_flags, pos = read_u8(data, pos, end, "CONNACK flags")
    if ack_flags & 0xFE:
        raise MalformedPacket("CONNACK flags: reserved bits are set")
    code, pos = read_u8(data, pos, end, "CONNACK reason code")
    properties = NO_PROPERTIES
    if level == 5:
        _check_reason_code(code, PacketType.CONNACK)
        properties, pos = decode_properties(data, pos, end, PacketType.CONNACK)
    elif code > 5:
        raise MalformedPacket(f"CONNACK return code {code} does not exist")
    _expect_end(pos, end, "CONNACK")
    return Connack(code, ack_flags == 1, properties)


def _decode_ack(ptype: PacketType, data: bytes, pos: int, end: int, level: int) -> tuple[int, int, Properties]:
    """The shared body of PUBACK, PUBREC, PUBREL and PUBCOMP: id, then optional code and properties."""
    packet_id, pos = _read_packet_id(data, pos, end, ptype)
    code = 0
    properties = NO_PROPERTIES
    if level == 5 and pos < end:
        code = data[pos]
        pos += 1
        _check_reason_code(code, ptype)
        if pos < end:
            properties, pos = decode_properties(data, pos, end, ptype)
    if pos != end:
        # The packet type's name only on the error path: an enum's name is a slow property.
        _expect_end(pos, end, ptype.name)
    return packet_id, code, properties


def decode_puback(flags: int, data: bytes, pos: int, end: int, level: int) -> Puback:
    """PUBACK."""
    packet_id, code, properties = _decode_ack(PacketType.PUBACK, data, pos, end, level)
    return Puback(packet_id, code, properties)


def decode_pubrec(flags: int, data: bytes, pos: int, end: int, level: int) -> Pubrec:
    """PUBREC."""
    packet_id, code, properties = _decode_ack(PacketType.PUBREC, data, pos, end, level)
    return Pubrec(packet_id, code, properties)


def decode_pubrel(flags: int, data: bytes, pos: int, end: int, level: int) -> Pubrel:
    """PUBREL."""
    packet_id, code, properties = _decode_ack(PacketType.PUBREL, data, pos, end, level)
    return Pubrel(packet_id, code, properties)


def decode_pubcomp(flags: int, data: bytes, pos: int, end: int, level: int) -> Pubcomp:
    """PUBCOMP."""
    packet_id, code, properties = _decode_ack(PacketType.PUBCOMP, data, pos, end, level)
    return Pubcomp(packet_id, code, properties)


def decode_subscribe(flags: int, data: bytes, pos: int, end: int, level: int) -> Subscribe:
    """SUBSCRIBE: at least one filter, each with a valid options byte."""
    packet_id, pos = _read_packet_id(data, pos, end, PacketType.SUBSCRIBE)
    properties = NO_PROPERTIES
    if level == 5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBSCRIBE)
    subscriptions: list[Subscription] = []
    while pos < end:
        topic_filter, pos = read_string(data, pos, end, "topic filter")
        options, pos = read_u8(data, pos, end, "subscription options")
        subscription = Subscription(topic_filter, _subscription_options(options, level))
        validate_subscription(subscription)
        subscriptions.append(subscription)
    if not subscriptions:
        raise ProtocolViolation("SUBSCRIBE without any topic filter")
    return Subscribe(packet_id, tuple(subscriptions), properties)


def _subscription_options(options: int, level: int) -> SubscriptionOptions:
    if options & (0xC0 if level == 5 else 0xFC):
        raise MalformedPacket(f"subscription options 0x{options:02X}: reserved bits are set")
    qos = options & 0x03
    if qos == 3:
        raise MalformedPacket("subscription options: QoS 3")
    retain_handling = (options >> 4) & 0x03
    if retain_handling == 3:
        raise ProtocolViolation("subscription options: retain handling 3")
    return SubscriptionOptions(qos, options & 0x04 != 0, options & 0x08 != 0, retain_handling)


def decode_suback(flags: int, data: bytes, pos: int, end: int, level: int) -> Suback:
    """SUBACK: one reason (v3: return) code per filter."""
    packet_id, pos = _read_packet_id(data, pos, end, PacketType.SUBACK)
    properties = NO_PROPERTIES
    if level == 5:
        properties, pos = decode_properties(data, pos, end, PacketType.SUBACK)
    codes = tuple(data[pos:end])
    allowed = REASON_CODES_BY_PACKET_TYPE[PacketType.SUBACK] if level == 5 else SUBACK_V3_CODES
    for code in codes:
        if code not in allowed:
            raise ProtocolViolation(f"SUBACK reason code 0x{code:02X} is not allowed")
    if not codes:
        raise ProtocolViolation("SUBACK without any reason code")
    return Suback(packet_id, codes, properties)


def decode_unsubscribe(flags: int, data: bytes, pos: int, end: int, level: int) -> Unsubscribe:
    """UNSUBSCRIBE: at least one valid filter."""
    packet_id, pos = _read_packet_id(data, pos, end, PacketType.UNSUBSCRIBE)
    properties = NO_PROPERTIES
    if level == 5:
        properties, pos = decode_properties(data, pos, end, PacketType.UNSUBSCRIBE)
    filters: list[str] = []
    while pos < end:
        topic_filter, pos = read_string(data, pos, end, "topic filter")
        validate_topic_filter(topic_filter)
        filters.append(topic_filter)
    if not filters:
        raise ProtocolViolation("UNSUBSCRIBE without any topic filter")
    return Unsubscribe(packet_id, tuple(filters), properties)


def decode_unsuback(flags: int, data: bytes, pos: int, end: int, level: int) -> Unsuback:
    """UNSUBACK: v3 is the packet identifier only; v5 adds properties and reason codes."""
    packet_id, pos = _read_packet_id(data, pos, end, PacketType.UNSUBACK)
    if level < 5:
        _expect_end(pos, end, "UNSUBACK")
        return Unsuback(packet_id)
    properties, pos = decode_properties(data, pos, end, PacketType.UNSUBACK)
    codes = tuple(data[pos:end])
    for code in codes:
        _check_reason_code(code, PacketType.UNSUBACK)
    return Unsuback(packet_id, codes, properties)


def decode_pingreq(flags: int, data: bytes, pos: int, end: int, level: int) -> Pingreq:
    """PINGREQ: no body."""
    _expect_end(pos, end, "PINGREQ")
    return Pingreq()


def decode_pingresp(flags: int, data: bytes, pos: int, end: int, level: int) -> Pingresp:
    """PINGRESP: no body."""
    _expect_end(pos, end, "PINGRESP")
    return Pingresp()


def decode_disconnect(flags: int, data: bytes, pos: int, end: int, level: int) -> Disconnect:
    """DISCONNECT: v3 has no body; v5 may carry a reason code and properties."""
    code, properties, pos = _optional_code_and_properties(PacketType.DISCONNECT, data, pos, end, level)
    _expect_end(pos, end, "DISCONNECT")
    return Disconnect(code, properties)


def decode_auth(flags: int, data: bytes, pos: int, end: int, level: int) -> Auth:
    """AUTH: MQTT 5 only."""
    if level < 5:
        raise MalformedPacket("packet type 15 (AUTH) does not exist before MQTT 5")
    code, properties, pos = _optional_code_and_properties(PacketType.AUTH, data, pos, end, level)
    _expect_end(pos, end, "AUTH")
    return Auth(code, properties)


def _optional_code_and_properties(
    ptype: PacketType, data: bytes, pos: int, end: int, level: int
) -> tuple[int, Properties, int]:
    if level < 5 or pos == end:
        return 0, NO_PROPERTIES, pos
    code, pos = read_u8(data, pos, end, f"{ptype.name} reason code")
    _check_reason_code(code, ptype)
    properties = NO_PROPERTIES
    if pos < end:
        properties, pos = decode_properties(data, pos, end, ptype)
    return code, properties, pos


def decode_reserved(flags: int, data: bytes, pos: int, end: int, level: int) -> Packet:
    """Packet type 0 is reserved: always malformed."""
    raise MalformedPacket("packet type 0 is reserved")


def _read_packet_id(data: bytes, pos: int, end: int, ptype: PacketType) -> tuple[int, int]:
    if pos + 2 > end:
        read_u16(data, pos, end, f"{ptype.name} packet identifier")  # raises, naming the packet
    packet_id = (data[pos] << 8) | data[pos + 1]
    if not packet_id:
        raise ProtocolViolation(f"{ptype.name} with packet identifier 0")
    return packet_id, pos + 2


def _check_reason_code(code: int, ptype: PacketType) -> None:
    if code not in REASON_CODES_BY_PACKET_TYPE[ptype]:
        raise ProtocolViolation(f"reason code 0x{code:02X} is not allowed in {ptype.name}")


def _expect_end(pos: int, end: int, name: str) -> None:
    if pos != end:
        raise MalformedPacket(f"{name} has {end - pos} unexpected trailing bytes")


#: The body decoder of each packet type, indexed by the packet type number.
DECODERS: Final[tuple[Decoder, ...]] = (
    decode_reserved,
    decode_connect,
    decode_connack,
    decode_publish,
    decode_puback,
    decode_pubrec,
    decode_pubrel,
    decode_pubcomp,
    decode_subscribe,
    decode_suback,
    decode_unsubscribe,
    decode_unsuback,
    decode_pingreq,
    decode_pingresp,
    decode_disconnect,
    decode_auth,
)
