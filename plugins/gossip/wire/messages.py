"""memberlist's message types and bodies (net.go), as frozen dataclasses with exact encodings.

Each message class knows its Go field names and kinds (:mod:`.codec`); ``encode_message``
writes ``[type byte][msgpack body]`` byte for byte as memberlist does, ``decode_body`` reads a
body back with every field checked. Stream-only structures (push/pull header and node states,
the user-message header) are encoded without a type byte, because on a stream they follow one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar, TypeVar

from .codec import FieldKind, decode_fields, encode_fields, unpack_one
from .errors import WireError

__all__ = [
    "PROTOCOL_MAX",
    "PROTOCOL_MIN",
    "PROTOCOL_VERSION",
    "Ack",
    "Alive",
    "Compress",
    "Dead",
    "ErrorResponse",
    "IndirectPing",
    "MessageType",
    "Nack",
    "NodeStateCode",
    "Ping",
    "PushNodeState",
    "PushPullHeader",
    "Suspect",
    "UserMsgHeader",
    "WireMessage",
    "decode_body",
    "decode_struct",
    "encode_message",
    "encode_struct",
    "vsn_bytes",
]

PROTOCOL_MIN = 1
PROTOCOL_MAX = 5
PROTOCOL_VERSION = 2
"""memberlist's protocol range: speaks 2, understands 1..5 (net.go)."""


def vsn_bytes(pmin: int = PROTOCOL_MIN, pmax: int = PROTOCOL_MAX, pcur: int = PROTOCOL_VERSION) -> bytes:
    """The 6-byte ``Vsn`` field: protocol min/max/current, then delegate min/max/current (all 0)."""
    return bytes([pmin, pmax, pcur, 0, 0, 0])


class MessageType(IntEnum):
    """The first byte of every packet and stream (net.go)."""

    PING = 0
    INDIRECT_PING = 1
    ACK = 2
    SUSPECT = 3
    ALIVE = 4
    DEAD = 5
    PUSH_PULL = 6
    COMPOUND = 7
    USER = 8
    COMPRESS = 9
    ENCRYPT = 10
    NACK = 11
    HAS_CRC = 12
    ERROR = 13
    HAS_LABEL = 244


