"""Helpers shared by the transport tests: handlers, polling, and MQTT framing without the codec."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hookmq.testing.certs import TestCertificates
from hookmq.transport import Connection


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
    index = 0
    while index < len(stream):
        start = index
        index += 1
        remaining, shift = 0, 0
        while True:
            if index >= len(stream):
                raise ValueError("stream ends inside a fixed header")
            byte = stream[index]
            index += 1
            remaining |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        index += remaining
        if index > len(stream):
            raise ValueError("stream ends inside a packet")
        lengths.append(index - start)
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
