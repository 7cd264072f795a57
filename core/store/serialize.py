"""Compact, versioned binary encoding of store records, shared by the persistent backends.

The layout is ours (not the MQTT wire format) so that it can hold what the wire cannot
(packet id 0 with QoS > 0, receive times, DUP on a stored message) and never changes with the
codec. Each blob starts with a format version byte. Integers are unsigned LEB128 varints,
strings and byte strings are varint-length-prefixed, times are IEEE 754 doubles. MQTT 5
properties are written as (property identifier, value) pairs using the identifiers of the
MQTT 5 specification, so the encoding stays stable if ``Properties`` gains fields.
"""

from __future__ import annotations

import struct
from dataclasses import fields
from typing import Any

from ..mqtt.packets import Properties, Publish, SubscriptionOptions, Will
from .records import OutgoingRecord, OutgoingState, SessionRecord, StoredMessage, SubscriptionRecord

__all__ = [
    "FormatError",
    "decode_message",
    "decode_outgoing",
    "decode_session",
    "decode_subscription",
    "encode_message",
    "encode_outgoing",
    "encode_session",
    "encode_subscription",
]

_VERSION = 1
_DOUBLE = struct.Struct("<d")

# MQTT 5 property identifiers (spec table 2-4) and the kind of value each holds.
_PROPERTY_IDS: dict[str, tuple[int, str]] = {
    "payload_format_indicator": (0x01, "int"),
    "message_expiry_interval": (0x02, "int"),
    "content_type": (0x03, "str"),
    "response_topic": (0x08, "str"),
    "correlation_data": (0x09, "bytes"),
    "subscription_identifiers": (0x0B, "ints"),
    "session_expiry_interval": (0x11, "int"),
    "assigned_client_identifier": (0x12, "str"),
    "server_keep_alive": (0x13, "int"),
    "authentication_method": (0x15, "str"),
    "authentication_data": (0x16, "bytes"),
    "request_problem_information": (0x17, "int"),
    "will_delay_interval": (0x18, "int"),
    "request_response_information": (0x19, "int"),
    "response_information": (0x1A, "str"),
    "server_reference": (0x1C, "str"),
    "reason_string": (0x1F, "str"),
    "receive_maximum": (0x21, "int"),
    "topic_alias_maximum": (0x22, "int"),
    "topic_alias": (0x23, "int"),
    "maximum_qos": (0x24, "int"),
    "retain_available": (0x25, "int"),
    "user_properties": (0x26, "pairs"),
    "maximum_packet_size": (0x27, "int"),
    "wildcard_subscription_available": (0x28, "int"),
    "subscription_identifier_available": (0x29, "int"),
    "shared_subscription_available": (0x2A, "int"),
}
_PROPERTY_NAMES = {ident: (name, kind) for name, (ident, kind) in _PROPERTY_IDS.items()}
_ABSENT: dict[str, Any] = {f.name: f.default for f in fields(Properties)}


class FormatError(ValueError):
    """A stored blob is truncated, corrupt or of an unknown format version."""