class NodeStateCode(IntEnum):
    """``NodeStateType`` as push/pull carries it."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


class _Struct:
    """The shared class attributes: subclasses declare ``FIELDS`` (Go name, kind) in attribute order."""

    __slots__ = ()

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = ()
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset()
    TYPE: ClassVar[MessageType | None] = None


@dataclass(frozen=True, slots=True)
class Ping(_Struct):
    """``ping``: probe a node by name; the Source fields say where to answer (omitted when empty)."""

    seq_no: int
    node: str
    source_addr: bytes = b""
    source_port: int = 0
    source_node: str = ""

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (
        ("SeqNo", "u32"), ("Node", "str"), ("SourceAddr", "bytes"), ("SourcePort", "u16"), ("SourceNode", "str"),
    )
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset({"SourceAddr", "SourcePort", "SourceNode"})
    TYPE: ClassVar[MessageType | None] = MessageType.PING


@dataclass(frozen=True, slots=True)
class IndirectPing(_Struct):
    """``indirectPingReq``: ask a peer to ping ``target:port`` for us, with a nack if it fails."""

    seq_no: int
    target: bytes
    port: int
    node: str
    nack: bool
    source_addr: bytes = b""
    source_port: int = 0
    source_node: str = ""

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (
        ("SeqNo", "u32"), ("Target", "bytes"), ("Port", "u16"), ("Node", "str"), ("Nack", "bool"),
        ("SourceAddr", "bytes"), ("SourcePort", "u16"), ("SourceNode", "str"),
    )
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset({"SourceAddr", "SourcePort", "SourceNode"})
    TYPE: ClassVar[MessageType | None] = MessageType.INDIRECT_PING


@dataclass(frozen=True, slots=True)
class Ack(_Struct):
    """``ackResp``: the answer to a ping (payload nil unless a ping delegate adds one)."""

    seq_no: int
    payload: bytes = b""

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("SeqNo", "u32"), ("Payload", "nbytes"))
    TYPE: ClassVar[MessageType | None] = MessageType.ACK


@dataclass(frozen=True, slots=True)
class Nack(_Struct):
    """``nackResp``: an indirect prober heard nothing from the target in time."""

    seq_no: int

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("SeqNo", "u32"),)
    TYPE: ClassVar[MessageType | None] = MessageType.NACK


@dataclass(frozen=True, slots=True)
class ErrorResponse(_Struct):
    """``errResp``: a stream peer could not handle what we sent."""

    error: str

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("Error", "str"),)
    TYPE: ClassVar[MessageType | None] = MessageType.ERROR


@dataclass(frozen=True, slots=True)
class Suspect(_Struct):
    """``suspect``: ``from_node`` suspects ``node`` at ``incarnation``."""

    incarnation: int
    node: str
    from_node: str

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("Incarnation", "u32"), ("Node", "str"), ("From", "str"))
    TYPE: ClassVar[MessageType | None] = MessageType.SUSPECT


@dataclass(frozen=True, slots=True)
class Alive(_Struct):
    """``alive``: ``node`` lives at ``addr:port`` with ``meta``, at ``incarnation`` (joins and refutes)."""

    incarnation: int
    node: str
    addr: bytes
    port: int
    meta: bytes
    vsn: bytes

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (
        ("Incarnation", "u32"), ("Node", "str"), ("Addr", "bytes"), ("Port", "u16"), ("Meta", "nbytes"), ("Vsn", "bytes"),
    )
    TYPE: ClassVar[MessageType | None] = MessageType.ALIVE


@dataclass(frozen=True, slots=True)
class Dead(_Struct):
    """``dead``: ``node`` is dead at ``incarnation``; ``from_node == node`` means it left."""

    incarnation: int
    node: str
    from_node: str

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("Incarnation", "u32"), ("Node", "str"), ("From", "str"))
    TYPE: ClassVar[MessageType | None] = MessageType.DEAD


@dataclass(frozen=True, slots=True)
class Compress(_Struct):
    """``compress``: ``buf`` holds a whole message, LZW-compressed (``algo`` 0 is the only one)."""

    algo: int
    buf: bytes

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("Algo", "u8"), ("Buf", "bytes"))
    TYPE: ClassVar[MessageType | None] = MessageType.COMPRESS


@dataclass(frozen=True, slots=True)
class PushPullHeader(_Struct):
    """``pushPullHeader``: how many node states and user-state bytes follow on the stream."""

    nodes: int
    user_state_len: int
    join: bool

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("Nodes", "int"), ("UserStateLen", "int"), ("Join", "bool"))


@dataclass(frozen=True, slots=True)
class PushNodeState(_Struct):
    """``pushNodeState``: one node of a push/pull exchange."""

    name: str
    addr: bytes
    port: int
    meta: bytes
    incarnation: int
    state: int
    vsn: bytes

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (
        ("Name", "str"), ("Addr", "bytes"), ("Port", "u16"), ("Meta", "nbytes"), ("Incarnation", "u32"),
        ("State", "int"), ("Vsn", "bytes"),
    )


@dataclass(frozen=True, slots=True)
class UserMsgHeader(_Struct):
    """``userMsgHeader``: the length of the user message that follows on a stream."""

    user_msg_len: int

    FIELDS: ClassVar[tuple[tuple[str, FieldKind], ...]] = (("UserMsgLen", "int"),)


WireMessage = Ping | IndirectPing | Ack | Nack | ErrorResponse | Suspect | Alive | Dead | Compress
"""A message that travels as ``[type][body]``."""

_BY_TYPE: dict[int, type[Any]] = {
    int(cls.TYPE): cls for cls in (Ping, IndirectPing, Ack, Nack, ErrorResponse, Suspect, Alive, Dead, Compress) if cls.TYPE is not None
}

S = TypeVar("S", bound=_Struct)


def encode_struct(value: _Struct) -> bytes:
    """The msgpack map of a struct, without a type byte."""
    values = [getattr(value, field.name) for field in fields(value)]  # type: ignore[arg-type]
    return encode_fields(value.FIELDS, values, value.OMIT_EMPTY)


def encode_message(message: WireMessage) -> bytes:
    """``[type byte][msgpack body]``, as memberlist's ``encode``."""
    assert message.TYPE is not None
    return bytes([message.TYPE]) + encode_struct(message)


def decode_struct(cls: type[S], obj: object) -> S:
    """Build ``cls`` from an already decoded msgpack map, checking every field."""
    return cls(*decode_fields(obj, cls.FIELDS, cls.__name__))


def decode_body(message_type: int, body: bytes) -> WireMessage:
    """Decode the msgpack body of a message of ``message_type`` (one object; the rest is ignored)."""
    cls = _BY_TYPE.get(message_type)
    if cls is None:
        raise WireError("type", f"message type {message_type} has no msgpack body")
    obj, _ = unpack_one(body)
    message: WireMessage = decode_struct(cls, obj)
    return message
