"""Link framing, sans-I/O: length-prefixed frames, optionally AES-GCM sealed, and their contents.

On the wire every frame is ``[u32 big-endian length][content]``. Once a keyed handshake is
done, the content is AES-256-GCM ciphertext (16-byte tag included) under a per-connection,
per-direction session key; the nonce is the frame's counter in that direction (never sent),
and the length header is the additional authenticated data. A replayed, reordered, dropped,
truncated or altered frame therefore fails authentication: the receiver's counter no longer
matches the sender's.

A frame's plain content starts with its kind (one byte):

- ``1 … 239``: data frames of the layer above (cluster routing owns the numbers):
  ``[kind][flags][seq u64, if reliable][body]``.
- ``240`` ACK ``[u64 upto]``: every reliable frame up to ``upto`` was handled;
  ``241`` NACK ``[u64 seq]``: that frame's handler failed; ``242`` PING / ``243`` PONG
  ``[f64 time]`` (keep-alive and round-trip time).
- ``244`` BATCH ``([u32 length][content])+``: the contents of several data or control frames
  in one frame, so one seal and one header carry many small messages. Sent only to a peer
  whose handshake offered it (feature ``batch``); a batch in a batch, an empty one, or one
  whose parts do not add up is malformed. ``0`` and ``245 … 255`` are never valid.

Handshake messages (``handshake.py``) are frames too, sent before the keys exist.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import LinkError

__all__ = [
    "ACK",
    "BATCH",
    "CONTROL_KINDS",
    "FIRST_USER_KIND",
    "LAST_USER_KIND",
    "NACK",
    "PING",
    "PONG",
    "PREAMBLE",
    "Control",
    "Data",
    "FrameDecoder",
    "FrameEncoder",
    "decode_content",
    "encode_batch",
    "encode_control",
    "encode_data",
    "split_batch",
]

PREAMBLE = b"HQL\x01"
"""What a dialer sends first. ``H`` (0x48) is no first byte of any memberlist stream (types
0-13, label 244), which is how the gossip TCP port tells a link from a memberlist stream."""

FIRST_USER_KIND = 1
LAST_USER_KIND = 239
ACK, NACK, PING, PONG = 240, 241, 242, 243
CONTROL_KINDS = frozenset({ACK, NACK, PING, PONG})
BATCH = 244
_BATCH_KIND = bytes((BATCH,))

RELIABLE = 0x01
TAG_SIZE = 16
HEADER = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_RELIABLE_HEAD = struct.Struct(">BBQ")
MAX_COUNTER = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Data:
    """A data frame: ``seq`` is None for an unreliable one."""

    kind: int
    seq: int | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Control:
    """An ACK/NACK (``value`` a sequence number) or PING/PONG (``time``)."""

    kind: int
    value: int = 0
    time: float = 0.0


def encode_data(kind: int, seq: int | None, body: bytes) -> bytes:
    """The plain content of a data frame."""
    if not FIRST_USER_KIND <= kind <= LAST_USER_KIND:
        raise ValueError(f"a data frame kind is {FIRST_USER_KIND}-{LAST_USER_KIND}, not {kind}")
    if seq is None:
        return bytes((kind, 0)) + body
    return _RELIABLE_HEAD.pack(kind, RELIABLE, seq) + body


def encode_control(kind: int, value: int = 0, time: float = 0.0) -> bytes:
    """The plain content of a control frame."""
    if kind in (ACK, NACK):
        return bytes((kind,)) + _U64.pack(value)
    if kind in (PING, PONG):
        return bytes((kind,)) + _F64.pack(time)
    raise ValueError(f"not a control kind: {kind}")


def encode_batch(contents: list[bytes]) -> bytes:
    """The plain content of a BATCH frame carrying ``contents`` (data or control frame contents), in order."""
    pack = HEADER.pack
    return _BATCH_KIND + b"".join([part for content in contents for part in (pack(len(content)), content)])


def split_batch(content: bytes) -> list[bytes]:
    """The contents a BATCH frame's plain content carries, in order; LinkError if it is not well formed."""
    if not content or content[0] != BATCH:
        raise LinkError("malformed", "not a batch frame")
    parts: list[bytes] = []
    offset, end = 1, len(content)
    unpack = HEADER.unpack_from
    while offset < end:
        if end - offset < HEADER.size:
            raise LinkError("malformed", "batch ends inside a part's length")
        length = unpack(content, offset)[0]
        offset += HEADER.size
        if length == 0 or length > end - offset:
            raise LinkError("malformed", f"batch part of {length} bytes, {end - offset} left")
        if content[offset] == BATCH:
            raise LinkError("malformed", "a batch inside a batch")
        parts.append(content[offset:offset + length])
        offset += length
    if not parts:
        raise LinkError("malformed", "empty batch")
    return parts


