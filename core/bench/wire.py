"""Hand-built MQTT bytes for the load generator, and the little parsing it needs.

The load generator must never be the bottleneck, so it does not go through a full codec: the
few packets a benchmark client sends are built once from bytes, and received packets are
walked by their fixed header only. MQTT 3.1.1 (level 4) and 5.0 (level 5) are supported; for
5.0 every packet is sent without properties and acknowledgements use the short success form
(MQTT 5.0 §3.4.2.1: the reason code may be omitted when it is 0x00 and there are no properties).
"""

from __future__ import annotations

import struct

PUBLISH = 0x30
PUBACK = 0x40
PUBREC = 0x50
PUBREL = 0x62  # PUBREL's fixed-header flags are mandated to be 0b0010.
PUBCOMP = 0x70
DISCONNECT = b"\xe0\x00"
PINGREQ = b"\xc0\x00"

_PACK_ID = struct.Struct(">H")

# MQTT 5 property identifier -> wire kind, to step over properties we do not care about.
_BYTE, _TWO, _FOUR, _VARINT, _BINARY, _PAIR = range(6)
_PROPERTY_KINDS: dict[int, int] = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _BINARY, 0x08: _BINARY, 0x09: _BINARY, 0x0B: _VARINT,
    0x11: _FOUR, 0x12: _BINARY, 0x13: _TWO, 0x15: _BINARY, 0x16: _BINARY, 0x17: _BYTE,
    0x18: _FOUR, 0x19: _BYTE, 0x1A: _BINARY, 0x1C: _BINARY, 0x1F: _BINARY, 0x21: _TWO,
    0x22: _TWO, 0x23: _TWO, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _FOUR, 0x28: _BYTE,
    0x29: _BYTE, 0x2A: _BYTE,
}
_RECEIVE_MAXIMUM = 0x21


def encode_varint(value: int) -> bytes:
    """Encode a Variable Byte Integer (remaining length, property length)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def decode_varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Decode a Variable Byte Integer at ``pos``: ``(value, next_pos)``, or None if incomplete."""
    value = shift = 0
    for index in range(pos, min(pos + 4, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    return None


def _string(text: str) -> bytes:
    raw = text.encode()
    return _PACK_ID.pack(len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def connect_packet(client_id: str, level: int, keep_alive: int = 0) -> bytes:
    """A clean-session CONNECT with no will and no credentials."""
    header = _string("MQTT") + bytes((level, 0x02)) + _PACK_ID.pack(keep_alive)
    if level >= 5:
        header += b"\x00"
    return _packet(0x10, header + _string(client_id))


def subscribe_packet(packet_id: int, filters: list[str], qos: int, level: int) -> bytes:
    """One SUBSCRIBE carrying every filter of ``filters`` at the same maximum QoS."""
    body = _PACK_ID.pack(packet_id) + (b"\x00" if level >= 5 else b"")
    body += b"".join(_string(topic_filter) + bytes((qos,)) for topic_filter in filters)
    return _packet(0x82, body)


def ack_packet(first_byte: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP in its short success form."""
    return bytes((first_byte, 2)) + _PACK_ID.pack(packet_id)


class PublishTemplate:
    """Every PUBLISH a client sends to one topic differs only in packet id and payload bytes.

    The fixed header, topic and (MQTT 5) empty property block are built once, so a frame is
    a couple of concatenations.
    """

    __slots__ = ("_head", "_level", "payload", "qos")

    def __init__(self, topic: str, payload: bytes, qos: int, level: int) -> None:
        """Prepare frames for ``topic`` at ``qos``; ``payload`` is the default payload."""
        self.qos = qos
        self.payload = payload
        self._level = level
        variable = _string(topic)
        id_size = 2 if qos else 0
        props = b"\x00" if level >= 5 else b""
        remaining = len(variable) + id_size + len(props) + len(payload)
        self._head = bytes((PUBLISH | qos << 1,)) + encode_varint(remaining) + variable

    def frame(self, packet_id: int = 0, payload: bytes | None = None) -> bytes:
        """The wire bytes; ``payload`` must have the template's payload length."""
        body = self.payload if payload is None else payload
        props = b"\x00" if self._level >= 5 else b""
        if self.qos:
            return self._head + _PACK_ID.pack(packet_id) + props + body
        return self._head + props + body


def _skip_property(data: bytes, pos: int, kind: int) -> int:
    if kind == _BYTE:
        return pos + 1
    if kind == _TWO:
        return pos + 2
    if kind == _FOUR:
        return pos + 4
    if kind == _VARINT:
        decoded = decode_varint(data, pos)
        return len(data) if decoded is None else decoded[1]
    length = _PACK_ID.unpack_from(data, pos)[0]
    if kind == _PAIR:
        pos += 2 + length
        length = _PACK_ID.unpack_from(data, pos)[0]
    return int(pos + 2 + length)


def receive_maximum(properties: bytes) -> int | None:
    """The Receive Maximum carried in an MQTT 5 property block, if present."""
    pos = 0
    while pos < len(properties):
        identifier = properties[pos]
        if identifier == _RECEIVE_MAXIMUM:
            return int(_PACK_ID.unpack_from(properties, pos + 1)[0])
        kind = _PROPERTY_KINDS.get(identifier)
        if kind is None:
            return None
        pos = _skip_property(properties, pos + 1, kind)
    return None


def parse_connack(body: bytes, level: int) -> tuple[int, int | None]:
    """``(reason_code, receive_maximum)`` from a CONNACK body (after the fixed header)."""
    code = body[1]
    if level < 5 or len(body) < 3:
        return code, None
    decoded = decode_varint(body, 2)
    if decoded is None:
        return code, None
    length, start = decoded
    return code, receive_maximum(body[start : start + length])


def parse_suback(body: bytes, level: int) -> tuple[int, bytes]:
    """``(packet_id, granted_codes)`` from a SUBACK body."""
    packet_id = int(_PACK_ID.unpack_from(body, 0)[0])
    pos = 2
    if level >= 5:
        decoded = decode_varint(body, pos)
        if decoded is not None:
            pos = decoded[1] + decoded[0]
    return packet_id, bytes(body[pos:])


def publish_payload_offset(data: bytes | bytearray, body_start: int, qos: int, level: int) -> int:
    """Where the payload of a received PUBLISH starts, ``body_start`` being after the fixed header."""
    pos: int = body_start + 2 + _PACK_ID.unpack_from(data, body_start)[0]
    if qos:
        pos += 2
    if level >= 5:
        decoded = decode_varint(data, pos)
        if decoded is not None:
            pos = decoded[1] + decoded[0]
    return pos
