"""HTTP handlers of the dashboard: the JSON API, probes, metrics, login and the page.

Every route is listed in `ROUTES`-building `Api.routes()` and described in openapi.py;
docs/dashboard.md is the prose version.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.topics import validate_topic_name

from . import metrics, views
from .cluster import NodeUnavailable, cluster_clients, cluster_view, disconnect_in_cluster, readiness_problem
from .contract import BrokerLike
from .live import LiveHub
from .openapi import openapi_document
from .sampling import History
from .security import COOKIE_NAME, Guard, add_security_headers, auth_middleware, request_is_https
from .settings import DashboardSettings

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

STATIC = resources.files(__package__) / "static"


class PublishRequest(BaseModel):
    """Body of POST /api/publish."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1)
    payload: str = ""
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    qos: Literal[0, 1, 2] = 0
    retain: bool = False


def dumps(value: Any) -> str:
    """JSON text; anything the broker returns that JSON lacks (dates, enums) becomes a string."""
    return json.dumps(value, default=str, separators=(",", ":"))


def json_response(value: Any, status: int = 200) -> web.Response:
    """A JSON response built with `dumps`."""
    return web.json_response(value, status=status, dumps=dumps)


def error(status: int, code: str, detail: str) -> web.Response:
    """The API's one error shape: {"error": code, "detail": text}."""
    return json_response({"error": code, "detail": detail}, status=status)


def static_text(name: str) -> str:
    """An asset of the static folder, as text."""
    return (STATIC / name).read_text(encoding="utf-8")


