"""One link connection on an asyncio transport: bytes to the sans-I/O layers, batched writes out.

Writes are batched: whatever the frames of one loop iteration produce is written with one
``transport.write`` in a callback scheduled once for that iteration (``call_soon``), never one
write per frame. The protocol knows nothing of peers; :class:`~.links.Links` is told of every
event through the small :class:`LinkOwner` interface.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

from .connection import LinkConnection
from .errors import LinkError

__all__ = ["LinkOwner", "LinkProtocol"]

CLOSE_GRACE = 2.0
"""Seconds a closing connection may take to write what it holds before it is aborted."""


class LinkOwner(Protocol):
    """What a :class:`LinkProtocol` reports to (implemented by :class:`~.links.Links`)."""

    def link_data(self, protocol: LinkProtocol, data: bytes) -> None: ...

    def link_lost(self, protocol: LinkProtocol, error: LinkError | None) -> None: ...

    def link_output(self, protocol: LinkProtocol) -> list[bytes]: ...

    def link_tick(self, protocol: LinkProtocol) -> float | None: ...


class LinkProtocol(asyncio.Protocol):
    """Carries one :class:`LinkConnection`; ``peer`` is set once the handshake names the peer."""

    def __init__(self, owner: LinkOwner, connection: LinkConnection, peer: str | None, first: bytes = b"",
                 *, send_buffer: int, handshake_timeout: float) -> None:
        self.owner = owner
        self.connection = connection
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.error: LinkError | None = None
        self.paused_writing = False
        self.paused_reading = False
        self._first = first
        self._send_buffer = send_buffer
        self._handshake_timeout = handshake_timeout
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports are no asyncio.Transport subclass (an isinstance check fails
        # under `hookmq`, which runs on uvloop) but have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self._send_buffer, low=self._send_buffer // 4)
        self._timer = self._loop.call_later(self._handshake_timeout, self._handshake_expired)
        self.schedule_flush()
        if self._first:
            first, self._first = self._first, b""
            self.data_received(first)

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.owner.link_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport, self.transport = self.transport, None
        if transport is not None:
            self.owner.link_lost(self, self.error)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self.schedule_flush()

    # ------------------------------------------------------------------ writing

    def schedule_flush(self) -> None:
        """Write what is pending at the end of this loop iteration (once, however many frames)."""
        if not self._flush_scheduled and self.transport is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            out = self.owner.link_output(self)
        except LinkError as error:
            self.fail(error)
            return
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])

    def buffered(self) -> int:
        """Bytes the transport still holds."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    # ------------------------------------------------------------------ timers, closing

    def established(self) -> None:
        """The handshake is done: keep-alive timing replaces the handshake deadline."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._tick()

    def _handshake_expired(self) -> None:
        self._timer = None
        if self.connection.established is None:
            self.fail(LinkError("handshake-timeout", "the handshake took too long"))

    def _tick(self) -> None:
        self._timer = None
        if self.transport is None:
            return
        try:
            deadline = self.owner.link_tick(self)
        except LinkError as error:
            self.fail(error)
            return
        self.schedule_flush()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._tick)

    def fail(self, error: LinkError) -> None:
        """Close because of ``error`` (its reply, if any, is sent first; a silent peer is dropped at once)."""
        transport = self.transport
        if transport is None:
            return
        self.error = error
        if error.reason == "timeout":  # nothing comes through: what we still hold would never be written
            transport.abort()
            return
        if error.reply and not transport.is_closing():
            transport.write(error.reply)
        self._close()

    def close(self) -> None:
        """Close without an error (the peer left, the node stops, a newer connection replaced this one)."""
        if self.transport is not None:
            self._close()

    def _close(self) -> None:
        # A transport closes only once its buffer is written; a peer that reads nothing (or a
        # partition) would hold the connection, and the link's down event, for as long as TCP
        # retries. After a grace period it is aborted.
        assert self.transport is not None
        self.transport.close()
        self._loop.call_later(CLOSE_GRACE, self.abort)

    def abort(self) -> None:
        """Drop the connection at once (discarding anything not yet written)."""
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        """Stop reading (the handlers are behind): TCP pushes back on the peer."""
        if not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read again."""
        if self.paused_reading and self.transport is not None:
            self.paused_reading = False
            self.transport.resume_reading()
