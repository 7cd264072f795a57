"""A minimal asyncio MQTT client speaking exact packets, for protocol-level tests.

Unlike a full client library it hides nothing: a test sends the packets it wants, including
wrong ones, and reads back exactly what the broker answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar

from ..mqtt.codec import Decoder, encode
from ..mqtt.errors import ProtocolError
from ..mqtt.packets import (
    NO_PROPERTIES,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)

P = TypeVar("P")


class RawClient:
    """One TCP connection to a broker, driven packet by packet."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, level: int) -> None:
        self.reader = reader
        self.writer = writer
        self.level = level
        self.decoder = Decoder(protocol_level=level)
        self._pending: list[Packet] = []
        self._next_id = 1

    @classmethod
    async def open(cls, host: str, port: int, level: int = 4) -> RawClient:
        """Open the TCP connection without sending anything."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, level)

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        client_id: str = "raw",
        level: int = 4,
        clean_start: bool = True,
        keep_alive: int = 60,
        username: str | None = None,
        password: bytes | None = None,
        will: Will | None = None,
        properties: Properties = NO_PROPERTIES,
    ) -> tuple[RawClient, Connack]:
        """Open, send CONNECT and return the client with the broker's CONNACK."""
        client = await cls.open(host, port, level)
        name = "MQIsdp" if level == 3 else "MQTT"
        await client.send(Connect(client_id, level, name, clean_start, keep_alive, username, password, will, properties))
        connack = await client.expect(Connack)
        return client, connack

    def packet_id(self) -> int:
        """A fresh packet identifier."""
        packet_id = self._next_id
        self._next_id = self._next_id % 65_535 + 1
        return packet_id

    async def send(self, packet: Packet) -> None:
        """Encode and send one packet."""
        await self.send_bytes(encode(packet, self.level))

    async def send_bytes(self, data: bytes) -> None:
        """Send raw bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> Packet:
        """The next packet from the broker; raises EOFError when the connection closed."""
        while not self._pending:
            data = await asyncio.wait_for(self.reader.read(65_536), timeout)
            if not data:
                raise EOFError("the broker closed the connection")
            self._pending.extend(self.decoder.feed(data))
        return self._pending.pop(0)

    async def expect(self, kind: type[P], timeout: float = 5.0) -> P:
        """The next packet, which must be of type ``kind``."""
        packet = await self.recv(timeout)
        if not isinstance(packet, kind):
            raise AssertionError(f"expected {kind.__name__}, got {packet!r}")
        return packet

    async def nothing_within(self, seconds: float) -> bool:
        """True when no packet arrives within ``seconds`` (the connection may stay open)."""
        try:
            packet = await self.recv(seconds)
        except TimeoutError:
            return True
        self._pending.insert(0, packet)
        return False

    async def closed_within(self, seconds: float = 5.0) -> list[Packet]:
        """Wait for the broker to close the connection; returns what it sent before closing."""
        received: list[Packet] = []
        while True:
            try:
                received.append(await self.recv(seconds))
            except EOFError:
                return received
            except (ConnectionError, ProtocolError):
                return received

    async def subscribe(self, topic_filter: str, qos: int = 0, properties: Properties = NO_PROPERTIES,
                        **options: Any) -> Suback:
        """SUBSCRIBE to one filter and return the SUBACK.

        A broker may start sending the subscription's messages before its SUBACK (MQTT 3.1.1
        and 5.0, 3.8.4); PUBLISH packets that come first stay queued, in order, for `recv`.
        """
        opts = SubscriptionOptions(qos, **options)
        await self.send(Subscribe(self.packet_id(), (Subscription(topic_filter, opts),), properties))
        early: list[Packet] = []
        while True:
            packet = await self.recv()
            if isinstance(packet, Suback):
                self._pending[:0] = early
                return packet
            if not isinstance(packet, Publish):
                raise AssertionError(f"expected Suback, got {packet!r}")
            early.append(packet)

    async def unsubscribe(self, *topic_filters: str) -> Unsuback:
        """UNSUBSCRIBE and return the UNSUBACK."""
        await self.send(Unsubscribe(self.packet_id(), tuple(topic_filters)))
        return await self.expect(Unsuback)

    async def publish(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False,
                      properties: Properties = NO_PROPERTIES) -> Packet | None:
        """PUBLISH and complete the QoS flow; returns the PUBACK or PUBCOMP (None for QoS 0)."""
        packet_id = self.packet_id() if qos else 0
        await self.send(Publish(topic, payload, qos, retain, False, packet_id, properties))
        if qos == 1:
            return await self._expect_ack(Puback)
        if qos == 2:
            pubrec = await self._expect_ack(Pubrec)
            if pubrec.reason_code >= 0x80:
                return pubrec
            await self.send(Pubrel(packet_id))
            return await self._expect_ack(Pubcomp)
        return None

    async def _expect_ack(self, kind: type[P], timeout: float = 5.0) -> P:
        """Wait for an acknowledgement; messages arriving meanwhile stay queued for `recv`."""
        held: list[Packet] = []
        try:
            while True:
                packet = await self.recv(timeout)
                if isinstance(packet, Publish):
                    held.append(packet)
                    continue
                if not isinstance(packet, kind):
                    raise AssertionError(f"expected {kind.__name__}, got {packet!r}")
                return packet
        finally:
            self._pending[:0] = held

    async def receive_message(self, timeout: float = 5.0, ack: bool = True) -> Publish:
        """The next PUBLISH from the broker, acknowledged as its QoS asks (unless ``ack`` is False)."""
        packet = await self.expect(Publish, timeout)
        if ack:
            await self.ack(packet)
        return packet

    async def ack(self, packet: Publish) -> None:
        """Acknowledge a received PUBLISH (QoS 2: PUBREC, then PUBREL is awaited and PUBCOMP sent)."""
        if packet.qos == 1:
            await self.send(Puback(packet.packet_id))
        elif packet.qos == 2:
            await self.send(Pubrec(packet.packet_id))
            pubrel = await self.expect(Pubrel)
            await self.send(Pubcomp(pubrel.packet_id))

    async def disconnect(self, reason_code: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        """Send DISCONNECT and close."""
        try:
            await self.send(Disconnect(reason_code, properties))
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection without DISCONNECT (the broker sees an abnormal end)."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
