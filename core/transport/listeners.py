"""Start the configured listeners and hand every accepted client to the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from .base import Connection
from .config import ListenerConfig
from .handlers import Handler, run_handler
from .sockets import bind_listening_socket
from .stream import StreamConnection
from .tls import server_ssl_context
from .websocket import OPEN_TIMEOUT, start_websocket_server

logger = logging.getLogger("hookmq.transport")

_SCHEMES = {"tcp": "mqtt", "tls": "mqtts", "ws": "ws", "wss": "wss"}
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


@dataclass(eq=False)
class RunningListener:
    """A listener that is accepting clients."""

    name: str
    """The listener's name from the configuration."""
    kind: str
    """`tcp`, `tls`, `ws` or `wss`."""
    address: tuple[str, int]
    """The bound host and port ("::" or "0.0.0.0" when listening on every interface)."""
    config: ListenerConfig
    """The configuration the listener was started from."""
    _close: Callable[[], Awaitable[None]] = field(repr=False)

    @property
    def url(self) -> str:
        """A URL a local client can connect to, e.g. "mqtt://127.0.0.1:1883" or "ws://127.0.0.1:1882/mqtt"."""
        host, port = self.address
        if host in _WILDCARD_HOSTS:
            host = "127.0.0.1"  # the dual-stack or IPv4 wildcard socket accepts loopback IPv4
        elif ":" in host:
            host = f"[{host}]"
        path = self.config.path if self.config.is_websocket else ""
        return f"{_SCHEMES[self.kind]}://{host}:{port}{path}"

    @property
    def all_interfaces(self) -> bool:
        """Whether the listener accepts clients on every interface."""
        return self.address[0] in _WILDCARD_HOSTS

    async def close(self) -> None:
        """Stop accepting, end the connections still open and wait for their handlers."""
        await self._close()


async def start_listeners(
    configs: Sequence[ListenerConfig], handler: Callable[[Connection], Awaitable[None]]
) -> list[RunningListener]:
    """Start every listener; `await handler(connection)` runs once per accepted client.

    Either every listener starts or none stays open: on a failure the ones already started
    are closed and an OSError naming the listener is raised.
    """
    _check_unique_names(configs)
    started: list[RunningListener] = []
    try:
        for config in configs:
            started.append(await start_listener(config, handler))
    except BaseException:
        for listener in started:
            await listener.close()
        raise
    return started


async def start_listener(config: ListenerConfig, handler: Handler) -> RunningListener:
    """Start one listener (see `start_listeners`)."""
    try:
        if config.is_websocket:
            return await _start_websocket(config, handler)
        return await _start_stream(config, handler)
    except OSError as error:
        raise OSError(
            error.errno, f"listener {config.name!r} ({config.type}) cannot listen on {config.address!r}: {error.strerror or error}"
        ) from error


async def _start_stream(config: ListenerConfig, handler: Handler) -> RunningListener:
    loop = asyncio.get_running_loop()
    ssl_context = server_ssl_context(config) if config.is_tls else None
    sock = bind_listening_socket(config.host, config.port)
    bound = sock.getsockname()
    handlers: set[asyncio.Task[None]] = set()

    def on_open(connection: StreamConnection) -> None:
        task = loop.create_task(run_handler(handler, connection, config.name))
        handlers.add(task)
        task.add_done_callback(handlers.discard)

    try:
        server = await loop.create_server(
            lambda: StreamConnection(config.name, on_open),
            sock=sock,
            ssl=ssl_context,
            ssl_handshake_timeout=OPEN_TIMEOUT if ssl_context else None,
        )
    except BaseException:
        sock.close()
        raise

    async def close() -> None:
        server.close()
        for task in list(handlers):
            task.cancel()  # run_handler aborts the connection on cancellation
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    return RunningListener(config.name, config.type, (str(bound[0]), int(bound[1])), config, close)


async def _start_websocket(config: ListenerConfig, handler: Handler) -> RunningListener:
    server, bound = await start_websocket_server(config, handler)

    async def close() -> None:
        server.close(close_connections=True)
        await server.wait_closed()

    return RunningListener(config.name, config.type, bound, config, close)


def _check_unique_names(configs: Sequence[ListenerConfig]) -> None:
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ValueError(f"two listeners are named {config.name!r}; names must be unique")
        seen.add(config.name)


def banner_lines(listeners: Sequence[RunningListener]) -> list[str]:
    """One line per listener for the startup banner: name, type, URL and what it binds."""
    width = max((len(listener.name) for listener in listeners), default=0)
    return [_banner_line(listener, width) for listener in listeners]


def _banner_line(listener: RunningListener, width: int) -> str:
    notes = ["all interfaces" if listener.all_interfaces else f"bound to {listener.address[0]}"]
    if listener.config.is_tls:
        notes.append(f"TLS >= {listener.config.tls_min_version}")
        if listener.config.require_client_cert:
            notes.append("client certificate required")
        elif listener.config.cafile is not None:
            notes.append("client certificate optional")
    return f"{listener.name:<{width}}  {listener.kind:<3}  {listener.url}  ({', '.join(notes)})"
