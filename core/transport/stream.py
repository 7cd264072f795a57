"""TCP and TLS connections: an `asyncio.Protocol` that is itself the engine's `Connection`.

A bare Protocol avoids the StreamReader/StreamWriter layers: received chunks are handed to
the engine as they arrive, and writes go straight into the transport's own buffer. On a TLS
listener the connection first runs the handshake itself (`hookmq.transport.tls.accept_tls`),
so a failed handshake is logged with the peer's address.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, cast

from ..ratelimit import LogLimiter
from .base import DEFAULT_HIGH_WATER, DEFAULT_READ_HIGH_WATER, GOODBYE_GRACE, OPEN_TIMEOUT, format_peer
from .config import ListenerConfig
from .descriptors import DESCRIPTORS
from .handlers import Handler, open_connection, run_handler
from .sockets import (
    ACCEPT_BATCH,
    AcceptedSocketTuning,
    bind_listening_socket,
    quick_ack,
    quick_ack_socket,
    tune_listening_socket,
    widen_backlog,
)
from .tls import TlsAcceptance, peer_certificate, server_ssl_context


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS client; implements `hookmq.transport.base.Connection`.

    Reading is flow-controlled: once `DEFAULT_READ_HIGH_WATER` bytes wait unread the socket is
    paused, and `read` resumes it. Writes are gathered until the end of the current event-loop
    step and handed to the transport as one buffer (one send() instead of one per packet during
    a fan-out). Writing is flow-controlled by the transport, which calls
    `pause_writing`/`resume_writing` around its high-water mark; `drain` waits on that.
    """

    # Thousands of idle connections each carry one of these.
    __slots__ = (
        "_admitted", "_batch", "_chunks", "_closing", "_drain_waiter", "_eof", "_flush_scheduled", "_linger_timer",
        "_loop", "_on_open", "_pending", "_pending_size", "_quick_ack", "_raw_bytes", "_read_waiter",
        "_reading_paused", "_receiver",
        "_receiving", "_registry", "_tls", "_tls_acceptance", "_transport", "_tuning", "_unread", "_writing_paused",
        "listener", "remote_address", "tls_peer_certificate",
    )

    def __init__(
        self,
        listener: str,
        on_open: Callable[[StreamConnection], None],
        tls: TlsAcceptance | None = None,
        registry: set[StreamConnection] | None = None,
        batch: WriteBatch | None = None,
        tuning: AcceptedSocketTuning | None = None,
    ) -> None:
        self.listener = listener
        #: The listener's socket options for accepted sockets (one per listener: it learns once whether they are inherited).
        self._tuning = tuning or AcceptedSocketTuning()
        #: Where gathered writes wait for the end of the loop's current batch of events (shared by a listener).
        self._batch = batch
        self.remote_address = "unknown"
        self.tls_peer_certificate: dict[str, Any] | None = None
        self._on_open = on_open
        #: Set until the TLS handshake is done (then the TLS transport arrives in connection_made).
        self._tls_acceptance = tls
        #: The listener's open connections, which it aborts at shutdown (lingering ones included).
        self._registry = registry
        self._linger_timer: asyncio.TimerHandle | None = None
        #: While the TLS handshake starts: bytes the TCP transport delivered, for the TLS layer.
        self._raw_bytes: list[bytes] | None = None
        self._transport: asyncio.Transport | None = None
        #: The loop, looked up once: `asyncio.get_running_loop()` costs a getpid() per call on 3.11.
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Received chunks not read yet; the lists exist only while they hold something (idle connections are many).
        self._chunks: list[bytes] | None = None
        self._unread = 0
        self._eof = False
        self._tls = False
        self._closing = False
        self._reading_paused = False
        self._writing_paused = False
        self._pending: list[bytes] | None = None
        self._pending_size = 0
        self._flush_scheduled = False
        #: Whoever takes each received chunk as it arrives (`set_receiver`), instead of `read`.
        self._receiver: Callable[[bytes], None] | None = None
        #: True while the receiver runs: its writes to this connection go out when it returns.
        self._receiving = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._admitted = False
        #: The socket, when a read event that answers nothing should be acknowledged at once.
        self._quick_ack: socket.socket | None = None

    # -- asyncio.Protocol callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Record the peer, tune the socket, and hand the connection to the listener.

        A socket that would take a descriptor another part of the process reserved (the
        dashboard's, descriptors.py) is closed at once. On a TLS listener this is called
        twice: with the TCP transport (which starts the handshake) and, once the handshake
        succeeded, with the TLS transport.
        """
        if not self._admitted:
            if not DESCRIPTORS.admit("mqtt"):
                self._closing = True
                cast(asyncio.Transport, transport).abort()
                return
            self._admitted = True
        if self._tls_acceptance is not None:
            acceptance, self._tls_acceptance = self._tls_acceptance, None
            self.remote_address = format_peer(transport.get_extra_info("peername"))
            self._raw_bytes = acceptance.start(self, transport, self.remote_address)
            return
        self._raw_bytes = None
        if self._registry is not None:
            self._registry.add(self)
        self._loop = asyncio.get_running_loop()
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=DEFAULT_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        self._tuning.apply(sock)
        self._quick_ack = quick_ack_socket(sock)
        self.remote_address = format_peer(transport.get_extra_info("peername"))
        ssl_object = transport.get_extra_info("ssl_object")
        self._tls = ssl_object is not None
        self.tls_peer_certificate = peer_certificate(ssl_object)
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        """Queue a received chunk for `read`; pause the socket if the engine falls behind."""
        if self._raw_bytes is not None:
            self._raw_bytes.append(data)  # TLS bytes that came before the handshake could start
            return
        if self._closing:
            return  # said goodbye: what the peer still sends is read and dropped
        receiver = self._receiver
        if receiver is not None:
            # The engine handles the packets now; what it writes back goes out in one send() with the batch.
            self._receiving = True
            try:
                receiver(data)
            finally:
                self._receiving = False
                if self._pending:
                    if not self._flush_scheduled:
                        self._schedule_flush()
                elif self._quick_ack is not None:
                    # Nothing to answer, so no answer carries the ACK: without this the kernel
                    # delays it (40 ms), and a client with Nagle's algorithm on (paho-mqtt's
                    # default, many device stacks) holds its next packet until it comes: its
                    # PUBACK of a delivery, then its next PUBLISH, one stall per message.
                    quick_ack(self._quick_ack)
            return
        chunks = self._chunks
        if chunks is None:
            self._chunks = [data]
        else:
            chunks.append(data)
        self._unread += len(data)
        if self._unread >= DEFAULT_READ_HIGH_WATER and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        _wake(self._read_waiter)

    def eof_received(self) -> bool:
        """The peer closed its side: `read` returns b"" after the queued chunks.

        On plain TCP the connection stays open so the engine can still flush (it closes once
        `read` gave b""); asyncio's TLS transport always closes on EOF and warns if asked not to.
        """
        if self._raw_bytes is not None:
            return False  # closed before the TLS handshake could start: let the transport close
        self._eof = True
        _wake(self._read_waiter)
        self._tell_receiver_end()
        if self._linger_timer is not None:
            return False  # lingering after our goodbye, and the peer has closed too: done
        return not self._tls

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake every waiter: readers see the end of stream, drainers return."""
        if self._admitted:
            self._admitted = False
            DESCRIPTORS.release("mqtt")
        self._eof = True
        self._closing = True
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._registry is not None:
            self._registry.discard(self)
        _wake(self._read_waiter)
        _wake(self._drain_waiter)
        self._tell_receiver_end()

    def _tell_receiver_end(self) -> None:
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver(b"")

    def pause_writing(self) -> None:
        """The transport's buffer passed its high-water mark."""
        self._writing_paused = True

    def resume_writing(self) -> None:
        """The transport's buffer fell to its low-water mark."""
        self._writing_paused = False
        _wake(self._drain_waiter)

    # -- Connection -------------------------------------------------------------------------

    def set_receiver(self, receiver: Callable[[bytes], None] | None) -> bool:
        """Push every received chunk to ``receiver`` from now on, b"" once at the end; None goes back to `read`.

        False (and nothing changes) while chunks wait to be read or the stream has ended: the
        caller reads those first. While a receiver is set the connection belongs to it (the
        listener's handler may return without closing it, see `is_pushing`), and what it writes
        during a call is sent in one piece once the loop has handled its current read events (`WriteBatch`).
        """
        if receiver is None:
            self._receiver = None
            return True
        if self._chunks or self._eof or self._closing or self._raw_bytes is not None:
            return False
        self._receiver = receiver
        return True

    def is_pushing(self) -> bool:
        """Whether a receiver takes the received chunks (`set_receiver`)."""
        return self._receiver is not None

    async def read(self) -> bytes:
        """Return the bytes received since the last call; b"" at end of stream."""
        while not self._chunks:
            if self._eof:
                return b""
            self._read_waiter = self._event_loop().create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = None
        self._unread = 0
        if self._reading_paused and self._transport is not None and not self._closing:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer, sent at the end of this event-loop step; ignored once closing."""
        if self._closing or self._transport is None or not data:
            return
        pending = self._pending
        if pending is None:
            self._pending = [data]
        else:
            pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= DEFAULT_HIGH_WATER:
            self._flush()
        elif not self._flush_scheduled and not self._receiving:
            self._schedule_flush()

    def buffered_size(self) -> int:
        """Bytes not yet handed to the kernel: the gathered writes plus the transport's buffer."""
        if self._transport is None or self._transport.is_closing():
            return self._pending_size
        return self._pending_size + self._transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Wait while the transport's buffer is above its high-water mark."""
        self._flush()  # the transport only knows it is full once it has the bytes
        while self._writing_paused and not self._closing:
            if self._drain_waiter is None or self._drain_waiter.done():
                self._drain_waiter = self._event_loop().create_future()
            await asyncio.shield(self._drain_waiter)

    def close(self) -> None:
        """Flush the buffer, then close; `read` returns b"" from now on.

        Unless the peer has closed already, the connection lingers: what the peer still sends
        is read and dropped until it closes too, or for `GOODBYE_GRACE` seconds. Closing a
        socket with unread input makes the kernel send a reset, which destroys what it has
        not delivered yet: the last packet (a DISCONNECT with its reason code) would never
        reach a client that was still writing. On TCP the connection is half-closed at once
        (FIN after the last bytes); TLS cannot half-close, so its closing handshake starts
        when the lingering ends.
        """
        if self._closing:
            return
        self._flush()
        self._closing = True
        self._chunks = None
        self._unread = 0
        _wake(self._read_waiter)
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._eof:
            transport.close()
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:
                transport.abort()  # the peer is already gone
                return
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        self._linger_timer = self._event_loop().call_later(GOODBYE_GRACE, self._end_linger)

    def _end_linger(self) -> None:
        """The grace period after a goodbye is over: close (or cut a peer that never read)."""
        self._linger_timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def abort(self) -> None:
        """Close at once, dropping unsent bytes."""
        self._closing = True
        self._pending = None
        self._pending_size = 0
        self._chunks = None
        _wake(self._read_waiter)
        if self._transport is not None:
            self._transport.abort()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _schedule_flush(self) -> None:
        """Send the gathered writes once the loop has handled the read events it is handling now."""
        self._flush_scheduled = True
        batch = self._batch
        if batch is None:
            batch = self._batch = WriteBatch(self._event_loop())
        batch.add(self)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        self._pending = None
        self._pending_size = 0
        if self._transport is not None and not self._closing:
            self._transport.write(data)


class WriteBatch:
    """The connections of one loop with writes gathered, sent together after the current batch of read events.

    Every connection's writes of a loop step go out in one send() each, but only once the loop
    has handled all the read events its last poll returned: one call for all of them, queued
    with `call_soon`, so it runs before the loop polls again (and never waits for a timer: a lone
    acknowledgement leaves as soon as the event that produced it has been handled). Why not at
    the end of each read event: on loopback every send() wakes the peer's process, which the
    kernel then runs on the broker's core, preempting it; sending a batch of answers together
    lets a load process that is already awake take several at once (fewer preemptions, about
    14 % less broker CPU at QoS 1: docs/benchmarks.md, 'Why hookmq's broker was "0.54 cores
    busy"').
    """

    __slots__ = ("_loop", "_scheduled", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[StreamConnection] = []
        self._scheduled = False

    def add(self, connection: StreamConnection) -> None:
        """Flush ``connection`` with the others at the end of this loop step."""
        self._waiting.append(connection)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        for connection in waiting:
            try:
                connection._flush()
            except Exception:  # one broken transport must not keep the others' bytes back
                connection.abort()


class StreamListener:
    """A running tcp/tls server and the handler tasks of its connections."""

    def __init__(self, config: ListenerConfig, handler: Handler, log: LogLimiter) -> None:
        self.config = config
        self._handler = handler
        self._log = log
        self._active: set[asyncio.Task[None]] = set()
        self._connections: set[StreamConnection] = set()
        self._tls: TlsAcceptance | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        """Bind and start serving; return the bound host and port."""
        loop = asyncio.get_running_loop()
        if self.config.is_tls:
            self._tls = TlsAcceptance(server_ssl_context(self.config), self.config.name, self._log, OPEN_TIMEOUT)
        batch = WriteBatch(loop)
        tuning = AcceptedSocketTuning()
        sock = bind_listening_socket(self.config.host, self.config.port, reuse_port=self.config.reuse_port)
        tune_listening_socket(sock)
        bound = sock.getsockname()
        try:
            self._server = await loop.create_server(
                lambda: StreamConnection(self.config.name, self._on_open, self._tls, self._connections, batch, tuning),
                sock=sock,
                backlog=ACCEPT_BATCH,
            )
        except BaseException:
            sock.close()
            raise
        widen_backlog(sock)
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop accepting new clients; open connections stay with their handlers."""
        if self._server is not None:
            self._server.close()

    async def close_connections(self, grace: float) -> None:
        """Give handlers `grace` seconds to finish, then cancel the rest (aborting their connections).

        Connections still lingering after their goodbye (see `StreamConnection.close`) get what
        is left of `grace` to be closed by their peers, then are aborted.
        """
        self.close()  # a listener still accepting would keep adding connections
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._active and grace > 0:
            await asyncio.wait(list(self._active), timeout=grace)
        handshakes = self._tls.cancel() if self._tls is not None else []
        for task in list(self._active):
            task.cancel()  # run_handler aborts the connection on cancellation
        await asyncio.gather(*self._active, *handshakes, return_exceptions=True)
        while self._connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self._connections):
            connection.abort()

    def _on_open(self, connection: StreamConnection) -> None:
        # Called from the accepting event: a handler that takes the connection (it pushes) needs no task.
        body = open_connection(self._handler, connection, self.config.name)
        if body is None:
            return
        task = asyncio.get_running_loop().create_task(run_handler(body, connection, self.config.name))
        self._active.add(task)
        task.add_done_callback(self._active.discard)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
