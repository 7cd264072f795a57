"""Packets to bytes, one function per packet type, for protocol levels 3, 4 and 5.

Encoding trusts the packet: the engine builds valid ones. What cannot be put on the wire at
all (a remaining length over 256 MB, AUTH before MQTT 5, a property the packet type does not
allow, a string over 65 535 bytes) raises ``ValueError``. MQTT 5-only fields are silently
left out at levels 3 and 4; the optional parts of v5 packets are emitted only when set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ._wire import MAX_VARINT, encode_binary, encode_string, encode_varint, pack_u16
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
    Unsuback,
    Unsubscribe,
)
from .properties import WILL, encode_properties

_PUBLISH: Final = PacketType.PUBLISH
_EMPTY_PROPERTIES: Final = b"\x00"


def frame(first_byte: int, body: bytes) -> bytes:
    """Prefix a body with its fixed header (type and flags, then the remaining length)."""
    length = len(body)
    if length < 0x80:
        return bytes((first_byte, length)) + body
    if length > MAX_VARINT:
        raise ValueError(f"a remaining length of {length} bytes exceeds the MQTT maximum")
    return bytes((first_byte,)) + encode_varint(length) + body


def encode_publish(packet: Publish, protocol_level: int) -> tuple[bytes, int]:
    """Encode a PUBLISH; also return the offset of its 2-byte packet id (-1 for QoS 0).

    The engine's fan-out encodes a message once and patches the id per subscriber.
    """
    return encode_publish_fields(packet.topic, packet.payload, packet.qos, packet.retain, packet.dup,
                                 packet.packet_id, packet.properties, protocol_level)


def encode_publish_fields(topic_name: str, payload: bytes, qos: int, retain: bool, dup: bool, packet_id: int,
                          properties: Properties, protocol_level: int) -> tuple[bytes, int]:
    """`encode_publish` from the fields of a PUBLISH, for callers that hold no `Publish` (no object built per message)."""
    topic = topic_name.encode("utf-8")
    topic_length = len(topic)
    if protocol_level == 5:
        props = _EMPTY_PROPERTIES if properties is NO_PROPERTIES else encode_properties(properties, _PUBLISH)
    else:
        props = b""
    first = 0x30 | (qos << 1) | retain | (dup << 3)
    length = 2 + topic_length + len(props) + len(payload)
    if qos:
        length += 2
    if length < 0x80:
        header = bytes((first, length))
    elif length <= MAX_VARINT:
        header = bytes((first,)) + encode_varint(length)
    else:
        raise ValueError(f"a PUBLISH of {length} bytes exceeds the MQTT maximum")
    if topic_length > 0xFFFF:
        raise ValueError(f"a topic of {topic_length} bytes exceeds 65535")
    if not qos:
        return b"".join((header, pack_u16(topic_length), topic, props, payload)), -1
    data = b"".join((header, pack_u16(topic_length), topic, pack_u16(packet_id), props, payload))
    return data, len(header) + 2 + topic_length


def _encode_publish(packet: Publish, level: int) -> bytes:
    return encode_publish(packet, level)[0]


def _encode_connect(packet: Connect, level: int) -> bytes:
    flags = 0x02 if packet.clean_start else 0
    will = packet.will
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.password is not None:
        flags |= 0x40
    if packet.username is not None:
        flags |= 0x80
    parts = [encode_string("MQIsdp" if level == 3 else "MQTT"), bytes((level, flags)), pack_u16(packet.keep_alive)]
    if level == 5:
        parts.append(encode_properties(packet.properties, PacketType.CONNECT))
    parts.append(encode_string(packet.client_id))
    if will is not None:
        if level == 5:
            parts.append(encode_properties(will.properties, WILL))
        parts += (encode_string(will.topic), encode_binary(will.payload))
    if packet.username is not None:
        parts.append(encode_string(packet.username))
    if packet.password is not None:
        parts.append(encode_binary(packet.password))
    return frame(0x10, b"".join(parts))


def _encode_connack(packet: Connack, level: int) -> bytes:
    body = bytes((1 if packet.session_present and level > 3 else 0, packet.reason_code))
    if level == 5:
        body += encode_properties(packet.properties, PacketType.CONNACK)
    return frame(0x20, body)


def _absent(properties: Properties) -> bool:
    return properties is NO_PROPERTIES or not properties


def _ack_body(ptype: PacketType, packet_id: int, code: int, properties: Properties, level: int) -> bytes:
    """Packet id, then in v5 the shortest form: the code only if not 0, properties only if set."""
    body = pack_u16(packet_id)
    if level < 5 or (code == 0 and _absent(properties)):
        return body
    if _absent(properties):
        return body + bytes((code,))
    return body + bytes((code,)) + encode_properties(properties, ptype)


def _encode_puback(packet: Puback, level: int) -> bytes:
    return frame(0x40, _ack_body(PacketType.PUBACK, packet.packet_id, packet.reason_code, packet.properties, level))


def _encode_pubrec(packet: Pubrec, level: int) -> bytes:
    return frame(0x50, _ack_body(PacketType.PUBREC, packet.packet_id, packet.reason_code, packet.properties, level))


def _encode_pubrel(packet: Pubrel, level: int) -> bytes:
    return frame(0x62, _ack_body(PacketType.PUBREL, packet.packet_id, packet.reason_code, packet.properties, level))


def _encode_pubcomp(packet: Pubcomp, level: int) -> bytes:
    return frame(0x70, _ack_body(PacketType.PUBCOMP, packet.packet_id, packet.reason_code, packet.properties, level))


def _encode_subscribe(packet: Subscribe, level: int) -> bytes:
    parts = [pack_u16(packet.packet_id)]
    if level == 5:
        parts.append(encode_properties(packet.properties, PacketType.SUBSCRIBE))
    for subscription in packet.subscriptions:
        options = subscription.options
        byte = options.qos
        if level == 5:
            byte |= (options.no_local << 2) | (options.retain_as_published << 3) | (options.retain_handling << 4)
        parts += (encode_string(subscription.topic_filter), bytes((byte,)))
    return frame(0x82, b"".join(parts))


def _encode_suback(packet: Suback, level: int) -> bytes:
    body = pack_u16(packet.packet_id)
    if level == 5:
        body += encode_properties(packet.properties, PacketType.SUBACK)
    return frame(0x90, body + bytes(packet.reason_codes))


def _encode_unsubscribe(packet: Unsubscribe, level: int) -> bytes:
    parts = [pack_u16(packet.packet_id)]
    if level == 5:
        parts.append(encode_properties(packet.properties, PacketType.UNSUBSCRIBE))
    parts.extend(encode_string(topic_filter) for topic_filter in packet.topic_filters)
    return frame(0xA2, b"".join(parts))


def _encode_unsuback(packet: Unsuback, level: int) -> bytes:
    body = pack_u16(packet.packet_id)
    if level == 5:
        body += encode_properties(packet.properties, PacketType.UNSUBACK) + bytes(packet.reason_codes)
    return frame(0xB0, body)


_PINGREQ: Final = b"\xc0\x00"
_PINGRESP: Final = b"\xd0\x00"


def _encode_pingreq(packet: Pingreq, level: int) -> bytes:
    return _PINGREQ


def _encode_pingresp(packet: Pingresp, level: int) -> bytes:
    return _PINGRESP


def _code_and_properties(ptype: PacketType, code: int, properties: Properties, level: int) -> bytes:
    """The optional tail of DISCONNECT and AUTH: nothing when success without properties."""
    if level < 5 or (code == 0 and _absent(properties)):
        return b""
    if _absent(properties):
        return bytes((code,))
    return bytes((code,)) + encode_properties(properties, ptype)


def _encode_disconnect(packet: Disconnect, level: int) -> bytes:
    return frame(0xE0, _code_and_properties(PacketType.DISCONNECT, packet.reason_code, packet.properties, level))


def _encode_auth(packet: Auth, level: int) -> bytes:
    if level < 5:
        raise ValueError("AUTH does not exist before MQTT 5")
    return frame(0xF0, _code_and_properties(PacketType.AUTH, packet.reason_code, packet.properties, level))


#: The body encoder of each packet class.
ENCODERS: Final[dict[type, Callable[[Any, int], bytes]]] = {
    Connect: _encode_connect,
    Connack: _encode_connack,
    Publish: _encode_publish,
    Puback: _encode_puback,
    Pubrec: _encode_pubrec,
    Pubrel: _encode_pubrel,
    Pubcomp: _encode_pubcomp,
    Subscribe: _encode_subscribe,
    Suback: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    Unsuback: _encode_unsuback,
    Pingreq: _encode_pingreq,
    Pingresp: _encode_pingresp,
    Disconnect: _encode_disconnect,
    Auth: _encode_auth,
}


def encode(packet: Packet, protocol_level: int) -> bytes:
    """Encode any packet for a protocol level (3, 4 or 5)."""
    encoder = ENCODERS.get(type(packet))
    if encoder is None:
        raise TypeError(f"not an MQTT packet: {packet!r}")
    return encoder(packet, protocol_level)
