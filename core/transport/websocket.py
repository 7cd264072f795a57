"""MQTT over WebSocket (ws and wss listeners), on the `websockets` asyncio server.

The WebSocket framing is transparent to MQTT: binary messages carry a byte stream, a packet
may span messages and a message may hold several packets. `write` only appends to a buffer;
one writer task per connection sends everything buffered as one message, so the engine's
fan-out stays synchronous and many small packets become few frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ..eventlog import log_event
from ..ratelimit import LogLimiter
from .base import DEFAULT_HIGH_WATER, OPEN_TIMEOUT, format_peer
from .config import ListenerConfig
from .descriptors import DESCRIPTORS
from .handlers import Handler, open_connection, run_handler
from .sockets import ACCEPT_BATCH, bind_listening_socket, set_keepalive, set_nodelay, widen_backlog
from .tls import TlsAcceptance, peer_certificate, server_ssl_context

MQTT_SUBPROTOCOLS = (Subprotocol("mqtt"), Subprotocol("mqttv3.1"))
"""`mqtt` is the name MQTT 3.1.1 and 5.0 register; `mqttv3.1` is what MQTT 3.1 clients send."""


class WebSocketConnection:
    """One WebSocket client; implements `hookmq.transport.base.Connection`."""

    def __init__(self, websocket: ServerConnection, listener: str) -> None:
        self.listener = listener
        self.remote_address = format_peer(websocket.remote_address)
        self.tls_peer_certificate: dict[str, Any] | None = peer_certificate(
            websocket.transport.get_extra_info("ssl_object")
        )
        self._websocket = websocket
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._closing = False
        self._has_data = asyncio.Event()
        self._below_high_water = asyncio.Event()
        self._below_high_water.set()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def read(self) -> bytes:
        """Return the payload of the next binary message; b"" when the WebSocket closed.

        A text message breaks the MQTT binding (MQTT 5.0 §6), so it ends the connection.
        """
        try:
            message = await self._websocket.recv()
        except ConnectionClosed:
            return b""
        if isinstance(message, str):
            self._closing = True
            await self._websocket.close(CloseCode.UNSUPPORTED_DATA, "MQTT needs binary frames")
            return b""
        return message

    def set_receiver(self, receiver: Callable[[bytes], None] | None) -> bool:
        """A WebSocket's messages come from `read` only (the websockets library's reader): never pushed."""
        return receiver is None

    def is_pushing(self) -> bool:
        """Never: see `set_receiver`."""
        return False

    def write(self, data: bytes) -> None:
        """Append bytes to the send buffer and wake the writer task; never blocks."""
        if self._closing or not data:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= DEFAULT_HIGH_WATER:
            self._below_high_water.clear()
        self._has_data.set()

    def buffered_size(self) -> int:
        """Bytes not yet sent: this buffer plus the socket transport's own."""
        transport = self._websocket.transport
        in_transport = 0 if transport.is_closing() else transport.get_write_buffer_size()
        return self._pending_size + in_transport

    async def drain(self) -> None:
        """Wait until the writer task has the buffer below the high-water mark."""
        await self._below_high_water.wait()

    def close(self) -> None:
        """Send what is buffered, then close the WebSocket (status 1000)."""
        self._closing = True
        self._has_data.set()

    def abort(self) -> None:
        """Drop the TCP connection now, without a closing handshake."""
        self._closing = True
        self._writer.cancel()
        self._release_drainers()
        self._websocket.transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the writer has flushed and the WebSocket closed (or was aborted)."""
        try:
            await self._writer
        except asyncio.CancelledError:
            if not self._writer.cancelled():
                raise  # our caller is cancelled, not just the writer

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._has_data.wait()
                self._has_data.clear()
                if self._pending:
                    await self._send_pending()
                elif self._closing:
                    break
            await self._websocket.close()
        except ConnectionClosed:
            pass  # the peer went away; read() reports it
        finally:
            self._closing = True
            self._pending.clear()
            self._pending_size = 0
            self._release_drainers()

    async def _send_pending(self) -> None:
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if self._closing:
            self._has_data.set()  # come back round to close after this send
        # send() waits while the transport is above its own write limit: that is the
        # backpressure we pass on through _below_high_water.
        await self._websocket.send(data)
        if self._pending_size < DEFAULT_HIGH_WATER:
            self._below_high_water.set()

    def _release_drainers(self) -> None:
        self._below_high_water.set()


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """Pick `mqtt` (or `mqttv3.1`); accept a client that offers no subprotocol at all.

    The MQTT specifications require clients to offer `mqtt`, but some embedded clients send
    nothing; refusing them gains nothing. A client that offers only other protocols is
    refused (HTTP 400), because it expects to speak something else.
    """
    if not offered:
        return None
    for name in MQTT_SUBPROTOCOLS:
        if name in offered:
            return name
    raise NegotiationError(f"unsupported subprotocol {', '.join(offered)}; expected mqtt or mqttv3.1")


def _path_checker(path: str) -> Callable[[ServerConnection, Request], Response | None]:
    def check_path(connection: ServerConnection, request: Request) -> Response | None:
        requested = request.path.partition("?")[0]
        if path == "/" or requested == path:
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, f"no MQTT endpoint at {requested}; it is at {path}\n")

    return check_path


class _LibraryLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The websockets library's own records, INFO lowered to DEBUG.

    Its INFO lines ("connection rejected (404 Not Found)", "server listening on ...") repeat
    what hookmq logs itself, with the client's identity, in `hookmq.connection`.
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log as the library asked, one level lower for INFO."""
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


