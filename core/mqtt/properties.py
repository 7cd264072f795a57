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


def _write_pair(pair: tuple[str, str]) -> bytes:
    return encode_string(pair[0]) + encode_string(pair[1])


_Reader = Callable[[bytes, int, int, str], tuple[Any, int]]
_CODERS: dict[PropertyType, tuple[_Reader, Callable[[Any], bytes]]] = {
    _T.BYTE: (read_u8, lambda value: bytes((value,))),
    _T.TWO_BYTE_INTEGER: (read_u16, pack_u16),
    _T.FOUR_BYTE_INTEGER: (read_u32, pack_u32),
    _T.VARIABLE_BYTE_INTEGER: (read_varint, encode_varint),
    _T.UTF8_STRING: (read_string, encode_string),
    _T.BINARY_DATA: (read_binary, encode_binary),
    _T.UTF8_STRING_PAIR: (_read_pair, _write_pair),
}


@dataclass(frozen=True, slots=True)
class _Row:
    """A spec prepared for the codec: plain ints (hashing IntEnum members runs Python code)."""

    field: str
    head: bytes
    read: _Reader
    write: Callable[[Any], bytes]
    contexts: frozenset[int]
    repeatable_in: frozenset[int]
    multi_valued: bool
    check: Callable[[Any], None] | None


def _checker(spec: PropertySpec) -> Callable[[Any], None] | None:
    """The value check the specification asks for, if any (protocol errors)."""
    name = spec.field
    if spec.id in _BOOLEAN_BYTES:
        def check_boolean(value: int) -> None:
            if value > 1:
                raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"{name} must be 0 or 1, not {value}")
        return check_boolean
    if spec.id in _NONZERO:
        reason = _NONZERO[spec.id]

        def check_nonzero(value: int) -> None:
            if value == 0:
                raise ProtocolError(reason, f"{name} must not be 0")
        return check_nonzero
    if spec.id == _I.RESPONSE_TOPIC:
        def check_topic(value: str) -> None:
            if not value or "+" in value or "#" in value:
                raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"{name} {value!r} is not a valid topic name")
        return check_topic
    return None


def _row(spec: PropertySpec) -> _Row:
    read, write = _CODERS[spec.type]
    return _Row(spec.field, bytes((spec.id,)), read, write, frozenset(map(int, spec.contexts)),
                frozenset(map(int, spec.repeatable_in)), spec.id in _MULTI_VALUED, _checker(spec))


_ROWS: Final[dict[int, _Row]] = {int(spec.id): _row(spec) for spec in PROPERTY_SPECS}
_ROWS_IN_ORDER: Final = tuple(_ROWS[spec.id] for spec in PROPERTY_SPECS)

# Decoded blocks by (context, raw bytes). A publisher usually repeats the same properties
# (expiry, content type, user properties), and Properties objects are immutable, so sharing
# one is safe and skips building a 27-field object. Bounded: small blocks only, and the
# whole cache is dropped when full (cheaper than tracking recency on the hot path).
_CACHE: dict[tuple[int, bytes], Properties] = {}
_CACHE_ENTRIES: Final = 1024
_CACHE_BLOCK_BYTES: Final = 256


# Encoded blocks by the identity of the Properties object: the engine forwards the object it
# decoded (often itself from _CACHE), so the same one comes back for every message. Each
# entry keeps its object alive, so its id cannot be reused by another object meanwhile.
_ENCODED: dict[tuple[int, int], tuple[Properties, bytes]] = {}


def clear_property_cache() -> None:
    """Forget the decoded and encoded property blocks (for benchmarks of the cold path)."""
    _CACHE.clear()
    _ENCODED.clear()


def decode_properties(data: bytes, pos: int, end: int, context: int) -> tuple[Properties, int]:
    """Read a property block (length + properties) allowed for ``context``.

    Raises :class:`ProtocolError`: 0x81 for an unknown identifier, a property the context does
    not allow or a truncated value; 0x82 for a forbidden repetition or an illegal value (0x94
    for topic alias 0).
    """
    length, pos = read_varint(data, pos, end, "property length")
    if length == 0:
        return NO_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise MalformedPacket("property length runs past the end of the packet")
    if length > _CACHE_BLOCK_BYTES:
        return _decode_block(data, pos, stop, context), stop
    key = (context, data[pos:stop])
    properties = _CACHE.get(key)
    if properties is None:
        properties = _decode_block(data, pos, stop, context)
        if len(_CACHE) >= _CACHE_ENTRIES:
            _CACHE.clear()
        _CACHE[key] = properties
    return properties, stop


def _decode_block(data: bytes, pos: int, stop: int, context: int) -> Properties:
    values: dict[str, Any] = {}
    while pos < stop:
        pid, pos = read_varint(data, pos, stop, "property identifier")
        row = _ROWS.get(pid)
        if row is None:
            raise MalformedPacket(f"unknown property identifier 0x{pid:02X}")
        if context not in row.contexts:
            raise MalformedPacket(f"property {row.field} is not allowed in {context_name(context)}")
        value, pos = row.read(data, pos, stop, row.field)
        if row.check is not None:
            row.check(value)
        seen = values.get(row.field)
        if seen is not None and context not in row.repeatable_in:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR,
                                f"property {row.field} appears more than once in {context_name(context)}")
        if row.multi_valued:
            values[row.field] = (*seen, value) if seen else (value,)
        else:
            values[row.field] = value
    return Properties(**values)


#: A property block with no properties: the single length byte 0.
EMPTY_PROPERTY_BLOCK: Final = b"\x00"


def encode_properties(properties: Properties, context: int) -> bytes:
    """Encode a property block (length + properties) in ascending identifier order.

    Only present properties are written (``None`` and ``()`` are absent; 0 is a value).
    Raises ``ValueError`` when ``properties`` holds one that ``context`` does not allow.
    """
    if properties is NO_PROPERTIES:
        return EMPTY_PROPERTY_BLOCK
    key = (id(properties), context)
    cached = _ENCODED.get(key)
    if cached is not None and cached[0] is properties:
        return cached[1]
    block = _encode_block(properties, context)
    if len(block) <= _CACHE_BLOCK_BYTES:
        if len(_ENCODED) >= _CACHE_ENTRIES:
            _ENCODED.clear()
        _ENCODED[key] = (properties, block)
    return block


def _encode_block(properties: Properties, context: int) -> bytes:
    parts: list[bytes] = []
    for row in _ROWS_IN_ORDER:
        value = getattr(properties, row.field)
        if value is None or value == ():
            continue
        if context not in row.contexts:
            raise ValueError(f"property {row.field} is not allowed in {context_name(context)}")
        if row.multi_valued:
            parts.extend(row.head + row.write(item) for item in value)
        else:
            parts.append(row.head + row.write(value))
    body = b"".join(parts)
    return encode_varint(len(body)) + body
