"""One running dashboard: the aiohttp server, the sampler task and the live feed.

Runs inside the broker's event loop with aiohttp's AppRunner/TCPSite (never `run_app`,
which would own the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hookmq.ratelimit import LogLimiter
from hookmq.transport.config import parse_address

from .api import Api, dumps
from .cluster import ClusterEvents, cluster_view
from .connections import ConnectionGuard
from .contract import BrokerLike
from .live import LiveHub
from .metrics import build_registry
from .sampling import History, Sample
from .security import Guard, generate_token
from .settings import DashboardSettings

log = logging.getLogger("hookmq.plugins.dashboard")


#: Seconds aiohttp's keep-alive timer waits beyond the guard's `idle_timeout` (see `Dashboard.start`).
AIOHTTP_KEEPALIVE_MARGIN = 5.0


class Dashboard:
    """The dashboard of one broker. `start()` binds the HTTP server; `bound_address` says where."""

    def __init__(self, broker: BrokerLike, settings: DashboardSettings) -> None:
        self.broker = broker
        self.settings = settings
        #: The token in force: the configured one, or one generated at start.
        self.token = settings.token or generate_token()
        self.token_generated = settings.token is None
        self.history = History(settings.history_length)
        self.hub = LiveHub(settings.live_queue_frames, settings.live_stuck_seconds)
        self.guard = Guard(self.token, settings.open_on_loopback, settings.session_hours * 3600)
        self.connections = ConnectionGuard(settings)
        self.registry = build_registry(lambda: self.history.latest, self._own_figures, lambda: cluster_view(broker))
        self.cluster_events: ClusterEvents | None = None
        #: Whether the broker's listeners accept clients (set by on_started).
        self.ready = False
        #: (host, port) the HTTP server is bound to; None until started.
        self.bound_address: tuple[str, int] | None = None
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """http://host:port/ of the running dashboard (IPv6 hosts bracketed)."""
        if self.bound_address is None:
            raise RuntimeError("the dashboard is not started")
        host, port = self.bound_address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    async def start(self) -> None:
        """Take a first sample, bind the server and start sampling."""
        self.sample()
        api = Api(self.broker, self.history, self.hub, self.guard, self.registry,
                  lambda: self.ready, self.settings)
        app = api.application(first_middlewares=[self.connections.middleware()])
        # The connection guard owns the idle timeout (and counts and logs it); aiohttp's own
        # keep-alive timer, armed at the same moment with the same length, could fire first on a
        # busy loop and close the connection uncounted, so it only backs the guard up, later.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                    keepalive_timeout=self.settings.idle_timeout + AIOHTTP_KEEPALIVE_MARGIN,
                                    logger=HttpErrorLogger())
        await self._runner.setup()
        host, port = parse_address(self.settings.address)
        site = GuardedSite(self._runner, host, port, self.connections)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.connections.start()
        self.bound_address = _first_address(self._runner.addresses)
        self._sampler = asyncio.create_task(self._sample_forever(), name="hookmq-dashboard-sampler")
        self._announce()

    def _announce(self) -> None:
        log.info("dashboard listening on %s", self.url)
        if self.token_generated:
            # Logged once, at start: the only way to learn a generated token.
            log.warning("dashboard token (generated; set [plugins.dashboard] token to fix it): %s", self.token)

    def started(self) -> None:
        """Every plugin has started (the gossip plugin too): follow membership for the live feed."""
        self.ready = True
        if self.cluster_events is None:
            self.cluster_events = ClusterEvents(self.broker, self._cluster_event)

    def _cluster_event(self, frame: dict[str, object]) -> None:
        if len(self.hub):
            self.hub.broadcast(dumps(frame))

    async def stop(self) -> None:
        """Stop sampling, close the browsers' feeds and the server."""
        self.ready = False
        if self.cluster_events is not None:
            self.cluster_events.close()
            self.cluster_events = None
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        await self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.connections.stop()

    def sample(self) -> Sample:
        """Read broker.info() once, record it and push it to the browsers."""
        sample = self.history.record(time.time(), self.broker.info())
        if len(self.hub):
            self.hub.broadcast(dumps({"type": "sample", **sample.as_json()}))
        return sample

    async def _sample_forever(self) -> None:
        interval = self.settings.sample_interval
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            # Aim at a fixed cadence so the charts' x-axis stays regular under load.
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                self.sample()
            except Exception:
                log.exception("dashboard: sampling broker.info() failed")

    def _own_figures(self) -> dict[str, float]:
        return {
            "dashboard_live_browsers": float(len(self.hub)),
            "dashboard_live_frames_dropped": float(self.hub.dropped),
            "dashboard_http_connections": float(self.connections.total),
            **{f"dashboard_http_connections_{name}": float(value) for name, value in self.connections.counters.items()},
            "ready": 1.0 if self.ready else 0.0,
        }


class GuardedSite(web.BaseSite):
    """aiohttp's TCPSite with every accepted connection wrapped by the ConnectionGuard."""

    __slots__ = ("_guard", "_host", "_port")

    def __init__(self, runner: web.AppRunner, host: str | None, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        """The address as aiohttp names sites."""
        return f"http://{self._host or '0.0.0.0'}:{self._port}"

    async def start(self) -> None:
        """Bind and serve through the guard."""
        await super().start()
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server), self._host, self._port, reuse_address=True)


class HttpErrorLogger(logging.Logger):
    """aiohttp's server logger: a malformed request is one rate-limited line, not a traceback.

    aiohttp logs every unparsable request with `logger.exception` (nine lines each); a peer
    can send them as fast as it likes. Other errors (a handler's bug) keep their traceback.
    """

    def __init__(self) -> None:
        super().__init__("hookmq.plugins.dashboard.http")
        self.parent = log
        self._limiter = LogLimiter(log)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        """One line for malformed requests; the usual record otherwise."""
        error = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(error, HttpProcessingError):
            detail = str(error.message or error).splitlines()[0] if str(error) else type(error).__name__
            self._limiter.log("malformed", logging.WARNING, "dashboard: malformed HTTP request (%s): %s",
                              f"{msg}" % args if args else msg, detail)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def _first_address(addresses: list[Any]) -> tuple[str, int]:
    """The first bound (host, port); IPv6 socknames carry two more fields."""
    if not addresses:
        raise RuntimeError("the dashboard server bound no socket")
    host, port = addresses[0][0], addresses[0][1]
    return str(host), int(port)