LIBRARY_LOG = _LibraryLog(logging.getLogger("hookmq.transport.websocket"), {})
"""What the websockets library logs through (see `_LibraryLog`)."""


def _first_bytes_problem(data: bytes) -> str | None:
    """Why the first bytes of a connection cannot start an HTTP request, or None when they may."""
    first = data[0]
    if 0x41 <= first <= 0x5A:  # an HTTP method is upper-case letters ("GET ")
        return None
    if first == 0x10:
        return "sent an MQTT CONNECT: this is a WebSocket listener, plain MQTT clients connect to a tcp or tls listener"
    if first == 0x16:
        return "sent a TLS handshake: this listener speaks WebSocket without TLS (ws://, not wss://)"
    return f"sent 0x{first:02x}, which starts no HTTP request: this is a WebSocket listener"


def connection_class(config: ListenerConfig, log: LogLimiter, tls: TlsAcceptance | None) -> type[ServerConnection]:
    """The websockets connection class of one listener: TLS handshake, first-bytes check, logs.

    * On a wss listener the TLS handshake is run by `TlsAcceptance` (failures logged).
    * A peer whose first bytes cannot be HTTP (a plain MQTT client on the WebSocket port)
      is told nothing it could misread, logged and closed at once, instead of waiting for
      the handshake timeout.
    """

    class MqttServerConnection(ServerConnection):
        _hookmq_checked = False
        _hookmq_handshaking = False
        _hookmq_raw_bytes: list[bytes] | None = None
        _hookmq_peer = "unknown"

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if tls is not None and not self._hookmq_handshaking:
                # The TCP connection: run the TLS handshake; the TLS transport comes back here.
                self._hookmq_handshaking = True
                self._hookmq_peer = format_peer(transport.get_extra_info("peername"))
                self._hookmq_raw_bytes = tls.start(self, transport, self._hookmq_peer)
                return
            self._hookmq_raw_bytes = None
            if tls is None:
                self._hookmq_peer = format_peer(transport.get_extra_info("peername"))
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            if self._hookmq_raw_bytes is not None:
                self._hookmq_raw_bytes.append(data)  # TLS bytes from before the handshake started
                return
            if not self._hookmq_checked and data:
                self._hookmq_checked = True
                problem = _first_bytes_problem(data)
                if problem is not None:
                    log_event(log, logging.INFO, "websocket_refused",
                              {"remote": self._hookmq_peer, "listener": config.name, "reason": problem})
                    self.transport.abort()
                    return
            super().data_received(data)

        def eof_received(self) -> None:
            if self._hookmq_raw_bytes is not None:
                return  # before the TLS handshake took over: the transport closes, the handshake sees it
            super().eof_received()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._hookmq_raw_bytes is not None:
                return  # the websockets side never started
            super().connection_lost(exc)

    return MqttServerConnection


