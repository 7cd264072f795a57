"""Who may use the dashboard, and the headers every response carries.

Three ways in (docs/dashboard.md "Security"):

* `Authorization: Bearer <token>` — scripts, Prometheus, curl. Never needs a CSRF token,
  because browsers do not attach that header to cross-site requests on their own.
* the login form, which trades the token for a random session id in an HttpOnly,
  SameSite=Strict cookie; mutations made with the cookie must echo the session's CSRF token
  in the `X-CSRF-Token` header.
* `open_on_loopback = true`: a request from 127.0.0.1/::1 whose Host header also names a
  loopback host (so a DNS-rebinding page cannot pass as local) needs no token; its
  mutations still need the process-wide CSRF token that only same-origin pages can read.

No CORS headers are ever sent, so other origins can neither read the API nor send
credentialed non-simple requests to it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

log = logging.getLogger("hookmq.plugins.dashboard")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE_NAME = "hookmq_dashboard"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 1024
LOGIN_FAILURES_ALLOWED = 10
"""Wrong tokens one address may post per LOGIN_WINDOW_SECONDS before /login answers 429."""
LOGIN_WINDOW_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 4096
PUBLIC_PATHS: frozenset[str] = frozenset({"/healthz", "/readyz", "/login", "/favicon.ico"})
"""Paths served without a token: probes and the icon reveal nothing, and the login form must be reachable."""
PUBLIC_PREFIX = "/static/"
"""The page's script, style and icon: shipped code with no data in it, needed by the login form."""

SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS: dict[str, str] = {
    # Everything the page needs is served from this origin (no CDN); WebSocket 'self' included.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # "no-referrer" would make browsers send `Origin: null` with our own form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

AuthKind = Literal["bearer", "cookie", "loopback"]


@dataclass(frozen=True, slots=True)
class Identity:
    """How a request was let in, and the CSRF token its mutations must carry (None: no need)."""

    kind: AuthKind
    csrf: str | None


@dataclass(slots=True)
class Session:
    """A login-form session: its CSRF token and when it ends (monotonic seconds)."""

    csrf: str
    expires: float


def generate_token() -> str:
    """A fresh random token for a dashboard started without one."""
    return secrets.token_urlsafe(24)


def is_loopback_address(address: str | None) -> bool:
    """Whether a peer IP address is a loopback one."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine (an IP on loopback, or localhost)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    return host == "localhost" or host.endswith(".localhost") or is_loopback_address(host)


def same_origin(request: web.Request) -> bool:
    """False only when the browser says the request comes from another origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    # Compare host and port only: behind a TLS-terminating proxy the scheme seen here is http.
    _, _, origin_host = origin.lower().rstrip("/").partition("://")
    return hmac.compare_digest(origin_host.encode(), request.host.lower().encode())


class Guard:
    """Checks tokens, keeps login sessions and decides whether a request may proceed."""

    def __init__(self, token: str, open_on_loopback: bool, session_seconds: float) -> None:
        self._token = token.encode()
        self._open_on_loopback = open_on_loopback
        self._session_seconds = session_seconds
        self._sessions: dict[str, Session] = {}
        #: What same-origin pages served to open-loopback visitors send with their mutations.
        self.loopback_csrf = secrets.token_urlsafe(24)
        self._failures: dict[str, list[float]] = {}

    def login_blocked(self, address: str | None) -> bool:
        """Whether an address has posted too many wrong tokens lately (slows guessing a weak token)."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(address or "", ()) if now - t < LOGIN_WINDOW_SECONDS]
        return len(recent) >= LOGIN_FAILURES_ALLOWED

    def login_failed(self, address: str | None) -> None:
        """Remember a wrong token from an address (bounded memory: the oldest addresses are forgotten)."""
        now = time.monotonic()
        key = address or ""
        recent = [t for t in self._failures.pop(key, []) if now - t < LOGIN_WINDOW_SECONDS]
        while len(self._failures) >= MAX_TRACKED_ADDRESSES:
            self._failures.pop(next(iter(self._failures)))
        self._failures[key] = [*recent, now][-LOGIN_FAILURES_ALLOWED:]

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the configured token."""
        return hmac.compare_digest(candidate.encode(), self._token)

    def open_session(self) -> tuple[str, Session]:
        """Start a login-form session; the oldest are forgotten beyond MAX_SESSIONS."""
        now = time.monotonic()
        self._sessions = {key: s for key, s in self._sessions.items() if s.expires > now}
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        session_id = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(24), now + self._session_seconds)
        self._sessions[session_id] = session
        return session_id, session

    def close_session(self, session_id: str | None) -> None:
        """End a login-form session (logout)."""
        if session_id:
            self._sessions.pop(session_id, None)

    def _session(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id) if session_id else None
        if session is None or session.expires <= time.monotonic():
            return None
        return session

    def identify(self, request: web.Request) -> Identity | None:
        """How the request is authenticated, or None when it is not."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and credential and self.token_matches(credential.strip()):
            return Identity("bearer", None)
        session = self._session(request.cookies.get(COOKIE_NAME))
        if session is not None:
            return Identity("cookie", session.csrf)
        if self._open_on_loopback and is_loopback_address(request.remote) and is_loopback_host(request.url.host):
            return Identity("loopback", self.loopback_csrf)
        return None

    @property
    def session_seconds(self) -> float:
        """Lifetime of a login session."""
        return self._session_seconds


def csrf_ok(request: web.Request, identity: Identity) -> bool:
    """Whether a mutating request proves it comes from our own page (or from a script)."""
    if identity.csrf is None:
        return True
    sent = request.headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent.encode(), identity.csrf.encode())


def wants_html(request: web.Request) -> bool:
    """Whether an unauthenticated request should be sent to the login form (a page, not the API)."""
    return request.method == "GET" and request.path in ("/", "/index.html")


def unauthorized(request: web.Request) -> web.StreamResponse:
    """401 for the API (with the Bearer challenge), a redirect to the login form for the page."""
    if wants_html(request):
        raise web.HTTPSeeOther("/login")
    return web.json_response(
        {"error": "unauthorized", "detail": "send 'Authorization: Bearer <token>' or log in at /login"},
        status=401, headers={"WWW-Authenticate": 'Bearer realm="hookmq"'},
    )


def forbidden(detail: str) -> web.StreamResponse:
    """403 with a JSON reason."""
    return web.json_response({"error": "forbidden", "detail": detail}, status=403)


def auth_middleware(guard: Guard) -> Middleware:
    """The middleware enforcing the rules of this module's docstring."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        unsafe = request.method not in SAFE_METHODS
        upgrading = request.headers.get("Upgrade", "").lower() == "websocket"
        if (unsafe or upgrading) and not same_origin(request):
            return forbidden("cross-origin request refused")
        if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIX):
            return await handler(request)
        identity = guard.identify(request)
        if identity is None:
            return unauthorized(request)
        if unsafe and not csrf_ok(request, identity):
            return forbidden(f"missing or wrong {CSRF_HEADER} header")
        return await handler(request)

    return authenticate


SERVER_HEADER = "hookmq"
"""The `Server:` header: no Python or aiohttp version for a scanner to match against advisories."""


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare signal: the same protective headers on every response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_HEADER


def request_is_https(request: web.Request, trusted_proxies: Sequence[str]) -> bool:
    """Whether the browser reached us over HTTPS: directly, or as a trusted proxy's
    `X-Forwarded-Proto` says (from anyone else that header is ignored: it is the client's word)."""
    if request.secure:  # aiohttp derives this from the socket's TLS, never from headers
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    if not forwarded or not _from_trusted_proxy(request.remote, trusted_proxies):
        return False
    # A chain of proxies appends: the first value is what the browser used.
    return forwarded.split(",", 1)[0].strip().lower() == "https"


def _from_trusted_proxy(remote: str | None, trusted_proxies: Sequence[str]) -> bool:
    if not remote or not trusted_proxies:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in trusted_proxies)
