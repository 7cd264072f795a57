"""The `Connection` protocol: what the engine sees of one client's byte stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

DEFAULT_HIGH_WATER = 64 * 1024
"""Bytes queued towards a peer above which `Connection.drain` waits (asyncio's own default)."""

DEFAULT_READ_HIGH_WATER = 256 * 1024
"""Unread bytes held per connection before the transport stops reading from the socket."""

OPEN_TIMEOUT = 10.0
"""Seconds a client has for the TLS and WebSocket handshakes."""

GOODBYE_GRACE = 2.0
"""Seconds a closed TCP connection keeps reading (and dropping) what the peer still sends,
so the peer reads the server's last packet instead of a reset (see `Connection.close`)."""


@runtime_checkable
class Connection(Protocol):
    """One accepted client, whatever the listener type (TCP, TLS, WebSocket, WSS).

    The engine reads chunks of bytes (not packets: a chunk may hold part of a packet or
    several packets) and writes encoded packets. `write` never blocks, so the engine can fan a
    message out to many clients synchronously; it watches `buffered_size` and awaits `drain`
    to apply backpressure.
    """

    remote_address: str
    """The peer as "host:port" ("[v6addr]:port" for IPv6)."""

    listener: str
    """The name of the listener that accepted this connection."""

    tls_peer_certificate: dict[str, Any] | None
    """`ssl.SSLSocket.getpeercert()` of a verified client certificate, else None."""

    async def read(self) -> bytes:
        """Return the next chunk received from the peer; b"" once the stream has ended."""
        ...

    def set_receiver(self, receiver: Callable[[bytes], None] | None) -> bool:
        """Hand every received chunk to ``receiver`` as it arrives, and b"" once at the end, instead of `read`.

        Returns False when the connection cannot (a WebSocket), or not now (chunks wait to be
        read, or the stream has ended): the caller goes on reading. ``None`` goes back to `read`.
        While a receiver is set the connection belongs to it: the listener leaves it open when
        the handler returns, and bytes written during a call to the receiver are sent together
        when the call returns.
        """
        ...

    def is_pushing(self) -> bool:
        """Whether a receiver takes the received chunks (see `set_receiver`)."""
        ...

    def write(self, data: bytes) -> None:
        """Queue bytes for the peer; never blocks. Ignored once the connection is closing."""
        ...

    def buffered_size(self) -> int:
        """Bytes queued for the peer and not yet handed to the socket."""
        ...

    async def drain(self) -> None:
        """Wait until the queued bytes fall below the high-water mark (or the connection ends)."""
        ...

    def close(self) -> None:
        """Send what is buffered, then close the connection; `read` returns b"" from then on.

        The peer gets the last bytes without a reset: a TCP connection is half-closed and
        drained for up to `GOODBYE_GRACE` seconds, TLS and WebSocket run their closing
        handshakes.
        """
        ...

    def abort(self) -> None:
        """Close the connection now, discarding anything buffered."""
        ...


def format_peer(peername: Any) -> str:
    """Format a socket peer name as "host:port", with brackets around an IPv6 host.

    An IPv4 client of a dual-stack socket appears as "::ffff:a.b.c.d"; it is shown as the
    plain IPv4 address, which is what ACLs and logs expect.
    """
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = str(peername[0]), peername[1]
        if host.startswith("::ffff:") and "." in host:
            host = host.removeprefix("::ffff:")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peername) if peername else "unknown"
