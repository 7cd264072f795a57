"""Helpers shared by the transport tests: handlers, polling, and MQTT framing without the codec."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hookmq.testing.certs import TestCertificates
from hookmq.transport import Connection, RunningListener

Handler = Callable[[Connection], Awaitable[None]]
Start = Callable[..., Awaitable[RunningListener]]
"""The `start` fixture: `await start(handler, type="tcp", **listener_options)`."""


def tls_options(certs: TestCertificates, **extra: object) -> dict[str, object]:
    """The TLS keys of a listener configuration that uses the test server certificate."""
    return {"certfile": certs.server.certfile, "keyfile": certs.server.keyfile, **extra}


async def echo(connection: Connection) -> None:
    """Write back everything received, honouring backpressure."""
    while data := await connection.read():
        connection.write(data)
        await connection.drain()


async def count_lines(connection: Connection) -> None:
    """Read to the end of the stream, then answer with the number of newline-terminated lines."""
    lines = 0
    while data := await connection.read():
        lines += data.count(b"\n")
    connection.write(f"{lines}\n".encode())


class Captured:
    """A handler that hands each connection to the test and keeps it open until released."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[Connection] = asyncio.Queue()
        self.released = asyncio.Event()

    async def __call__(self, connection: Connection) -> None:
        await self.connections.put(connection)
        await self.released.wait()

    async def next(self) -> Connection:
        """The next accepted connection."""
        return await asyncio.wait_for(self.connections.get(), 10)


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def mqtt_packet_lengths(stream: bytes) -> list[int]:
    """Split a byte stream into whole MQTT packets by their fixed headers; return their lengths.

    Raises ValueError when the stream ends inside a packet.
    """
    lengths: list[int] = []
    while stream:
        length = mqtt_packet_lengths_prefix(stream)
        lengths.append(length)
        stream = stream[length:]
    return lengths


def publish_packet(topic: str, payload: bytes) -> bytes:
    """An MQTT 3.1.1 QoS 0 PUBLISH packet (enough to exercise framing without the codec)."""
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name + payload
    header = bytearray([0x30])
    remaining = len(body)
    while True:
        byte = remaining & 0x7F
        remaining >>= 7
        header.append(byte | 0x80 if remaining else byte)
        if not remaining:
            break
    return bytes(header) + body


class MiniBroker:
    """Just enough MQTT to satisfy a real client: CONNACK, PINGRESP, and a record of PUBLISH packets.

    It stands in for the engine so that real clients (mosquitto_pub, paho) can be pointed at
    a listener; it speaks 3.1.1 and 5.0 CONNACKs and handles only QoS 0.
    """

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.peer_certificates: list[dict[str, object] | None] = []
        self.disconnected = asyncio.Event()

    async def __call__(self, connection: Connection) -> None:
        self.peer_certificates.append(connection.tls_peer_certificate)
        buffer = b""
        level = 4
        while data := await connection.read():
            buffer += data
            packets, buffer = _split_packets(buffer)
            for packet in packets:
                kind = packet[0] >> 4
                body = packet[_header_length(packet):]
                if kind == 1:  # CONNECT: protocol level follows the protocol name
                    level = body[2 + int.from_bytes(body[:2], "big")]
                    connection.write(b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
                elif kind == 3:
                    topic_length = int.from_bytes(body[:2], "big")
                    topic = body[2:2 + topic_length].decode()
                    rest = body[2 + topic_length:]
                    if level == 5:  # skip the property length (one byte when small)
                        rest = rest[1 + rest[0]:]
                    self.published.append((topic, rest))
                elif kind == 12:
                    connection.write(b"\xd0\x00")
                elif kind == 14:
                    self.disconnected.set()
                    return


def _header_length(packet: bytes) -> int:
    index = 1
    while packet[index] & 0x80:
        index += 1
    return index + 1


def _split_packets(buffer: bytes) -> tuple[list[bytes], bytes]:
    packets: list[bytes] = []
    while buffer:
        try:
            length = mqtt_packet_lengths_prefix(buffer)
        except ValueError:
            break
        packets.append(buffer[:length])
        buffer = buffer[length:]
    return packets, buffer


def mqtt_packet_lengths_prefix(stream: bytes) -> int:
    """The length of the first whole MQTT packet in `stream`; ValueError if it is incomplete."""
    index = 1
    remaining, shift = 0, 0
    while True:
        if index >= len(stream):
            raise ValueError("incomplete fixed header")
        byte = stream[index]
        index += 1
        remaining |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if index + remaining > len(stream):
        raise ValueError("incomplete packet")
    return index + remaining