class Api:
    """The handlers, bound to one broker and the dashboard's own state."""

    def __init__(
        self,
        broker: BrokerLike,
        history: History,
        hub: LiveHub,
        guard: Guard,
        registry: CollectorRegistry,
        is_ready: Callable[[], bool],
        settings: DashboardSettings,
    ) -> None:
        self._broker = broker
        self._history = history
        self._hub = hub
        self._guard = guard
        self._registry = registry
        self._is_ready = is_ready
        self._settings = settings
        self._sample_interval = settings.sample_interval
        self._index = static_text("index.html")
        self._login = static_text("login.html")
        self._favicon = (STATIC / "favicon.svg").read_bytes()

    def application(self, first_middlewares: Sequence[Middleware] = ()) -> web.Application:
        """The aiohttp application serving every route of the dashboard."""
        app = web.Application(middlewares=[*first_middlewares, refuse_dot_segments, auth_middleware(self._guard)],
                              client_max_size=1024 * 1024)
        app.on_response_prepare.append(add_security_headers)
        app.add_routes(self.routes())
        app.router.add_static("/static/", str(STATIC), append_version=False)
        return app

    def routes(self) -> list[web.RouteDef]:
        """Every route with its handler."""
        return [
            web.get("/", self.page),
            web.get("/favicon.ico", self.favicon),
            web.get("/login", self.login_form),
            web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
            web.get("/info", self.info),
            web.get("/api/info", self.info),
            web.get("/api/session", self.session),
            web.get("/api/history", self.history),
            web.get("/api/live", self.live),
            web.get("/api/openapi.json", self.openapi),
            web.get("/api/clients", self.list_clients),
            web.get("/api/client", self.get_client),
            web.delete("/api/client", self.delete_client),
            web.get("/api/clients/{client_id:.+}", self.get_client),
            web.delete("/api/clients/{client_id:.+}", self.delete_client),
            web.get("/api/subscriptions", self.list_subscriptions),
            web.get("/api/retained", self.list_retained),
            web.delete("/api/retained", self.delete_retained),
            web.delete("/api/retained/{topic:.*}", self.delete_retained),
            web.post("/api/publish", self.publish),
            web.get("/api/cluster", self.cluster),
            web.get("/api/cluster/clients", self.cluster_clients),
            web.delete("/api/cluster/client", self.cluster_disconnect),
        ]

    # -- the page and login ------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        """GET /: the dashboard page (its script and style are under /static/)."""
        return web.Response(text=self._index, content_type="text/html")

    async def favicon(self, request: web.Request) -> web.Response:
        """GET /favicon.ico: the page's icon (SVG), which browsers ask for by this name on their own."""
        return web.Response(body=self._favicon, content_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400"})

    async def login_form(self, request: web.Request) -> web.Response:
        """GET /login: the form that trades the token for a session cookie."""
        return self._login_page("")

    def _login_page(self, message: str, status: int = 200) -> web.Response:
        notice = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
        return web.Response(text=self._login.replace("<!--notice-->", notice), content_type="text/html",
                            status=status)

    async def login(self, request: web.Request) -> web.Response:
        """POST /login: check the token, open a session, set the HttpOnly SameSite=Strict cookie."""
        if self._guard.login_blocked(request.remote):
            return self._login_page("Too many wrong tokens: wait a minute.", status=429)
        form = await request.post()
        token = form.get("token")
        if not isinstance(token, str) or not self._guard.token_matches(token.strip()):
            self._guard.login_failed(request.remote)
            return self._login_page("That token is not right.", status=401)
        session_id, _session = self._guard.open_session()
        response = web.Response(status=303, headers={"Location": "/"})
        secure = self._settings.secure_cookie
        if secure is None:
            secure = request_is_https(request, self._settings.trusted_proxies)
        response.set_cookie(
            COOKIE_NAME, session_id, max_age=int(self._guard.session_seconds), path="/",
            httponly=True, samesite="Strict", secure=secure,
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """POST /logout: end the cookie session."""
        self._guard.close_session(request.cookies.get(COOKIE_NAME))
        response = json_response({"logged_out": True})
        response.del_cookie(COOKIE_NAME, path="/")
        return response

    async def session(self, request: web.Request) -> web.Response:
        """GET /api/session: how this request is authenticated and the CSRF token to send back."""
        identity = self._guard.identify(request)
        return json_response({
            "auth": identity.kind if identity else None,
            "csrf_token": identity.csrf if identity else None,
            "csrf_header": "X-CSRF-Token",
        })

    # -- probes, metrics, figures --------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        """GET /healthz: the dashboard's event loop answers."""
        return json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """GET /readyz: 200 once the listeners accept clients, the node has joined its cluster (or
        has no members to join) and the store answers; 503 with the reason otherwise."""
        if not self._is_ready():
            return json_response({"status": "not ready", "reason": "starting or stopping"}, status=503)
        problem = await readiness_problem(self._broker)
        if problem is not None:
            return json_response({"status": "not ready", "reason": problem}, status=503)
        return json_response({"status": "ready", "listeners": self._listeners()})

    def _listeners(self) -> list[dict[str, Any]]:
        found = []
        for listener in self._broker.listeners:
            address = getattr(listener, "address", None)
            found.append({"name": getattr(listener, "name", None), "kind": getattr(listener, "kind", None),
                          "address": list(address) if isinstance(address, tuple) else address})
        return found

    async def metrics(self, request: web.Request) -> web.Response:
        """GET /metrics: the latest sample in the Prometheus text format."""
        body = metrics.render(self._registry)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def info(self, request: web.Request) -> web.Response:
        """GET /info: broker.info(), read now (not the sample)."""
        return json_response(dict(self._broker.info()))

    async def history(self, request: web.Request) -> web.Response:
        """GET /api/history[?since=<unix time>]: the sampled figures, oldest first."""
        try:
            since = float(request.query.get("since", "0"))
        except ValueError:
            return error(400, "bad_query", "since must be a number (unix time)")
        return json_response(self.history_frame(since))

    def history_frame(self, since: float = 0.0) -> dict[str, Any]:
        """The history as one JSON object (also the first frame of the live feed)."""
        return {
            "type": "history",
            "interval": self._sample_interval,
            "capacity": self._history.capacity,
            "now": time.time(),
            "samples": [sample.as_json() for sample in self._history.since(since)],
        }

    async def live(self, request: web.Request) -> web.StreamResponse:
        """GET /api/live: WebSocket; the history first, then one frame per sample."""
        return await self._hub.serve(request, dumps(self.history_frame()))

    async def openapi(self, request: web.Request) -> web.Response:
        """GET /api/openapi.json: the OpenAPI 3.1 description of this API."""
        return json_response(openapi_document())

    async def cluster(self, request: web.Request) -> web.Response:
        """GET /api/cluster: members, links, routes and figures of the cluster (see cluster.py)."""
        return json_response(cluster_view(self._broker))

    async def cluster_clients(self, request: web.Request) -> web.Response:
        """GET /api/cluster/clients?q&limit: the connected clients of every live node, each with its node."""
        try:
            _offset, limit = views.parse_paging(None, request.query.get("limit"))
        except views.BadQuery as exc:
            return error(400, "bad_query", str(exc))
        found = await cluster_clients(self._broker, request.query.get("q", ""), limit)
        if found is None:
            return json_response({"enabled": False, "total": 0, "items": [], "nodes": {},
                                  "detail": "clustering not enabled"})
        for item in found["items"]:
            level = item.get("protocol_level")
            item["protocol"] = views.PROTOCOL_NAMES.get(level) if isinstance(level, int) else None
        return json_response(found)

    async def cluster_disconnect(self, request: web.Request) -> web.Response:
        """DELETE /api/cluster/client?node=&client_id=: disconnect a client on any node (reason 0x98)."""
        node, client_id = request.query.get("node", ""), request.query.get("client_id", "")
        if not node or not client_id:
            return error(400, "bad_query", "name the node and the client: ?node=&client_id=")
        try:
            done = await disconnect_in_cluster(self._broker, node, client_id)
        except NodeUnavailable as exc:
            return error(502, "node_unavailable", str(exc))
        if not done:
            return error(404, "not_found", f"client {client_id!r} is not connected to node {node!r}")
        return json_response({"node": node, "client_id": client_id, "disconnected": True})

    # -- clients, subscriptions, retained --------------------------------------------------------

    async def list_clients(self, request: web.Request) -> web.Response:
        """GET /api/clients?offset&limit&q&protocol: one page of clients, sorted by id."""
        try:
            offset, limit = views.parse_paging(request.query.get("offset"), request.query.get("limit"))
            level = views.parse_protocol(request.query.get("protocol"))
        except views.BadQuery as exc:
            return error(400, "bad_query", str(exc))
        broker = self._broker
        ids = sorted(broker.client_ids())  # strings sort at C speed: 100 000 in a few ms

        def summary(client_id: str) -> Any:
            return broker.client(client_id, subscriptions=False)

        keep = views.client_filter(request.query.get("q"), level, summary)
        total, chosen = await views.scan_page(ids, keep, offset, limit)
        items = [views.client_view(found) for found in map(summary, chosen) if found is not None]
        return json_response(views.Page(total, offset, limit, items).as_json())

    async def get_client(self, request: web.Request) -> web.Response:
        """GET /api/clients/{id} or /api/client?client_id=: one client and a page of its subscriptions."""
        client_id = _named(request, "client_id")
        if isinstance(client_id, web.Response):
            return client_id
        try:
            offset, limit = views.parse_paging(request.query.get("offset"), request.query.get("limit"))
        except views.BadQuery as exc:
            return error(400, "bad_query", str(exc))
        client = self._broker.client(client_id, subscriptions=False)
        entries = self._broker.client_subscriptions(client_id)
        if client is None or entries is None:
            return error(404, "not_found", f"no client {client_id!r}")
        return json_response(views.client_detail(client, offset, limit, entries))

    async def delete_client(self, request: web.Request) -> web.Response:
        """DELETE /api/clients/{id} or /api/client?client_id=: disconnect the client (reason 0x98)."""
        client_id = _named(request, "client_id")
        if isinstance(client_id, web.Response):
            return client_id
        if not await self._broker.disconnect_client(client_id):
            return error(404, "not_found", f"client {client_id!r} is not connected")
        return json_response({"client_id": client_id, "disconnected": True})

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        """GET /api/subscriptions?offset&limit&q: one page of subscriptions, session by session."""
        try:
            offset, limit = views.parse_paging(request.query.get("offset"), request.query.get("limit"))
        except views.BadQuery as exc:
            return error(400, "bad_query", str(exc))
        keep = views.subscription_filter(request.query.get("q"))
        total, chosen = await views.scan_page(self._broker.subscriptions(), keep, offset, limit)
        return json_response(views.Page(total, offset, limit, [views.subscription_view(e) for e in chosen]).as_json())

    async def list_retained(self, request: web.Request) -> web.Response:
        """GET /api/retained?offset&limit&q&system: one page of retained messages, oldest first."""
        try:
            offset, limit = views.parse_paging(request.query.get("offset"), request.query.get("limit"))
        except views.BadQuery as exc:
            return error(400, "bad_query", str(exc))
        include_system = request.query.get("system", "").lower() in ("1", "true", "yes")
        keep = views.retained_filter(request.query.get("q"), include_system)
        total, topics = await views.scan_page(self._broker.retained_topics(), keep, offset, limit)
        found = [self._broker.retained_message(topic) for topic in topics]
        items = [views.retained_view(packet) for packet in found if packet is not None]
        return json_response(views.Page(total, offset, limit, items).as_json())

    async def delete_retained(self, request: web.Request) -> web.Response:
        """DELETE /api/retained?topic=… (any topic) or /api/retained/{topic} (no `.`/`..` levels)."""
        topic = _named(request, "topic")
        if isinstance(topic, web.Response):
            return topic
        if not await self._broker.delete_retained(topic):
            return error(404, "not_found", f"no retained message on {topic!r}")
        return json_response({"topic": topic, "deleted": True})

    async def publish(self, request: web.Request) -> web.Response:
        """POST /api/publish: publish a message as the broker (JSON body only)."""
        if request.content_type != "application/json":
            return error(415, "unsupported_media_type", "send the message as application/json")
        try:
            body = PublishRequest.model_validate_json(await request.read())
            validate_topic_name(body.topic)
            payload = views.encode_payload(body.payload, body.payload_encoding)
        except ValidationError as exc:
            return error(400, "bad_body", "; ".join(_describe(item) for item in exc.errors()))
        except ProtocolError as exc:
            return error(400, "bad_topic", exc.message)
        except views.BadQuery as exc:
            return error(400, "bad_body", str(exc))
        if body.topic.startswith("$"):
            return error(400, "bad_topic", "topics starting with '$' are reserved for the broker")
        delivered = await self._broker.publish(body.topic, payload, qos=body.qos, retain=body.retain)
        return json_response({"topic": body.topic, "delivered": delivered})


def _named(request: web.Request, name: str) -> str | web.Response:
    """The client id or topic a request names: from the path, else from `?<name>=`.

    A value in the path may not have `.` or `..` segments: a browser resolves those before
    sending, so such a request cannot mean what it says. The query form takes any value.
    """
    value = request.match_info.get(name)
    if value:
        if views.is_dot_segment_path(value):
            return error(400, "bad_path", f"a {name} with '.' or '..' levels cannot be named in the path: "
                                          f"use ?{name}=")
        return value
    value = request.query.get(name, "")
    if not value:
        return error(400, "bad_query", f"name the {name}: ?{name}=")
    return value


@web.middleware
async def refuse_dot_segments(request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """400 for a raw path with `.`/`..` segments (plain or percent-encoded) under /api/: the API
    never means one, and a request built by concatenating names into the path could."""
    raw = request.raw_path.split("?", 1)[0]
    if raw.startswith("/api/"):
        segments = (segment.lower().replace("%2e", ".") for segment in raw.split("/"))
        if any(segment in (".", "..") for segment in segments):
            return error(400, "bad_path", "'.' and '..' path segments are refused: name values with ?topic= or ?client_id=")
    return await handler(request)


def _describe(item: Any) -> str:
    location = ".".join(str(part) for part in item.get("loc", ())) or "body"
    return f"{location}: {item.get('msg', 'invalid')}"
