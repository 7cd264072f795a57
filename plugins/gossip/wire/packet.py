"""UDP packets: compound messages, compression, CRC, encryption and labels, both ways.

Outgoing (net.go ``rawSendMsgPacket`` and the label transport), in this order: LZW compression
when it makes the packet smaller, a CRC32 header when the recipient understands protocol 5, AES-GCM
with the label as additional data, then the label header. Incoming reverses it; compound and
compressed messages nest, so they are unpacked recursively (to a bounded depth) into a flat
list of decoded messages. A bad part of a compound message is reported and skipped, the
others are kept, as memberlist does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import lzw
from .codec import unpack_one
from .crypto import Keyring, decrypt_payload, encrypt_payload, encryption_overhead
from .errors import WireError
from .messages import Compress, MessageType, WireMessage, decode_body, decode_struct, encode_message

__all__ = [
    "COMPOUND_HEADER_OVERHEAD",
    "COMPOUND_PART_OVERHEAD",
    "MAX_COMPOUND_PARTS",
    "MAX_LABEL",
    "DecodedPacket",
    "UserData",
    "WireCodec",
    "compress_message",
    "decode_compound",
    "decompress_message",
    "inflate",
    "make_compound",
    "make_compounds",
]

COMPOUND_HEADER_OVERHEAD = 2
COMPOUND_PART_OVERHEAD = 2
MAX_COMPOUND_PARTS = 255
MAX_LABEL = 255
MAX_DECOMPRESSED_PACKET = 1 << 20
"""No UDP packet (at most 64 KiB) legitimately inflates beyond 1 MiB; more is a bomb."""
_MAX_NESTING = 4


@dataclass(frozen=True, slots=True)
class UserData:
    """A user message (``[8]`` + opaque bytes) found in a packet."""

    payload: bytes


@dataclass(slots=True)
class DecodedPacket:
    """What one datagram carried: its messages in order, and the parts that could not be read."""

    messages: list[WireMessage | UserData] = field(default_factory=list)
    errors: list[WireError] = field(default_factory=list)
    #: How many LZW-compressed messages it held.
    compressed: int = 0


def make_compound(parts: Sequence[bytes]) -> bytes:
    """``[7][count][u16 BE length each][parts]`` (at most 255 parts)."""
    if len(parts) > MAX_COMPOUND_PARTS:
        raise ValueError("a compound message holds at most 255 parts")
    lengths = struct.pack(f">{len(parts)}H", *(len(part) for part in parts))
    return bytes([MessageType.COMPOUND, len(parts)]) + lengths + b"".join(parts)


def make_compounds(parts: Sequence[bytes]) -> list[bytes]:
    """Split ``parts`` into as many compound messages as the 255-part limit needs."""
    return [make_compound(parts[i : i + MAX_COMPOUND_PARTS]) for i in range(0, len(parts), MAX_COMPOUND_PARTS)]


def decode_compound(body: bytes) -> tuple[list[bytes], int]:
    """Split a compound body (after the type byte); returns the parts and how many were cut off."""
    if not body:
        raise WireError("truncated", "compound message without a part count")
    count = body[0]
    if len(body) < 1 + 2 * count:
        raise WireError("truncated", "compound message lengths are cut short")
    lengths = struct.unpack_from(f">{count}H", body, 1)
    offset = 1 + 2 * count
    parts: list[bytes] = []
    for index, length in enumerate(lengths):
        if offset + length > len(body):
            return parts, count - index
        parts.append(body[offset : offset + length])
        offset += length
    return parts, 0


def compress_message(message: bytes) -> bytes:
    """``[9]`` + msgpack ``compress{Algo: 0, Buf: LZW(message)}``."""
    return encode_message(Compress(0, lzw.compress(message)))


def decompress_message(body: bytes, max_output: int) -> bytes:
    """The message inside a compress body (after the type byte)."""
    obj, _ = unpack_one(body)
    return inflate(decode_struct(Compress, obj), max_output)


def inflate(compressed: Compress, max_output: int) -> bytes:
    """The bytes a decoded compress message holds."""
    if compressed.algo != 0:
        raise WireError("lzw", f"unknown compression algorithm {compressed.algo}")
    return lzw.decompress(compressed.buf, max_output)


class WireCodec:
    """One node's wire settings (keyring, label, compression); seals and opens its packets.

    Streams use the same settings through :mod:`.stream`.
    """

    __slots__ = ("_label_bytes", "compression", "encryption_version", "keyring", "label")

    def __init__(
        self, keyring: Keyring | None = None, label: str = "", compression: bool = True, encryption_version: int = 1
    ) -> None:
        label_bytes = label.encode()
        if len(label_bytes) > MAX_LABEL:
            raise ValueError("a gossip label is at most 255 bytes")
        self.keyring = keyring
        self.label = label
        self._label_bytes = label_bytes
        self.compression = compression
        self.encryption_version = encryption_version

    @property
    def label_bytes(self) -> bytes:
        """The label as sent (empty: no label header)."""
        return self._label_bytes

    def overhead(self) -> int:
        """Bytes the label and encryption may add to a packet (taken off the 1400-byte budget)."""
        label = 2 + len(self._label_bytes) if self._label_bytes else 0
        return label + (encryption_overhead(self.encryption_version) if self.keyring else 0)

    def seal(self, message: bytes, crc: bool) -> bytes:
        """Wrap one message (often a compound) for the wire."""
        if self.compression:
            compressed = compress_message(message)
            if len(compressed) < len(message):
                message = compressed
        if crc:
            message = bytes([MessageType.HAS_CRC]) + struct.pack(">I", zlib.crc32(message)) + message
        if self.keyring is not None:
            message = encrypt_payload(self.encryption_version, self.keyring.primary, message, self._label_bytes)
        if self._label_bytes:
            message = bytes([MessageType.HAS_LABEL, len(self._label_bytes)]) + self._label_bytes + message
        return message

    def open(self, data: bytes) -> DecodedPacket:
        """Unwrap a datagram; WireError when the packet as a whole is unacceptable."""
        data = self._strip_label(data)
        if self.keyring is not None:
            data = decrypt_payload(self.keyring.ciphers, data, self._label_bytes)
        if len(data) >= 5 and data[0] == MessageType.HAS_CRC:
            (expected,) = struct.unpack_from(">I", data, 1)
            data = data[5:]
            if zlib.crc32(data) != expected:
                raise WireError("crc", "packet checksum does not match")
        if not data:
            raise WireError("truncated", "empty packet")
        decoded = DecodedPacket()
        _read_command(data, decoded, 0)
        if not decoded.messages and decoded.errors:
            raise decoded.errors[0]
        return decoded

    def _strip_label(self, data: bytes) -> bytes:
        label = b""
        if data and data[0] == MessageType.HAS_LABEL:
            if len(data) < 2 or data[1] < 1 or len(data) < 2 + data[1]:
                raise WireError("truncated", "label header is cut short or empty")
            label, data = data[2 : 2 + data[1]], data[2 + data[1] :]
        if label != self._label_bytes:
            raise WireError("label", f"packet label {label!r} is not ours")
        return data


def _read_command(data: bytes, out: DecodedPacket, depth: int) -> None:
    """One ``[type][body]`` message into ``out``: recurse into compound and compress."""
    if not data:
        out.errors.append(WireError("truncated", "message without a type byte"))
        return
    kind, body = data[0], data[1:]
    try:
        if kind in (MessageType.COMPOUND, MessageType.COMPRESS):
            if depth >= _MAX_NESTING:
                raise WireError("type", "compound and compressed messages nested too deep")
            if kind == MessageType.COMPOUND:
                parts, cut = decode_compound(body)
                if cut:
                    out.errors.append(WireError("truncated", f"compound message had {cut} truncated parts"))
                for part in parts:
                    _read_command(part, out, depth + 1)
            else:
                inner = decompress_message(body, MAX_DECOMPRESSED_PACKET)
                out.compressed += 1
                _read_command(inner, out, depth + 1)
        elif kind == MessageType.USER:
            out.messages.append(UserData(bytes(body)))
        elif kind in (MessageType.PUSH_PULL, MessageType.ERROR, MessageType.COMPRESS, MessageType.ENCRYPT):
            raise WireError("type", f"message type {kind} does not travel in packets")
        else:
            out.messages.append(decode_body(kind, body))
    except WireError as error:
        out.errors.append(error)
