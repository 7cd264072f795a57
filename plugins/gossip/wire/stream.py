"""TCP streams: push/pull with user state, reliable user messages, the fallback ping, sans-I/O.

A stream carries one message with no length prefix: ``[label?][type][msgpack …]``. Push/pull
is a header, that many node states, then the user-state bytes; a user message is a header
then the bytes; ping, ack and err are one msgpack map each. With compression on, memberlist
always wraps the whole message in ``[9]`` (even when that is larger); with a key, the result
is ``[10][u32 length][AES-GCM]`` whose additional data is those five bytes plus the label.
Only the side that dials writes the label header; the answer on the same connection has none.

:class:`StreamDecoder` is fed bytes as they arrive and says when one complete message has
been read, without quadratic re-parsing; it refuses more than ``max_size`` bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import msgpack  # type: ignore[import-untyped]

from .crypto import decrypt_payload, encrypt_payload, encrypted_length
from .errors import WireError
from .messages import (
    Ack,
    Compress,
    ErrorResponse,
    MessageType,
    Ping,
    PushNodeState,
    PushPullHeader,
    UserMsgHeader,
    decode_struct,
    encode_struct,
)
from .packet import WireCodec, compress_message, decompress_message, inflate

__all__ = [
    "MAX_STREAM_BYTES",
    "PushPull",
    "StreamDecoder",
    "StreamMessage",
    "UserStream",
    "encode_push_pull",
    "encode_user_stream",
    "seal_stream",
]

MAX_STREAM_BYTES = 20 * 1024 * 1024
"""memberlist's ``maxPushStateBytes`` (and its user-message limit): 20 MiB."""


@dataclass(frozen=True, slots=True)
class PushPull:
    """A push/pull state exchange: the sender's node states and its delegate's user state."""

    join: bool
    nodes: tuple[PushNodeState, ...]
    user_state: bytes


@dataclass(frozen=True, slots=True)
class UserStream:
    """A reliable user message (``SendReliable``)."""

    payload: bytes


StreamMessage = PushPull | UserStream | Ping | Ack | ErrorResponse
"""Everything a stream may carry."""


def encode_push_pull(nodes: Sequence[PushNodeState], user_state: bytes, join: bool) -> bytes:
    """``[6]`` header, node states, user state: the plain (unsealed) push/pull message."""
    header = PushPullHeader(len(nodes), len(user_state), join)
    return b"".join([bytes([MessageType.PUSH_PULL]), encode_struct(header), *map(encode_struct, nodes), user_state])


def encode_user_stream(payload: bytes) -> bytes:
    """``[8]`` header then the payload: the plain reliable user message."""
    return bytes([MessageType.USER]) + encode_struct(UserMsgHeader(len(payload))) + payload


def seal_stream(codec: WireCodec, plain: bytes, labelled: bool) -> bytes:
    """Compress (always, when on), encrypt, and label (only when we dialled) a stream message."""
    if codec.compression:
        plain = compress_message(plain)
    if codec.keyring is not None:
        header = bytes([MessageType.ENCRYPT]) + struct.pack(">I", encrypted_length(codec.encryption_version, len(plain)))
        plain = header + encrypt_payload(codec.encryption_version, codec.keyring.primary, plain, header + codec.label_bytes)
    if labelled and codec.label_bytes:
        plain = bytes([MessageType.HAS_LABEL, len(codec.label_bytes)]) + codec.label_bytes + plain
    return plain


class _PlainParser:
    """Reads one unsealed message incrementally with a streaming msgpack unpacker."""

    __slots__ = ("_header", "_kind", "_nodes", "_payload", "_unpacker", "result")

    def __init__(self, kind: int, max_size: int) -> None:
        if kind not in (MessageType.PUSH_PULL, MessageType.USER, MessageType.PING, MessageType.ACK, MessageType.ERROR):
            raise WireError("type", f"message type {kind} does not travel on streams")
        self._kind = kind
        self._unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=max_size)
        self._header: PushPullHeader | UserMsgHeader | None = None
        self._nodes: list[PushNodeState] = []
        self._payload = bytearray()
        self.result: StreamMessage | None = None

    def feed(self, data: bytes) -> StreamMessage | None:
        try:
            self._unpacker.feed(data)
            return self._advance()
        except msgpack.OutOfData:
            return None
        except msgpack.BufferFull:
            raise WireError("oversized", "stream message exceeds the size limit") from None
        except (ValueError, TypeError, OverflowError, msgpack.ExtraData, msgpack.StackError) as error:
            if isinstance(error, WireError):
                raise
            raise WireError("msgpack", f"invalid msgpack on stream: {error}") from None

    def _advance(self) -> StreamMessage | None:
        if self.result is not None:
            return self.result
        kind = self._kind
        if kind == MessageType.PING:
            self.result = decode_struct(Ping, self._unpacker.unpack())
        elif kind == MessageType.ACK:
            self.result = decode_struct(Ack, self._unpacker.unpack())
        elif kind == MessageType.ERROR:
            self.result = decode_struct(ErrorResponse, self._unpacker.unpack())
        elif kind == MessageType.USER:
            self.result = self._user_message()
        else:
            self.result = self._push_pull()
        return self.result

    def _read_payload(self, length: int) -> bool:
        """Move up to ``length`` payload bytes out of the unpacker; True once all have come."""
        missing = length - len(self._payload)
        if missing > 0:
            self._payload += self._unpacker.read_bytes(missing)
        return len(self._payload) >= length

    def _user_message(self) -> StreamMessage | None:
        if self._header is None:
            self._header = decode_struct(UserMsgHeader, self._unpacker.unpack())
        assert isinstance(self._header, UserMsgHeader)
        if self._header.user_msg_len > MAX_STREAM_BYTES:
            raise WireError("oversized", "user message exceeds 20 MiB")
        if not self._read_payload(self._header.user_msg_len):
            return None
        return UserStream(bytes(self._payload))

    def _push_pull(self) -> StreamMessage | None:
        if self._header is None:
            self._header = decode_struct(PushPullHeader, self._unpacker.unpack())
        assert isinstance(self._header, PushPullHeader)
        if self._header.user_state_len > MAX_STREAM_BYTES:
            raise WireError("oversized", "push/pull user state exceeds 20 MiB")
        while len(self._nodes) < self._header.nodes:
            self._nodes.append(decode_struct(PushNodeState, self._unpacker.unpack()))
        if not self._read_payload(self._header.user_state_len):
            return None
        return PushPull(self._header.join, tuple(self._nodes), bytes(self._payload))


