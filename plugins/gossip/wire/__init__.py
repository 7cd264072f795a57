"""memberlist's wire format, sans-I/O: message bodies, packets, streams, LZW, AES-GCM keyring.

Everything here turns bytes into values and back, with no sockets and no clock; every
decoder raises :class:`WireError` (and nothing else) for input it cannot accept.
"""

from __future__ import annotations

from .crypto import Keyring
from .errors import WireError
from .messages import (
    PROTOCOL_MAX,
    PROTOCOL_MIN,
    PROTOCOL_VERSION,
    Ack,
    Alive,
    Dead,
    ErrorResponse,
    IndirectPing,
    MessageType,
    Nack,
    NodeStateCode,
    Ping,
    PushNodeState,
    Suspect,
    WireMessage,
    encode_message,
    vsn_bytes,
)
from .packet import DecodedPacket, UserData, WireCodec, make_compound, make_compounds
from .stream import (
    PushPull,
    StreamDecoder,
    StreamMessage,
    UserStream,
    encode_push_pull,
    encode_user_stream,
    seal_stream,
)

__all__ = [
    "PROTOCOL_MAX",
    "PROTOCOL_MIN",
    "PROTOCOL_VERSION",
    "Ack",
    "Alive",
    "Dead",
    "DecodedPacket",
    "ErrorResponse",
    "IndirectPing",
    "Keyring",
    "MessageType",
    "Nack",
    "NodeStateCode",
    "Ping",
    "PushNodeState",
    "PushPull",
    "StreamDecoder",
    "StreamMessage",
    "Suspect",
    "UserData",
    "UserStream",
    "WireCodec",
    "WireError",
    "WireMessage",
    "encode_message",
    "encode_push_pull",
    "encode_user_stream",
    "make_compound",
    "make_compounds",
    "seal_stream",
    "vsn_bytes",
]
