"""Bounds on the dashboard's HTTP connections: timeouts, caps and the descriptor reserve.

aiohttp closes a connection only after its keep-alive timeout and never times out a request
that is still arriving, so an idle, half-sent or trickled request would hold its socket for
ever. Each accepted connection is wrapped in a `GuardedConnection` that sits between the
transport and aiohttp's request handler and closes it when

* its next request's headers are not complete within `header_timeout` of its first byte,
* a request whose headers arrived is not answered within `request_timeout` (a trickled
  body; the live WebSocket feed is exempt),
* it stays without a request for `idle_timeout`.

`ConnectionGuard` caps connections per remote address and in total, and takes each socket
from the process's descriptor budget (hookmq.transport.descriptors) so the dashboard never
takes the descriptors reserved for MQTT. Every cap that is hit is logged, rate-limited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from hookmq.ratelimit import LogLimiter
from hookmq.transport.descriptors import DESCRIPTORS, DescriptorBudget

from .security import SERVER_HEADER
from .settings import DashboardSettings

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

log = logging.getLogger("hookmq.plugins.dashboard")

OWNER = "dashboard"


class GuardedConnection(asyncio.Protocol):
    """One HTTP connection: forwards to aiohttp's handler and enforces the timeouts."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._admitted = False
        self._timer: asyncio.TimerHandle | None = None
        #: "idle" (between requests), "receiving" (a request is arriving), "handling", "upgraded".
        self.state = "idle"

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection (or close it at once) and hand it to aiohttp."""
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._guard.admit(self._address):
            cast(asyncio.Transport, transport).abort()
            return
        self._admitted = True
        self._transport = cast(asyncio.Transport, transport)
        self._inner.connection_made(transport)
        self._arm(self._guard.settings.idle_timeout, "idle")

    def data_received(self, data: bytes) -> None:
        """A request's first byte starts its header deadline."""
        if self.state == "idle":
            self.state = "receiving"
            self._arm(self._guard.settings.header_timeout, "no complete request headers")
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Forwarded to aiohttp."""
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the connection's place and descriptor."""
        self._cancel_timer()
        if self._admitted:
            self._admitted = False
            self._guard.release(self._address)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Forwarded to aiohttp."""
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Forwarded to aiohttp."""
        self._inner.resume_writing()

    # -- request phases, told by the middleware ----------------------------------------------------

    def request_started(self, upgrading: bool) -> None:
        """Headers are complete: the request has `request_timeout` to be answered."""
        if upgrading:
            self.state = "upgraded"  # the live feed has its own stuck-browser bound
            self._cancel_timer()
        else:
            self.state = "handling"
            self._arm(self._guard.settings.request_timeout, "request not complete")

    def request_finished(self) -> None:
        """Answered: the connection may wait `idle_timeout` for its next request."""
        if self._transport is None or self._transport.is_closing():
            return
        self.state = "idle"
        self._arm(self._guard.settings.idle_timeout, "idle")

    # -- timers --------------------------------------------------------------------------------

    def _arm(self, seconds: float, why: str) -> None:
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire, why, seconds)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, why: str, seconds: float) -> None:
        self._timer = None
        self._guard.timed_out(self._address, why, seconds)
        if self._transport is not None:
            self._transport.abort()


class PlainErrorRequestHandler(RequestHandler):
    """aiohttp's request handler whose own error responses (400 for a malformed request) carry
    `Server: hookmq` instead of the Python and aiohttp versions."""

    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's error response, with the plain Server header."""
        response = super().handle_error(request, status, exc, message)
        response.headers["Server"] = SERVER_HEADER
        return response


class ConnectionGuard:
    """Counts the dashboard's connections per address and in total, and builds their protocols."""

    def __init__(self, settings: DashboardSettings, descriptors: DescriptorBudget = DESCRIPTORS) -> None:
        self.settings = settings
        self._descriptors = descriptors
        self._per_address: dict[str, int] = {}
        self.total = 0
        #: Connections refused or closed, by cause, since start (exposed in /metrics).
        self.counters: dict[str, int] = {"refused_per_address": 0, "refused_total": 0,
                                         "refused_descriptors": 0, "timed_out": 0}
        self._limiter = LogLimiter(log)

    def start(self) -> None:
        """Set both descriptor reserves: MQTT leaves some for us, we leave some for MQTT."""
        self._descriptors.reserve(OWNER, self.settings.descriptor_reserve)
        self._descriptors.reserve("mqtt", self.settings.mqtt_descriptor_reserve)

    def stop(self) -> None:
        """Drop the reserves."""
        self._descriptors.reserve(OWNER, 0)
        self._descriptors.reserve("mqtt", 0)

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (the web.Server) so every connection is guarded."""

        def guarded() -> GuardedConnection:
            handler = inner()
            if type(handler) is RequestHandler:
                # Same layout, one method more: the error pages aiohttp writes itself get our
                # Server header too (the app's on_response_prepare signal never sees them).
                handler.__class__ = PlainErrorRequestHandler
            return GuardedConnection(self, handler)

        return guarded

    def admit(self, address: str) -> bool:
        """Whether a new connection from `address` may stay open; counts it when it may."""
        settings = self.settings
        if self._per_address.get(address, 0) >= settings.max_connections_per_address:
            return self._refuse("refused_per_address", "from %s: it already holds %d (max_connections_per_address)",
                                address, settings.max_connections_per_address)
        if self.total >= settings.max_connections:
            return self._refuse("refused_total", "from %s: %d are open (max_connections)", address, self.total)
        if not self._descriptors.admit(OWNER):
            self.counters["refused_descriptors"] += 1
            return False  # the budget logged why
        self._per_address[address] = self._per_address.get(address, 0) + 1
        self.total += 1
        return True

    def _refuse(self, counter: str, reason: str, *args: object) -> bool:
        self.counters[counter] += 1
        self._limiter.log(counter, logging.WARNING, "dashboard connection refused " + reason, *args)
        return False

    def release(self, address: str) -> None:
        """A connection admitted from `address` closed."""
        count = self._per_address.get(address, 0)
        if count <= 1:
            self._per_address.pop(address, None)
        else:
            self._per_address[address] = count - 1
        self.total -= 1
        self._descriptors.release(OWNER)

    def timed_out(self, address: str, why: str, seconds: float) -> None:
        """Log (rate-limited) a connection closed by a timeout."""
        self.counters["timed_out"] += 1
        self._limiter.log("timed_out", logging.INFO, "dashboard connection from %s closed: %s within %g s",
                          address, why, seconds)

    def middleware(self) -> Middleware:
        """Tells each connection when its request's headers are in and when it was answered."""

        @web.middleware
        async def phases(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            connection = _guarded(request)
            if connection is None:
                return await handler(request)
            connection.request_started(request.headers.get("Upgrade", "").lower() == "websocket")
            try:
                return await handler(request)
            finally:
                connection.request_finished()

        return phases


def _guarded(request: web.Request) -> GuardedConnection | None:
    transport: Any = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, GuardedConnection) else None
