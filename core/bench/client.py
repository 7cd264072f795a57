"""One benchmark client: an asyncio protocol over a raw socket, built for speed, not generality.

It sends pre-built frames, walks received bytes by fixed header only, answers the QoS 1/2
handshakes in both directions and counts what it receives. It is not a general MQTT client:
it ignores everything a benchmark does not need (retained flags, properties, redelivery).

Two ways of writing:

- *batched* (the throughput workloads): QoS 0 frames go out 64 per write, and every answer a
  received chunk calls for (PUBACKs, PUBRELs, the next PUBLISH) leaves in one write;
- *per packet* (the device workloads): every packet is its own ``transport.write``, which on
  an idle socket is its own ``send()``, and a QoS 0 publisher yields to the loop after each
  one, as a device's firmware or a client library does.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import cast

from . import wire

_TIMESTAMP = struct.Struct(">q")
_QOS0_CHUNK = 64  # frames per write: large enough to amortise the call, small enough to share the loop


class BrokerRefused(Exception):
    """The broker refused a CONNECT or a subscription, or closed the connection early."""


class BenchClient(asyncio.Protocol):
    """The protocol object of one benchmark connection; build it with :meth:`open`."""

    def __init__(
        self, client_id: str, level: int, on_done: Callable[[BenchClient], None], per_packet: bool = False
    ) -> None:
        """Prepare a client; ``on_done`` fires once it has received all it expects and published all."""
        self.client_id = client_id
        self.level = level
        self.per_packet = per_packet
        self.transport: asyncio.Transport | None = None
        self.error: str | None = None
        self.receive_maximum: int | None = None
        self.received = 0
        self.expected = 0
        self.last_receive = 0.0
        self.latencies_ns: list[int] | None = None
        self.published = 0
        self.acked = 0
        self.publish_total = 0
        self.publish_started = 0.0
        self.publish_finished = 0.0
        self._on_done = on_done
        self._done_reported = False
        self._armed = False
        self._closed = False
        self._buffer = b""
        self._template: wire.PublishTemplate | None = None
        self._window = 0
        self._inflight = 0
        self._next_id = 0
        self._connack: asyncio.Future[tuple[int, int | None]] | None = None
        self._subacks: dict[int, asyncio.Future[bytes]] = {}
        self._writable: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls,
        client_id: str,
        host: str,
        port: int,
        level: int,
        on_done: Callable[[BenchClient], None],
        source_ip: str | None = None,
        per_packet: bool = False,
    ) -> BenchClient:
        """Connect, send CONNECT and wait for a successful CONNACK."""
        loop = asyncio.get_running_loop()
        local_addr = (source_ip, 0) if source_ip else None
        _, client = await loop.create_connection(
            lambda: cls(client_id, level, on_done, per_packet), host, port, local_addr=local_addr
        )
        code, receive_maximum = await client._handshake(wire.connect_packet(client_id, level))
        if code:
            client.close()
            raise BrokerRefused(f"{client_id}: CONNACK reason code 0x{code:02x}")
        client.receive_maximum = receive_maximum
        return client

    async def _handshake(self, connect: bytes) -> tuple[int, int | None]:
        self._connack = asyncio.get_running_loop().create_future()
        self._write(connect)
        return await self._connack

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; the lost-future lets callers wait for the close."""
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        self._lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail every pending wait: nothing more will arrive."""
        self._closed = True
        if not self._done_reported and self.error is None:
            self.error = f"connection lost: {exc or 'closed by broker'}"
        failure = BrokerRefused(f"{self.client_id}: connection lost")
        for waiter in (self._connack, self._writable, *self._subacks.values()):
            if waiter is not None and not waiter.done():
                waiter.set_exception(failure)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        self._check_done()

    def pause_writing(self) -> None:
        """The socket buffer is full: publishers wait in :meth:`_drained`."""
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """Release waiting publishers."""
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        """Walk complete packets by fixed header; answer and count them."""
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        pos, end, received = 0, len(buffer), 0
        while end - pos >= 2:
            length = buffer[pos + 1]
            start = pos + 2
            if length & 0x80:
                decoded = wire.decode_varint(buffer, pos + 1)
                if decoded is None:
                    break
                length, start = decoded
            stop = start + length
            if stop > end:
                break
            first = buffer[pos]
            if first & 0xF0 == wire.PUBLISH:
                received += 1
                self._on_publish(buffer, first, start, out)
            else:
                self._on_control(first, buffer[start:stop], out)
            pos = stop
        self._buffer = buffer[pos:] if pos < end else b""
        if out:
            if self.per_packet:
                for packet in out:
                    self._write(packet)
            else:
                self._write(b"".join(out))
        if received:
            self._count_received(received)

    # -- receiving ---------------------------------------------------------------------------

    def _on_publish(self, buffer: bytes, first: int, start: int, out: list[bytes]) -> None:
        qos = (first >> 1) & 3
        if qos:
            at = start + 2 + (buffer[start] << 8 | buffer[start + 1])
            packet_id = buffer[at : at + 2]
            ack = wire.PUBACK if qos == 1 else wire.PUBREC
            out.append(bytes((ack, 2)) + packet_id)
        if self.latencies_ns is not None:
            offset = wire.publish_payload_offset(buffer, start, qos, self.level)
            sent = _TIMESTAMP.unpack_from(buffer, offset)[0]
            self.latencies_ns.append(time.monotonic_ns() - sent)

    def _on_control(self, first: int, body: bytes, out: list[bytes]) -> None:
        kind = first & 0xF0
        if kind in (wire.PUBACK, wire.PUBCOMP):
            self._on_publish_complete(out)
        elif kind == wire.PUBREC:
            out.append(bytes((wire.PUBREL, 2)) + body[:2])
        elif kind == 0x60:  # PUBREL for a QoS 2 message delivered to us
            out.append(bytes((wire.PUBCOMP, 2)) + body[:2])
        elif kind == 0x20 and self._connack is not None and not self._connack.done():
            self._connack.set_result(wire.parse_connack(body, self.level))
        elif kind == 0x90:
            packet_id, codes = wire.parse_suback(body, self.level)
            waiter = self._subacks.pop(packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(codes)
        elif kind == 0xE0:
            self.error = f"DISCONNECT from broker: {body.hex() or 'no reason code'}"

    def _count_received(self, count: int) -> None:
        self.received += count
        self.last_receive = time.monotonic()
        self._check_done()

    def _check_done(self) -> None:
        if self._done_reported or not self._armed:
            return
        # A closed connection will receive nothing more: report it now rather than at the timeout.
        if self._closed or (self.received >= self.expected and self.acked >= self.publish_total):
            self._done_reported = True
            self._on_done(self)

    # -- subscribing -------------------------------------------------------------------------

    async def subscribe(self, filters: list[str], qos: int, batch: int) -> None:
        """Subscribe ``filters`` in SUBSCRIBE packets of ``batch`` filters, one at a time."""
        for first in range(0, len(filters), batch):
            chunk = filters[first : first + batch]
            packet_id = self._allocate_id()
            waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._subacks[packet_id] = waiter
            self._write(wire.subscribe_packet(packet_id, chunk, qos, self.level))
            codes = await waiter
            refused = [code for code in codes if code >= 0x80]
            if refused or len(codes) != len(chunk):
                raise BrokerRefused(f"{self.client_id}: SUBACK {codes[:8].hex()} for {len(chunk)} filters")

    # -- publishing --------------------------------------------------------------------------

    def expect(self, count: int, publish_total: int) -> None:
        """Declare how many PUBLISH packets to receive and to send before the client is done."""
        self.expected = count
        self.publish_total = publish_total
        self._armed = True
        self._check_done()

    async def publish(self, template: wire.PublishTemplate, count: int, window: int) -> None:
        """Send ``count`` messages as fast as the broker takes them (QoS 1/2: ``window`` in flight)."""
        self.publish_started = time.monotonic()
        if template.qos == 0:
            await self._publish_qos0(template, count)
            return
        self._template = template
        self._window = max(1, min(window, self.receive_maximum or window))
        out: list[bytes] = []
        while self.published < count and self._inflight < self._window:
            out.append(self._next_frame())
        if self.per_packet:
            for frame in out:
                self._write(frame)
        else:
            self._write(b"".join(out))

    async def _publish_qos0(self, template: wire.PublishTemplate, count: int) -> None:
        if self.per_packet:
            await self._publish_qos0_per_packet(template, count)
            return
        chunk = template.frame() * _QOS0_CHUNK
        while self.published < count and not self._closed:
            size = min(_QOS0_CHUNK, count - self.published)
            self._write(chunk if size == _QOS0_CHUNK else template.frame() * size)
            self.published += size
            await self._drained()
        self.acked = self.published
        self.publish_finished = time.monotonic()
        self._check_done()

    async def _publish_qos0_per_packet(self, template: wire.PublishTemplate, count: int) -> None:
        # One write per frame, and a turn of the loop after each, so other clients (and this
        # one's reading) interleave with it as separate devices would.
        frame = template.frame()
        while self.published < count and not self._closed:
            self._write(frame)
            self.published += 1
            await self._drained()
        self.acked = self.published
        self.publish_finished = time.monotonic()
        self._check_done()

    def _next_frame(self) -> bytes:
        assert self._template is not None
        self.published += 1
        self._inflight += 1
        return self._template.frame(self._allocate_id())

    def _on_publish_complete(self, out: list[bytes]) -> None:
        self._inflight -= 1
        self.acked += 1
        if self._template is not None and self.published < self.publish_total:
            out.append(self._next_frame())
        if self.acked == self.publish_total:
            self.publish_finished = time.monotonic()
            self._check_done()

    async def publish_at_rate(self, template: wire.PublishTemplate, count: int, rate: float) -> None:
        """Send ``count`` messages at ``rate`` per second, each stamped with its scheduled time.

        The stamp is the time the message was due, not when it left: a stalled broker then
        shows up as latency instead of silently lowering the offered rate.
        """
        interval_ns = int(1e9 / rate)
        padding = template.payload[_TIMESTAMP.size :]
        self._template = None
        self.publish_started = time.monotonic()
        start_ns = time.monotonic_ns()
        for index in range(count):
            due_ns = start_ns + index * interval_ns
            delay = (due_ns - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            self._write(template.frame(self._allocate_id(), _TIMESTAMP.pack(due_ns) + padding))
            self.published += 1
        if template.qos == 0:
            self.acked = self.published
            self.publish_finished = time.monotonic()
            self._check_done()

    # -- plumbing ----------------------------------------------------------------------------

    def _allocate_id(self) -> int:
        # Sequential ids never collide: an id comes round again only after 65 535 sends, and
        # at most the window is in flight.
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def _drained(self) -> None:
        if self._writable is not None and not self._writable.done():
            await self._writable
        else:
            await asyncio.sleep(0)

    async def disconnect(self, timeout: float = 2.0) -> None:
        """Send DISCONNECT, close, and wait (bounded) for the socket to go."""
        self._done_reported = True
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(wire.DISCONNECT)
        self.transport.close()
        if self._lost is not None:
            await asyncio.wait([self._lost], timeout=timeout)

    def close(self) -> None:
        """Drop the connection without DISCONNECT."""
        if self.transport is not None:
            self.transport.abort()
