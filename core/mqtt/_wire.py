"""The MQTT data representations (OASIS MQTT 5.0 §1.5): integers, strings, binary data.

Readers take ``(data, pos, end)`` and return ``(value, new_pos)``; ``end`` is the end of the
current packet, so a length that runs past it is a malformed packet, never an IndexError.
Writers return ``bytes``.
"""

from __future__ import annotations

from struct import Struct

from .errors import MalformedPacket

#: The largest value a variable byte integer can carry (four bytes of seven bits).
MAX_VARINT = 268_435_455

_U16 = Struct(">H")
_U32 = Struct(">I")
pack_u16 = _U16.pack
pack_u32 = _U32.pack
unpack_u16_from = _U16.unpack_from
unpack_u32_from = _U32.unpack_from


def read_u8(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a one-byte integer."""
    if pos >= end:
        raise MalformedPacket(f"{what}: packet ends before its byte")
    return data[pos], pos + 1


def read_u16(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a big-endian two-byte integer."""
    if pos + 2 > end:
        raise MalformedPacket(f"{what}: packet ends inside a two-byte integer")
    return (data[pos] << 8) | data[pos + 1], pos + 2


def read_u32(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a big-endian four-byte integer."""
    if pos + 4 > end:
        raise MalformedPacket(f"{what}: packet ends inside a four-byte integer")
    return unpack_u32_from(data, pos)[0], pos + 4


def read_varint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read a variable byte integer of at most four bytes."""
    value = 0
    shift = 0
    for _ in range(4):
        if pos >= end:
            raise MalformedPacket(f"{what}: packet ends inside a variable byte integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise MalformedPacket(f"{what}: variable byte integer longer than four bytes")


def read_binary(data: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """Read two-byte-length-prefixed binary data."""
    if pos + 2 > end:
        raise MalformedPacket(f"{what}: packet ends inside a length prefix")
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    if stop > end:
        raise MalformedPacket(f"{what}: length prefix runs past the end of the packet")
    return bytes(data[pos + 2 : stop]), stop


def read_string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """Read a UTF-8 encoded string and check it is well-formed MQTT text."""
    if pos + 2 > end:
        raise MalformedPacket(f"{what}: packet ends inside a length prefix")
    stop = pos + 2 + ((data[pos] << 8) | data[pos + 1])
    if stop > end:
        raise MalformedPacket(f"{what}: length prefix runs past the end of the packet")
    return decode_text(data[pos + 2 : stop], what), stop


def decode_text(raw: bytes, what: str) -> str:
    """Decode MQTT UTF-8 text: strict UTF-8 (no surrogates, no overlong forms), no U+0000."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"{what}: invalid UTF-8 at byte {exc.start}") from None
    if "\x00" in text:
        raise MalformedPacket(f"{what}: contains the null character U+0000")
    return text


def encode_varint(value: int) -> bytes:
    """Encode a variable byte integer (0 to :data:`MAX_VARINT`)."""
    if value < 0x80:
        return bytes((value,))
    if value > MAX_VARINT:
        raise ValueError(f"{value} does not fit in a variable byte integer")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_binary(value: bytes) -> bytes:
    """Encode two-byte-length-prefixed binary data."""
    if len(value) > 0xFFFF:
        raise ValueError(f"binary data of {len(value)} bytes exceeds 65535")
    return pack_u16(len(value)) + value


def encode_string(value: str) -> bytes:
    """Encode a UTF-8 string with its two-byte length prefix."""
    return encode_binary(value.encode("utf-8"))