def _refusal_logger(config: ListenerConfig, log: LogLimiter) -> Callable[[ServerConnection, Request, Response], None]:
    """A `process_response` hook that logs every opening handshake the server refuses."""

    def log_refusal(connection: ServerConnection, request: Request, response: Response) -> None:
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            return
        failure = connection.protocol.handshake_exc
        reason = str(failure) if failure is not None else response.body.decode("utf-8", "replace").strip()
        log_event(log, logging.INFO, "websocket_refused", {
            "remote": format_peer(connection.remote_address), "listener": config.name,
            "path": request.path.partition("?")[0], "status": int(response.status_code), "reason": reason,
        })

    return log_refusal


class WebSocketListener:
    """A running ws/wss server and the handler tasks of its connections."""

    def __init__(self, config: ListenerConfig, handler: Handler, log: LogLimiter) -> None:
        self.config = config
        self._handler = handler
        self._log = log
        self._active: dict[asyncio.Task[Any], ServerConnection] = {}
        self._tls: TlsAcceptance | None = None
        self._server: Server | None = None

    async def start(self) -> tuple[str, int]:
        """Bind and start serving; return the bound host and port."""
        if self.config.is_tls:
            self._tls = TlsAcceptance(server_ssl_context(self.config), self.config.name, self._log, OPEN_TIMEOUT)
        sock = bind_listening_socket(self.config.host, self.config.port, reuse_port=self.config.reuse_port)
        bound = sock.getsockname()
        try:
            self._server = await serve(
                self._on_websocket,
                sock=sock,
                backlog=ACCEPT_BATCH,
                create_connection=connection_class(self.config, self._log, self._tls),
                subprotocols=list(MQTT_SUBPROTOCOLS),
                select_subprotocol=_select_subprotocol,
                process_request=_path_checker(self.config.path),
                process_response=_refusal_logger(self.config, self._log),
                # MQTT payloads are often already compressed or tiny; deflate costs CPU and
                # memory per connection for little gain, so it is off.
                compression=None,
                max_size=self.config.ws_max_message_size,
                # MQTT keep-alive detects dead peers; WebSocket pings would duplicate it.
                ping_interval=None,
                open_timeout=OPEN_TIMEOUT,
                write_limit=DEFAULT_HIGH_WATER,
                server_header=None,
                logger=LIBRARY_LOG,
            )
        except BaseException:
            sock.close()
            raise
        widen_backlog(sock)
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop accepting new clients; open connections stay with their handlers."""
        if self._server is not None:
            self._server.close(close_connections=False)

    async def close_connections(self, grace: float) -> None:
        """Give handlers `grace` seconds to finish, then close the rest with 1001 and cancel them."""
        self.close()  # a listener still accepting would keep adding connections
        if self._active and grace > 0:
            await asyncio.wait(list(self._active), timeout=grace)
        websockets = list(self._active.values())
        if websockets:
            closing = [asyncio.ensure_future(ws.close(CloseCode.GOING_AWAY)) for ws in websockets]
            await asyncio.wait(closing, timeout=OPEN_TIMEOUT)
        handshakes = self._tls.cancel() if self._tls is not None else []
        for task in list(self._active):
            task.cancel()  # run_handler aborts the connection on cancellation
        await asyncio.gather(*handshakes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_websocket(self, websocket: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None  # websockets runs each handler in its own task
        if not DESCRIPTORS.admit("mqtt"):  # a descriptor the dashboard reserved
            websocket.transport.abort()
            return
        self._active[task] = websocket
        try:
            sock = websocket.transport.get_extra_info("socket")
            set_nodelay(sock)
            set_keepalive(sock)
            connection = WebSocketConnection(websocket, self.config.name)
            body = open_connection(self._handler, connection, self.config.name)
            if body is not None:
                await run_handler(body, connection, self.config.name)
            await connection.wait_closed()
        finally:
            del self._active[task]
            DESCRIPTORS.release("mqtt")
