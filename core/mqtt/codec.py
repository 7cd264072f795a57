"""The incremental MQTT codec: bytes in, packets out; packets in, bytes out.

::

    decoder = Decoder(max_packet_size=1 << 20)
    for packet in decoder.feed(chunk):          # any chunking of the stream
        ...                                     # decoder.protocol_level is learnt from CONNECT
    transport.write(encode(Connack(), decoder.protocol_level))
    data, id_offset = encode_publish(message, 5)  # once per wire form; patch the id per subscriber

:class:`Decoder` takes arbitrary chunks of a byte stream and returns every packet completed
by them; :func:`encode` and :func:`encode_publish` turn packets into bytes. Bad input raises
:class:`~hookmq.mqtt.errors.ProtocolError` carrying the MQTT 5 reason code to answer with.
"""

from __future__ import annotations

from typing import Final

from ._decode import DECODERS, PROTOCOL_NAMES, REQUIRED_FLAGS, decode_connect, decode_publish
from ._encode import encode, encode_publish, encode_publish_fields
from .errors import MalformedPacket, ProtocolError, ProtocolViolation
from .packets import Connect, Packet, PacketType
from .reason_codes import ReasonCode

__all__ = ["MAX_PACKET_SIZE", "Decoder", "encode", "encode_publish", "encode_publish_fields", "patch_packet_id"]

#: The largest packet MQTT can express: 5 header bytes and a 268 435 455-byte remaining length.
MAX_PACKET_SIZE: Final = 268_435_460


class Decoder:
    """Turns a byte stream, fed in arbitrary chunks, into packets.

    ``max_packet_size`` bounds the whole packet (fixed header included); a larger one is
    refused from its fixed header, before its body is buffered (reason code 0x95).
    ``protocol_level`` is ``None`` until a CONNECT is decoded (a server) or is set by the
    caller (a client, or a server resuming a stream). Until it is known only CONNECT is
    accepted. After a :class:`ProtocolError` the decoder refuses any more input; if the bad
    packet was a CONNECT with a known protocol name and level, ``protocol_level`` holds that
    level, so the engine can answer with a CONNACK of the right form.
    """

    __slots__ = ("_connected", "_error", "_needed", "_pending", "_pending_size", "max_packet_size",
                 "protocol_level")

    def __init__(self, max_packet_size: int = MAX_PACKET_SIZE, protocol_level: int | None = None) -> None:
        """Create a decoder; see the class docstring for the arguments."""
        self.max_packet_size = max_packet_size
        self.protocol_level = protocol_level
        # Chunks of an incomplete packet, kept apart until enough has arrived, so a packet
        # streamed in many small pieces is joined once rather than once per piece.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._needed = 0
        self._error: ProtocolError | None = None
        self._connected = False

    @property
    def buffered(self) -> int:
        """How many bytes of an incomplete packet are waiting for the rest."""
        return self._pending_size

    @property
    def incomplete_packet_size(self) -> int:
        """The announced size of the packet being received (0 when none has begun).

        While only part of a fixed header has arrived this is the few header bytes still
        needed; once the remaining length is known it is the whole packet's size, so a
        caller can account for what a slow upload will hold before its body arrives.
        """
        return self._needed if self._pending else 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Add bytes from the stream; return the packets they complete, in order.

        Raises :class:`ProtocolError` for bad input; the packets decoded before the bad one in
        the same call are lost with it, because the connection is closed anyway.
        """
        if self._error is not None:
            raise ProtocolError(self._error.reason_code, f"decoder already failed: {self._error.message}")
        chunk = data if type(data) is bytes else bytes(data)
        if self._pending:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if self._pending_size < self._needed:
                return []
            chunk = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
        try:
            return self._decode_stream(chunk)
        except ProtocolError as error:
            self._error = error
            raise

    def _decode_stream(self, data: bytes) -> list[Packet]:
        packets: list[Packet] = []
        pos = 0
        size = len(data)
        while pos < size:
            if pos + 1 < size and data[pos + 1] < 0x80:
                # The common case: a packet under 128 bytes has a one-byte remaining length.
                body = pos + 2
                end = body + data[pos + 1]
            else:
                body, end = self._long_header(data, pos, size)
                if body < 0:
                    self._keep(data, pos, end)
                    break
            if end - pos > self.max_packet_size:
                raise ProtocolError(ReasonCode.PACKET_TOO_LARGE,
                                    f"packet of {end - pos} bytes exceeds the maximum of {self.max_packet_size}")
            if end > size:
                self._keep(data, pos, end - pos)
                break
            first = data[pos]
            if first >> 4 == 3 and self.protocol_level is not None:
                packets.append(decode_publish(first & 0x0F, data, body, end, self.protocol_level))
            else:
                packets.append(self._decode_packet(first, data, body, end))
            pos = end
        return packets

    @staticmethod
    def _long_header(data: bytes, pos: int, size: int) -> tuple[int, int]:
        """Parse a fixed header with a multi-byte remaining length.

        Returns ``(body start, packet end)``, or ``(-1, bytes needed)`` when the header itself
        is still incomplete.
        """
        length = 0
        shift = 0
        index = pos + 1
        while index < size:
            byte = data[index]
            index += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                return index, index + length
            shift += 7
            if shift > 21:
                raise MalformedPacket("remaining length is longer than four bytes")
        return -1, index - pos + 1

    def _keep(self, data: bytes, pos: int, needed: int) -> None:
        rest = data[pos:]
        self._pending.append(rest)
        self._pending_size = len(rest)
        self._needed = needed

    def _decode_packet(self, first: int, data: bytes, body: int, end: int) -> Packet:
        packet_type = first >> 4
        flags = first & 0x0F
        level = self.protocol_level
        if packet_type == PacketType.CONNECT:
            return self._decode_connect(flags, data, body, end)
        if level is None:
            name = PacketType(packet_type).name if packet_type else "reserved type 0"
            raise ProtocolViolation(f"the first packet must be CONNECT, not {name}")
        if flags != REQUIRED_FLAGS[packet_type] and packet_type != PacketType.PUBLISH:
            raise MalformedPacket(f"{PacketType(packet_type).name if packet_type else 'packet type 0'}: "
                                  f"fixed-header flags 0x{flags:X} are reserved")
        return DECODERS[packet_type](flags, data, body, end, level)

    def _decode_connect(self, flags: int, data: bytes, body: int, end: int) -> Connect:
        if flags:
            raise MalformedPacket(f"CONNECT: fixed-header flags 0x{flags:X} are reserved")
        if self._connected:
            raise ProtocolViolation("a second CONNECT on the same connection")
        try:
            connect = decode_connect(flags, data, body, end, 0)
        except ProtocolError:
            # Let the engine answer a bad CONNECT with a CONNACK the client can read.
            self.protocol_level = _peek_protocol_level(data, body, end)
            raise
        self.protocol_level = connect.protocol_level
        self._connected = True
        return connect


def _peek_protocol_level(data: bytes, body: int, end: int) -> int | None:
    """The level of a CONNECT whose protocol name and level are valid, else None."""
    if body + 2 > end:
        return None
    level_at = body + 2 + ((data[body] << 8) | data[body + 1])
    if level_at >= end:
        return None
    level = data[level_at]
    return level if PROTOCOL_NAMES.get(level, "").encode() == data[body + 2 : level_at] else None


def patch_packet_id(data: bytes, offset: int, packet_id: int) -> bytes:
    """A copy of an encoded PUBLISH with another packet id at ``offset`` (from :func:`encode_publish`)."""
    return b"".join((data[:offset], packet_id.to_bytes(2, "big"), data[offset + 2 :]))
