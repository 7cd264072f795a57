"""MQTT 5 properties: the table of every property, and their wire encoding.

The table (:data:`PROPERTY_SPECS`, OASIS MQTT 5.0 §2.2.2.2) says, for each property, its
identifier, the :class:`~hookmq.mqtt.packets.Properties` field holding it, its data type, the
packets allowed to carry it and where it may repeat. The will properties of CONNECT are their
own context, :data:`WILL`. Encoding is in ascending identifier order and emits only what is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Final

from ._wire import (
    encode_binary,
    encode_string,
    encode_varint,
    pack_u16,
    pack_u32,
    read_binary,
    read_string,
    read_u8,
    read_u16,
    read_u32,
    read_varint,
)
from .errors import MalformedPacket, ProtocolError
from .packets import NO_PROPERTIES, PacketType, Properties
from .reason_codes import ReasonCode

#: The property context of the will properties inside CONNECT (not a packet type).
WILL: Final = 0


class PropertyId(IntEnum):
    """Every MQTT 5 property identifier."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


class PropertyType(Enum):
    """The data type of a property value (OASIS MQTT 5.0 §1.5)."""

    BYTE = "Byte"
    TWO_BYTE_INTEGER = "Two Byte Integer"
    FOUR_BYTE_INTEGER = "Four Byte Integer"
    VARIABLE_BYTE_INTEGER = "Variable Byte Integer"
    UTF8_STRING = "UTF-8 Encoded String"
    BINARY_DATA = "Binary Data"
    UTF8_STRING_PAIR = "UTF-8 String Pair"


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One row of the property table."""

    id: PropertyId
    field: str
    type: PropertyType
    #: Packet types (and :data:`WILL`) allowed to carry the property.
    contexts: frozenset[int]
    #: Contexts where the property may appear more than once.
    repeatable_in: frozenset[int] = frozenset()


_P = PacketType
_ACKS = (_P.PUBACK, _P.PUBREC, _P.PUBREL, _P.PUBCOMP)
_MESSAGE = frozenset({_P.PUBLISH, WILL})
_ALL = frozenset({_P.CONNECT, _P.CONNACK, _P.PUBLISH, WILL, *_ACKS, _P.SUBSCRIBE, _P.SUBACK,
                  _P.UNSUBSCRIBE, _P.UNSUBACK, _P.DISCONNECT, _P.AUTH})


def _spec(pid: PropertyId, ptype: PropertyType, *contexts: int, repeatable_in: frozenset[int] = frozenset()) -> PropertySpec:
    return PropertySpec(pid, pid.name.lower(), ptype, frozenset(contexts), repeatable_in)


_T = PropertyType
_I = PropertyId

#: Every property, in ascending identifier order (the order they are encoded in).
PROPERTY_SPECS: Final[tuple[PropertySpec, ...]] = (
    _spec(_I.PAYLOAD_FORMAT_INDICATOR, _T.BYTE, *_MESSAGE),
    _spec(_I.MESSAGE_EXPIRY_INTERVAL, _T.FOUR_BYTE_INTEGER, *_MESSAGE),
    _spec(_I.CONTENT_TYPE, _T.UTF8_STRING, *_MESSAGE),
    _spec(_I.RESPONSE_TOPIC, _T.UTF8_STRING, *_MESSAGE),
    _spec(_I.CORRELATION_DATA, _T.BINARY_DATA, *_MESSAGE),
    PropertySpec(_I.SUBSCRIPTION_IDENTIFIER, "subscription_identifiers", _T.VARIABLE_BYTE_INTEGER,
                 frozenset({_P.PUBLISH, _P.SUBSCRIBE}), frozenset({_P.PUBLISH})),
    _spec(_I.SESSION_EXPIRY_INTERVAL, _T.FOUR_BYTE_INTEGER, _P.CONNECT, _P.CONNACK, _P.DISCONNECT),
    _spec(_I.ASSIGNED_CLIENT_IDENTIFIER, _T.UTF8_STRING, _P.CONNACK),
    _spec(_I.SERVER_KEEP_ALIVE, _T.TWO_BYTE_INTEGER, _P.CONNACK),
    _spec(_I.AUTHENTICATION_METHOD, _T.UTF8_STRING, _P.CONNECT, _P.CONNACK, _P.AUTH),
    _spec(_I.AUTHENTICATION_DATA, _T.BINARY_DATA, _P.CONNECT, _P.CONNACK, _P.AUTH),
    _spec(_I.REQUEST_PROBLEM_INFORMATION, _T.BYTE, _P.CONNECT),
    _spec(_I.WILL_DELAY_INTERVAL, _T.FOUR_BYTE_INTEGER, WILL),
    _spec(_I.REQUEST_RESPONSE_INFORMATION, _T.BYTE, _P.CONNECT),
    _spec(_I.RESPONSE_INFORMATION, _T.UTF8_STRING, _P.CONNACK),
    _spec(_I.SERVER_REFERENCE, _T.UTF8_STRING, _P.CONNACK, _P.DISCONNECT),
    _spec(_I.REASON_STRING, _T.UTF8_STRING, _P.CONNACK, *_ACKS, _P.SUBACK, _P.UNSUBACK, _P.DISCONNECT,
          _P.AUTH),
    _spec(_I.RECEIVE_MAXIMUM, _T.TWO_BYTE_INTEGER, _P.CONNECT, _P.CONNACK),
    _spec(_I.TOPIC_ALIAS_MAXIMUM, _T.TWO_BYTE_INTEGER, _P.CONNECT, _P.CONNACK),
    _spec(_I.TOPIC_ALIAS, _T.TWO_BYTE_INTEGER, _P.PUBLISH),
    _spec(_I.MAXIMUM_QOS, _T.BYTE, _P.CONNACK),
    _spec(_I.RETAIN_AVAILABLE, _T.BYTE, _P.CONNACK),
    PropertySpec(_I.USER_PROPERTY, "user_properties", _T.UTF8_STRING_PAIR, _ALL, _ALL),
    _spec(_I.MAXIMUM_PACKET_SIZE, _T.FOUR_BYTE_INTEGER, _P.CONNECT, _P.CONNACK),
    _spec(_I.WILDCARD_SUBSCRIPTION_AVAILABLE, _T.BYTE, _P.CONNACK),
    _spec(_I.SUBSCRIPTION_IDENTIFIER_AVAILABLE, _T.BYTE, _P.CONNACK),
    _spec(_I.SHARED_SUBSCRIPTION_AVAILABLE, _T.BYTE, _P.CONNACK),
)

#: The table indexed by identifier.
SPEC_BY_ID: Final[dict[int, PropertySpec]] = {spec.id: spec for spec in PROPERTY_SPECS}

#: The properties whose value holds several occurrences (a tuple on :class:`Properties`).
_MULTI_VALUED = frozenset({_I.SUBSCRIPTION_IDENTIFIER, _I.USER_PROPERTY})

#: Byte properties whose only legal values are 0 and 1.
_BOOLEAN_BYTES = frozenset({
    _I.PAYLOAD_FORMAT_INDICATOR, _I.REQUEST_PROBLEM_INFORMATION, _I.REQUEST_RESPONSE_INFORMATION,
    _I.MAXIMUM_QOS, _I.RETAIN_AVAILABLE, _I.WILDCARD_SUBSCRIPTION_AVAILABLE,
    _I.SUBSCRIPTION_IDENTIFIER_AVAILABLE, _I.SHARED_SUBSCRIPTION_AVAILABLE,
})

#: Integer properties for which the value 0 is a protocol error, with the reason code to raise.
_NONZERO = {
    _I.RECEIVE_MAXIMUM: ReasonCode.PROTOCOL_ERROR,
    _I.MAXIMUM_PACKET_SIZE: ReasonCode.PROTOCOL_ERROR,
    _I.SUBSCRIPTION_IDENTIFIER: ReasonCode.PROTOCOL_ERROR,
    _I.TOPIC_ALIAS: ReasonCode.TOPIC_ALIAS_INVALID,
}


def context_name(context: int) -> str:
    """A readable name for a property context, for error messages."""
    return "will properties" if context == WILL else PacketType(context).name


def _read_pair(data: bytes, pos: int, end: int, what: str) -> tuple[tuple[str, str], int]:
    name, pos = read_string(data, pos, end, what)
    value, pos = read_string(data, pos, end, what)
    return (name, value), pos


_Reader = Callable[[bytes, int, int, str], tuple[Any, int]]
_READERS: dict[PropertyType, _Reader] = {
    _T.BYTE: read_u8,
    _T.TWO_BYTE_INTEGER: read_u16,
    _T.FOUR_BYTE_INTEGER: read_u32,
    _T.VARIABLE_BYTE_INTEGER: read_varint,
    _T.UTF8_STRING: read_string,
    _T.BINARY_DATA: read_binary,
    _T.UTF8_STRING_PAIR: _read_pair,
}


def _check_value(spec: PropertySpec, value: Any) -> None:
    """Reject values the specification calls a protocol error."""
    if spec.id in _BOOLEAN_BYTES and value > 1:
        raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"{spec.field} must be 0 or 1, not {value}")
    if value == 0 and spec.id in _NONZERO:
        raise ProtocolError(_NONZERO[spec.id], f"{spec.field} must not be 0")
    if spec.id == _I.RESPONSE_TOPIC and ("+" in value or "#" in value or not value):
        raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"response_topic {value!r} is not a valid topic name")


def decode_properties(data: bytes, pos: int, end: int, context: int) -> tuple[Properties, int]:
    """Read a property block (length + properties) allowed for ``context``.

    Raises :class:`ProtocolError`: 0x81 for an unknown identifier, a property the context does
    not allow or a truncated value; 0x82 for a forbidden repetition or an illegal value.
    """
    length, pos = read_varint(data, pos, end, "property length")
    if length == 0:
        return NO_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise MalformedPacket("property length runs past the end of the packet")
    values: dict[str, Any] = {}
    while pos < stop:
        pid, pos = read_varint(data, pos, stop, "property identifier")
        spec = SPEC_BY_ID.get(pid)
        if spec is None:
            raise MalformedPacket(f"unknown property identifier 0x{pid:02X}")
        if context not in spec.contexts:
            raise MalformedPacket(f"property {spec.field} is not allowed in {context_name(context)}")
        value, pos = _READERS[spec.type](data, pos, stop, spec.field)
        _check_value(spec, value)
        _store(values, spec, value, context)
    return Properties(**values), pos


def _store(values: dict[str, Any], spec: PropertySpec, value: Any, context: int) -> None:
    seen = values.get(spec.field)
    if seen is not None and context not in spec.repeatable_in:
        raise ProtocolError(ReasonCode.PROTOCOL_ERROR,
                            f"property {spec.field} appears more than once in {context_name(context)}")
    if spec.id in _MULTI_VALUED:
        values[spec.field] = (*seen, value) if seen else (value,)
    else:
        values[spec.field] = value


def _write_value(spec: PropertySpec, value: Any) -> bytes:
    head = bytes((spec.id,))
    ptype = spec.type
    if ptype is _T.BYTE:
        return head + bytes((value,))
    if ptype is _T.TWO_BYTE_INTEGER:
        return head + pack_u16(value)
    if ptype is _T.FOUR_BYTE_INTEGER:
        return head + pack_u32(value)
    if ptype is _T.VARIABLE_BYTE_INTEGER:
        return head + encode_varint(value)
    if ptype is _T.UTF8_STRING:
        return head + encode_string(value)
    if ptype is _T.BINARY_DATA:
        return head + encode_binary(value)
    return head + encode_string(value[0]) + encode_string(value[1])


#: A property block with no properties: the single length byte 0.
EMPTY_PROPERTY_BLOCK: Final = b"\x00"


def encode_properties(properties: Properties, context: int) -> bytes:
    """Encode a property block (length + properties) in ascending identifier order.

    Raises ``ValueError`` when ``properties`` holds one that ``context`` does not allow.
    """
    if properties is NO_PROPERTIES:
        return EMPTY_PROPERTY_BLOCK
    parts: list[bytes] = []
    for spec in PROPERTY_SPECS:
        value = getattr(properties, spec.field)
        if value is None or value == ():
            continue
        if context not in spec.contexts:
            raise ValueError(f"property {spec.field} is not allowed in {context_name(context)}")
        if spec.id in _MULTI_VALUED:
            parts.extend(_write_value(spec, item) for item in value)
        else:
            parts.append(_write_value(spec, value))
    body = b"".join(parts)
    return encode_varint(len(body)) + body
