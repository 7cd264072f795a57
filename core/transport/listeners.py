"""Start the configured listeners and hand every accepted client to the engine."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..eventlog import new_limiter
from ..exits import ListenerError
from ..ratelimit import LogLimiter
from .config import ListenerConfig
from .handlers import Handler
from .stream import StreamListener
from .websocket import WebSocketListener

_SCHEMES = {"tcp": "mqtt", "tls": "mqtts", "ws": "ws", "wss": "wss"}
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


class _Server(Protocol):
    """What `RunningListener` needs of a stream or WebSocket server."""

    def close(self) -> None: ...

    async def close_connections(self, grace: float) -> None: ...


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
    _server: _Server = field(repr=False)

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
        """Stop accepting new clients. Connections already accepted stay open.

        This lets the engine say goodbye to its clients (DISCONNECT, flush) after the door is
        shut; `close_connections` then ends whatever is left.
        """
        self._server.close()

    async def close_connections(self, grace: float = 0.0) -> None:
        """Wait up to `grace` seconds for connection handlers to finish, then end the rest.

        Remaining handlers are cancelled and their connections aborted (WebSocket clients first
        get a 1001 "going away" close). Stops accepting too; safe to call more than once.
        """
        await self._server.close_connections(grace)

    async def aclose(self, grace: float = 0.0) -> None:
        """`close` then `close_connections(grace)`: shut the listener down completely."""
        await self.close()
        await self.close_connections(grace)


async def start_listeners(
    configs: Sequence[ListenerConfig],
    handler: Handler,
    *,
    log: LogLimiter | None = None,
) -> list[RunningListener]:
    """Start every listener; ``handler(connection)`` is called once per accepted client (see `Handler`).

    Either every listener starts or none stays open: on a failure the ones already started
    are closed and a `ListenerError` (an OSError) naming the listener and the address is
    raised; a TLS file that cannot be used raises `TlsMaterialError`. ``log`` writes the
    lines about connections a listener ends itself (failed TLS handshakes, refused
    WebSocket handshakes); by default a limiter of its own.
    """
    _check_unique_names(configs)
    limiter = log if log is not None else new_limiter()
    started: list[RunningListener] = []
    try:
        for config in configs:
            started.append(await start_listener(config, handler, log=limiter))
    except BaseException:
        for listener in started:
            await listener.aclose()
        raise
    return started


async def start_listener(config: ListenerConfig, handler: Handler, *, log: LogLimiter | None = None) -> RunningListener:
    """Start one listener (see `start_listeners`)."""
    limiter = log if log is not None else new_limiter()
    server: StreamListener | WebSocketListener = (
        WebSocketListener(config, handler, limiter) if config.is_websocket else StreamListener(config, handler, limiter)
    )
    try:
        address = await server.start()
    except OSError as error:
        raise ListenerError(
            f"listener {config.name!r} ({config.type}) cannot listen on {config.address!r}: {_why(error, config)}",
            error.errno,
        ) from error
    return RunningListener(config.name, config.type, address, config, server)


def _why(error: OSError, config: ListenerConfig) -> str:
    """The reason in words; a name that does not resolve says which name."""
    reason = error.strerror or str(error) or type(error).__name__
    if isinstance(error, socket.gaierror):
        return f"cannot resolve host {config.host!r} ({reason})"
    return reason


def _check_unique_names(configs: Sequence[ListenerConfig]) -> None:
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ValueError(f"two listeners are named {config.name!r}; names must be unique")
        seen.add(config.name)


def banner_lines(listeners: Sequence[RunningListener]) -> list[str]:
    """One aligned line per listener for the startup banner: name, type, URL and binding notes.

    For example ``"tcp     tcp  mqtt://127.0.0.1:1883     (all interfaces)"``.
    """
    name_width = max((len(listener.name) for listener in listeners), default=0)
    url_width = max((len(listener.url) for listener in listeners), default=0)
    return [
        f"{listener.name:<{name_width}}  {listener.kind:<3}  {listener.url:<{url_width}}  ({_notes(listener)})"
        for listener in listeners
    ]


def _notes(listener: RunningListener) -> str:
    notes = ["all interfaces" if listener.all_interfaces else f"bound to {listener.address[0]}"]
    if listener.config.is_tls:
        notes.append(f"TLS >= {listener.config.tls_min_version}")
        if listener.config.require_client_cert:
            notes.append("client certificate required")
        elif listener.config.cafile is not None:
            notes.append("client certificate optional")
    return ", ".join(notes)
