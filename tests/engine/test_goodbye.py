"""After the server's DISCONNECT, a client that is still writing still reads the reason code.

The server used to close its socket right after writing the DISCONNECT. A client still
sending then makes the server's kernel answer with a reset, which throws away whatever it
had not delivered yet: the DISCONNECT itself when the client reads slowly. Now the server
half-closes and keeps reading (and dropping) for a grace period, so the goodbye arrives.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from engine_helpers import StartBroker, port_of

from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.packets import Connect, Disconnect, Pingreq, Subscribe, Subscription, SubscriptionOptions
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.testing.certs import TestCertificates
from hookmq.testing.raw import RawClient


async def slow_reader(port: int, context: ssl.SSLContext | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A v5 client subscribed to "t" whose socket takes in little at a time."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=context, server_hostname="localhost" if context else None, limit=16 * 1024
    )
    writer.write(encode(Connect("slow-reader", 5), 5))
    writer.write(encode(Subscribe(1, (Subscription("t", SubscriptionOptions(0)),)), 5))
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize("kind", ["tcp", "tls"])
async def test_a_client_still_writing_reads_the_disconnect(
        start_broker: StartBroker, certs: TestCertificates, kind: str) -> None:
    listeners = [
        {"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"},
        {"name": "tls", "type": "tls", "address": "127.0.0.1:0",
         "certfile": str(certs.server.certfile), "keyfile": str(certs.server.keyfile)},
    ]
    broker = await start_broker(listeners=listeners)
    context = ssl.create_default_context(cafile=certs.cafile) if kind == "tls" else None
    reader, writer = await slow_reader(port_of(broker, kind), context)
    await asyncio.sleep(0.1)
    publisher, _ = await RawClient.connect("127.0.0.1", port_of(broker), "publisher", 5)
    for _ in range(300):  # far more than the reader takes in: the broker's buffers stay full
        await publisher.publish("t", b"x" * 10_000)
    await asyncio.sleep(0.3)

    writer.write(b"\x36\x00")  # PUBLISH with QoS 3: the broker answers DISCONNECT 0x81 and closes
    noise = encode(Pingreq(), 5) * 2000
    for _ in range(100):  # ... while this client goes on writing for a second
        writer.write(noise)
        await asyncio.sleep(0.01)

    decoder = Decoder(protocol_level=5)
    reasons: list[int] = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            reasons += [packet.reason_code for packet in decoder.feed(chunk) if isinstance(packet, Disconnect)]
    except ConnectionResetError:
        pass  # what the old behaviour gave: the reset destroyed the DISCONNECT
    finally:
        writer.transport.abort()
        await publisher.close()
    assert reasons == [ReasonCode.MALFORMED_PACKET]
