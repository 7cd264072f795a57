"""The raw test client against a scripted server over a real loopback socket."""

from __future__ import annotations

import asyncio

from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.packets import Connack, Connect, Publish, Suback, Subscribe
from hookmq.testing.raw import RawClient


async def test_publishes_before_the_suback_wait_for_recv_in_order() -> None:
    # MQTT 3.8.4 lets a broker send a subscription's messages before its SUBACK.
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Decoder()
        while True:
            data = await reader.read(65_536)
            if not data:
                return
            for packet in decoder.feed(data):
                if isinstance(packet, Connect):
                    writer.write(encode(Connack(0, False), 4))
                elif isinstance(packet, Subscribe):
                    writer.write(encode(Publish("t", b"first", 0), 4) + encode(Publish("t", b"second", 0), 4)
                                 + encode(Suback(packet.packet_id, (0,)), 4) + encode(Publish("t", b"third", 0), 4))
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client, _ = await RawClient.connect("127.0.0.1", port, "early", level=4)
        suback = await client.subscribe("t", 0)
        assert suback.reason_codes == (0,)
        assert [(await client.recv()).payload for _ in range(3)] == [b"first", b"second", b"third"]  # type: ignore[attr-defined]
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