class StreamDecoder:
    """Reads one stream message as bytes arrive: label, decryption, decompression, body.

    ``labelled``: True on a stream we accepted (the dialler may send a label header), False
    when reading the answer on a stream we dialled. ``feed`` returns the message once it is
    complete (and keeps returning it); ``end`` raises if the peer stopped before that.
    """

    __slots__ = ("_buffer", "_codec", "_compressed", "_label_done", "_max_size", "_plain", "_received", "compressed", "result")

    def __init__(self, codec: WireCodec, labelled: bool, max_size: int = MAX_STREAM_BYTES) -> None:
        self._codec = codec
        self._max_size = max_size
        self._label_done = not labelled
        self._buffer = bytearray()
        self._received = 0
        self._plain: _PlainParser | None = None
        self._compressed: msgpack.Unpacker | None = None
        self.result: StreamMessage | None = None
        #: True once the message turned out to be LZW-compressed.
        self.compressed = False

    def feed(self, data: bytes) -> StreamMessage | None:
        """Take more bytes; the complete message, or None while more are needed."""
        if self.result is not None:
            return self.result
        self._received += len(data)
        if self._received > self._max_size + 64:
            raise WireError("oversized", f"stream exceeds {self._max_size} bytes")
        if self._plain is not None:
            self.result = self._plain.feed(data)
            return self.result
        if self._compressed is not None:
            return self._feed_compressed(data)
        self._buffer += data
        return self._start()

    def end(self) -> None:
        """The peer closed its side; WireError unless a whole message was read."""
        if self.result is None:
            raise WireError("truncated", "stream ended before a complete message")

    def _start(self) -> StreamMessage | None:
        if not self._label_done and not self._take_label():
            return None
        if not self._buffer:
            return None
        kind = self._buffer[0]
        if self._codec.keyring is not None:
            if kind != MessageType.ENCRYPT:
                raise WireError("decrypt", "stream is not encrypted but a key is configured")
            return self._decrypt()
        if kind == MessageType.ENCRYPT:
            raise WireError("decrypt", "stream is encrypted but no key is configured")
        rest = bytes(self._buffer[1:])
        self._buffer.clear()
        if kind == MessageType.COMPRESS:
            self._compressed = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=self._max_size)
            return self._feed_compressed(rest)
        self._plain = _PlainParser(kind, self._max_size)
        self.result = self._plain.feed(rest)
        return self.result

    def _take_label(self) -> bool:
        buffer = self._buffer
        if not buffer:
            return False
        label = b""
        if buffer[0] == MessageType.HAS_LABEL:
            if len(buffer) < 2:
                return False
            size = buffer[1]
            if size < 1:
                raise WireError("truncated", "empty stream label header")
            if len(buffer) < 2 + size:
                return False
            label = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
        if label != self._codec.label_bytes:
            raise WireError("label", f"stream label {label!r} is not ours")
        self._label_done = True
        return True

    def _decrypt(self) -> StreamMessage | None:
        buffer = self._buffer
        if len(buffer) < 5:
            return None
        (length,) = struct.unpack_from(">I", buffer, 1)
        if length > self._max_size:
            raise WireError("oversized", f"encrypted stream of {length} bytes exceeds the limit")
        if len(buffer) < 5 + length:
            return None
        assert self._codec.keyring is not None
        header = bytes(buffer[:5])
        plain = decrypt_payload(self._codec.keyring.ciphers, bytes(buffer[5 : 5 + length]), header + self._codec.label_bytes)
        buffer.clear()
        self.result = self._complete(plain, allow_compressed=True)
        return self.result

    def _feed_compressed(self, data: bytes) -> StreamMessage | None:
        assert self._compressed is not None
        try:
            self._compressed.feed(data)
            obj = self._compressed.unpack()
        except msgpack.OutOfData:
            return None
        except msgpack.BufferFull:
            raise WireError("oversized", "compressed stream exceeds the size limit") from None
        except (ValueError, TypeError, OverflowError, msgpack.ExtraData, msgpack.StackError) as error:
            raise WireError("msgpack", f"invalid compressed stream: {error}") from None
        inner = inflate(decode_struct(Compress, obj), self._max_size)
        self.compressed = True
        self.result = self._complete(inner, allow_compressed=False)
        return self.result

    def _complete(self, message: bytes, allow_compressed: bool) -> StreamMessage:
        """Parse a message whose bytes are all here (decrypted or decompressed)."""
        if not message:
            raise WireError("truncated", "empty stream message")
        if message[0] == MessageType.COMPRESS and allow_compressed:
            inner = decompress_message(message[1:], self._max_size)
            self.compressed = True
            return self._complete(inner, allow_compressed=False)
        parser = _PlainParser(message[0], self._max_size + 64)
        result = parser.feed(message[1:])
        if result is None:
            raise WireError("truncated", "stream message is cut short")
        return result