def decode_content(content: bytes) -> Data | Control:
    """A frame's plain content as a data or control frame; LinkError for anything else."""
    if not content:
        raise LinkError("malformed", "empty frame")
    kind = content[0]
    if FIRST_USER_KIND <= kind <= LAST_USER_KIND:
        if len(content) < 2:
            raise LinkError("malformed", "data frame without flags")
        flags = content[1]
        if flags == 0:
            return Data(kind, None, content[2:])
        if flags != RELIABLE:
            raise LinkError("malformed", f"unknown data frame flags {flags:#x}")
        if len(content) < _RELIABLE_HEAD.size:
            raise LinkError("malformed", "reliable frame without a sequence number")
        seq = _U64.unpack_from(content, 2)[0]
        if seq == 0:
            raise LinkError("malformed", "sequence number 0")
        return Data(kind, seq, content[_RELIABLE_HEAD.size:])
    if kind in (ACK, NACK):
        if len(content) != 9:
            raise LinkError("malformed", f"control frame {kind} of {len(content)} bytes")
        return Control(kind, value=_U64.unpack_from(content, 1)[0])
    if kind in (PING, PONG):
        if len(content) != 9:
            raise LinkError("malformed", f"control frame {kind} of {len(content)} bytes")
        time = _F64.unpack_from(content, 1)[0]
        if time != time:  # NaN: never produced by us
            raise LinkError("malformed", "ping time is not a number")
        return Control(kind, time=time)
    raise LinkError("malformed", f"unknown frame kind {kind}")


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + _U64.pack(counter)


class FrameEncoder:
    """Frames contents for one direction of one connection: plain, then sealed after :meth:`secure`."""

    __slots__ = ("_cipher", "_counter")

    def __init__(self) -> None:
        self._cipher: AESGCM | None = None
        self._counter = 0

    def secure(self, key: bytes) -> None:
        """Seal every later frame with this session key (counter from 0)."""
        self._cipher = AESGCM(key)
        self._counter = 0

    @property
    def overhead(self) -> int:
        """Bytes a frame adds to its content."""
        return HEADER.size + (TAG_SIZE if self._cipher is not None else 0)

    def encode(self, content: bytes) -> bytes:
        """One frame on the wire."""
        cipher = self._cipher
        if cipher is None:
            return HEADER.pack(len(content)) + content
        header = HEADER.pack(len(content) + TAG_SIZE)
        if self._counter >= MAX_COUNTER:
            raise LinkError("exhausted", "frame counter exhausted")
        sealed = cipher.encrypt(_nonce(self._counter), content, header)
        self._counter += 1
        return header + sealed


class FrameDecoder:
    """Splits received bytes into frame contents (bounded by ``max_frame``), opened after :meth:`secure`.

    :meth:`feed` appends bytes; :meth:`next` returns one content at a time, so a caller can
    switch keys between the handshake's last frame and the first sealed one in one chunk.
    """

    __slots__ = ("_buffer", "_cipher", "_counter", "_offset", "max_frame")

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._offset = 0
        self._cipher: AESGCM | None = None
        self._counter = 0

    def secure(self, key: bytes) -> None:
        """Open every later frame with this session key (counter from 0)."""
        self._cipher = AESGCM(key)
        self._counter = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as frames."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._offset and self._offset >= len(self._buffer) // 2:
            del self._buffer[: self._offset]
            self._offset = 0
        self._buffer += data

    def next(self) -> bytes | None:
        """The next complete frame's plain content, or None until more bytes arrive."""
        available = len(self._buffer) - self._offset
        if available < HEADER.size:
            return None
        length = HEADER.unpack_from(self._buffer, self._offset)[0]
        limit = self.max_frame + (TAG_SIZE if self._cipher is not None else 0)
        if length > limit:
            raise LinkError("oversized", f"frame of {length} bytes, at most {limit}")
        if length == 0:
            raise LinkError("malformed", "empty frame")
        if available < HEADER.size + length:
            return None
        start = self._offset + HEADER.size
        header = bytes(self._buffer[self._offset : start])
        body = bytes(self._buffer[start : start + length])
        self._offset = start + length
        if self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        cipher = self._cipher
        if cipher is None:
            return body
        if length < TAG_SIZE + 1:
            raise LinkError("auth", "sealed frame shorter than its tag")
        try:
            plain = cipher.decrypt(_nonce(self._counter), body, header)
        except InvalidTag:
            raise LinkError("auth", "frame failed authentication (wrong key, replayed, reordered or altered)") from None
        self._counter += 1
        return plain