class _Writer:
    """Appends primitive values to a bytearray."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray([_VERSION])

    def uint(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"cannot encode negative integer {value}")
        while value >= 0x80:
            self.buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self.buf.append(value)

    def blob(self, value: bytes) -> None:
        self.uint(len(value))
        self.buf += value

    def text(self, value: str) -> None:
        self.blob(value.encode("utf-8", "surrogatepass"))

    def double(self, value: float) -> None:
        self.buf += _DOUBLE.pack(value)

    def optional_text(self, value: str | None) -> None:
        self.flag(value is not None)
        if value is not None:
            self.text(value)

    def optional_double(self, value: float | None) -> None:
        self.flag(value is not None)
        if value is not None:
            self.double(value)

    def flag(self, value: bool) -> None:
        self.buf.append(1 if value else 0)


class _Reader:
    """Reads primitive values back; raises :class:`FormatError` on truncation."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        if not data or data[0] != _VERSION:
            raise FormatError(f"unknown store record format {data[:1]!r}")
        self.data = data
        self.pos = 1

    def _take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise FormatError("store record is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self) -> int:
        value = shift = 0
        while True:
            byte = self._take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def blob(self) -> bytes:
        return self._take(self.uint())

    def text(self) -> str:
        return self.blob().decode("utf-8", "surrogatepass")

    def double(self) -> float:
        value: float = _DOUBLE.unpack(self._take(8))[0]
        return value

    def flag(self) -> bool:
        return self._take(1)[0] != 0

    def optional_text(self) -> str | None:
        return self.text() if self.flag() else None

    def optional_double(self) -> float | None:
        return self.double() if self.flag() else None


def _write_properties(out: _Writer, props: Properties) -> None:
    present = [(name, getattr(props, name)) for name in _PROPERTY_IDS if getattr(props, name) != _ABSENT[name]]
    out.uint(len(present))
    for name, value in present:
        ident, kind = _PROPERTY_IDS[name]
        out.uint(ident)
        if kind == "int":
            out.uint(value)
        elif kind == "str":
            out.text(value)
        elif kind == "bytes":
            out.blob(value)
        elif kind == "ints":
            out.uint(len(value))
            for item in value:
                out.uint(item)
        else:
            out.uint(len(value))
            for key, val in value:
                out.text(key)
                out.text(val)


def _read_properties(src: _Reader) -> Properties:
    count = src.uint()
    if count == 0:
        return Properties()
    values: dict[str, Any] = {}
    for _ in range(count):
        ident = src.uint()
        if ident not in _PROPERTY_NAMES:
            raise FormatError(f"unknown property identifier {ident:#x}")
        name, kind = _PROPERTY_NAMES[ident]
        if kind == "int":
            values[name] = src.uint()
        elif kind == "str":
            values[name] = src.text()
        elif kind == "bytes":
            values[name] = src.blob()
        elif kind == "ints":
            values[name] = tuple(src.uint() for _ in range(src.uint()))
        else:
            values[name] = tuple((src.text(), src.text()) for _ in range(src.uint()))
    return Properties(**values)


#: In a stored message's flag bits: an identity follows the message (records before identities never set it).
_HAS_IDENTITY = 0x10


def _write_publish(out: _Writer, publish: Publish, extra_bits: int = 0) -> None:
    out.uint(publish.qos | publish.retain << 2 | publish.dup << 3 | extra_bits)
    out.uint(publish.packet_id)
    out.text(publish.topic)
    out.blob(publish.payload)
    _write_properties(out, publish.properties)


def _read_publish(src: _Reader) -> tuple[int, Publish]:
    bits = src.uint()
    packet_id = src.uint()
    topic = src.text()
    payload = src.blob()
    return bits, Publish(
        topic=topic,
        payload=payload,
        qos=bits & 0x03,
        retain=bool(bits & 0x04),
        dup=bool(bits & 0x08),
        packet_id=packet_id,
        properties=_read_properties(src),
    )


def _write_message(out: _Writer, message: StoredMessage) -> None:
    out.double(message.received_at)
    out.optional_double(message.expiry_at)
    _write_publish(out, message.publish, 0 if message.identity is None else _HAS_IDENTITY)
    if message.identity is not None:
        out.blob(message.identity)


def _read_message(src: _Reader) -> StoredMessage:
    received_at = src.double()
    expiry_at = src.optional_double()
    bits, publish = _read_publish(src)
    identity = src.blob() if bits & _HAS_IDENTITY else None
    return StoredMessage(publish=publish, received_at=received_at, expiry_at=expiry_at, identity=identity)


def _finish(src: _Reader) -> None:
    if src.pos != len(src.data):
        raise FormatError("trailing bytes after store record")


def encode_message(message: StoredMessage) -> bytes:
    """Serialize a stored message."""
    out = _Writer()
    _write_message(out, message)
    return bytes(out.buf)


def decode_message(data: bytes) -> StoredMessage:
    """Inverse of :func:`encode_message`."""
    src = _Reader(data)
    message = _read_message(src)
    _finish(src)
    return message


def encode_outgoing(record: OutgoingRecord) -> bytes:
    """Serialize an outgoing inflight record."""
    out = _Writer()
    out.uint(record.packet_id)
    out.flag(record.state == "pubrel")
    out.uint(record.sent_count)
    _write_message(out, record.message)
    return bytes(out.buf)


def decode_outgoing(data: bytes) -> OutgoingRecord:
    """Inverse of :func:`encode_outgoing`."""
    src = _Reader(data)
    packet_id = src.uint()
    state: OutgoingState = "pubrel" if src.flag() else "publish"
    sent_count = src.uint()
    record = OutgoingRecord(packet_id=packet_id, message=_read_message(src), state=state, sent_count=sent_count)
    _finish(src)
    return record


def encode_subscription(subscription: SubscriptionRecord) -> bytes:
    """Serialize a subscription."""
    out = _Writer()
    opts = subscription.options
    out.text(subscription.topic_filter)
    out.uint(opts.qos | opts.no_local << 2 | opts.retain_as_published << 3 | opts.retain_handling << 4)
    # Subscription identifiers are 1..268435455, so 0 can stand for "none".
    out.uint(subscription.identifier or 0)
    return bytes(out.buf)


def decode_subscription(data: bytes) -> SubscriptionRecord:
    """Inverse of :func:`encode_subscription`."""
    src = _Reader(data)
    topic_filter = src.text()
    bits = src.uint()
    identifier = src.uint() or None
    _finish(src)
    options = SubscriptionOptions(
        qos=bits & 0x03,
        no_local=bool(bits & 0x04),
        retain_as_published=bool(bits & 0x08),
        retain_handling=(bits >> 4) & 0x03,
    )
    return SubscriptionRecord(topic_filter=topic_filter, options=options, identifier=identifier)


def _write_will(out: _Writer, will: Will | None) -> None:
    out.flag(will is not None)
    if will is None:
        return
    out.text(will.topic)
    out.blob(will.payload)
    out.uint(will.qos | will.retain << 2)
    _write_properties(out, will.properties)


def _read_will(src: _Reader) -> Will | None:
    if not src.flag():
        return None
    topic = src.text()
    payload = src.blob()
    bits = src.uint()
    return Will(topic=topic, payload=payload, qos=bits & 0x03, retain=bool(bits & 0x04), properties=_read_properties(src))


def encode_session(record: SessionRecord) -> bytes:
    """Serialize a session record."""
    out = _Writer()
    out.text(record.client_id)
    out.uint(record.protocol_level)
    out.flag(record.clean_start)
    out.uint(record.expiry_interval)
    out.optional_double(record.disconnected_at)
    out.uint(record.will_delay)
    out.optional_text(record.username)
    out.uint(record.keep_alive)
    out.optional_text(record.node)
    _write_properties(out, record.properties)
    _write_will(out, record.will)
    return bytes(out.buf)


def decode_session(data: bytes) -> SessionRecord:
    """Inverse of :func:`encode_session`."""
    src = _Reader(data)
    record = SessionRecord(
        client_id=src.text(),
        protocol_level=src.uint(),
        clean_start=src.flag(),
        expiry_interval=src.uint(),
        disconnected_at=src.optional_double(),
        will_delay=src.uint(),
        username=src.optional_text(),
        keep_alive=src.uint(),
        node=src.optional_text(),
        properties=_read_properties(src),
        will=_read_will(src),
    )
    _finish(src)
    return record
