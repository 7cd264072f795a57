"""Who may use the dashboard: tokens, the login cookie, CSRF, CORS and open loopback access."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.plugins.dashboard import dashboard_of
from hookmq.plugins.dashboard.server import Dashboard


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[Dashboard]:
    broker = Broker(config)
    await broker.start()
    try:
        found = dashboard_of(broker)
        assert found is not None
        yield found
    finally:
        await broker.stop()


def client(dashboard: Dashboard, **kwargs: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=dashboard.url, timeout=aiohttp.ClientTimeout(total=10),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)


async def test_api_needs_a_token(anonymous: aiohttp.ClientSession) -> None:
    for path in ("/api/clients", "/info", "/metrics", "/api/openapi.json", "/api/session"):
        async with anonymous.get(path) as response:
            assert response.status == 401, path
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with anonymous.get("/api/clients", headers={"Authorization": "Bearer wrong-token-wrong-token"}) as r:
        assert r.status == 401
    async with anonymous.get("/", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/login"


async def test_public_paths_and_traversal(anonymous: aiohttp.ClientSession) -> None:
    for path in ("/healthz", "/login", "/static/app.js", "/static/app.css"):
        async with anonymous.get(path) as response:
            assert response.status == 200, path
    async with anonymous.get("/static/../api/clients") as response:
        assert response.status in (401, 403, 404)
        assert "items" not in await response.text()


async def test_login_cookie_and_csrf(anonymous: aiohttp.ClientSession, dashboard: Dashboard) -> None:
    async with anonymous.post("/login", data={"token": "not-the-token-at-all"}, allow_redirects=False) as r:
        assert r.status == 401
        assert "not right" in await r.text()
    async with anonymous.post("/login", data={"token": dashboard.token}, allow_redirects=False) as r:
        assert r.status == 303
        cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert dashboard.token not in cookie

    async with anonymous.get("/api/clients") as response:
        assert response.status == 200
    async with anonymous.post("/api/publish", json={"topic": "t"}) as response:
        assert response.status == 403  # cookie alone cannot mutate
    async with anonymous.get("/api/session") as response:
        session = await response.json()
    assert session["auth"] == "cookie"
    csrf = {"X-CSRF-Token": session["csrf_token"]}
    async with anonymous.post("/api/publish", json={"topic": "t"}, headers={"X-CSRF-Token": "forged"}) as r:
        assert r.status == 403
    async with anonymous.post("/api/publish", json={"topic": "t"}, headers=csrf) as response:
        assert response.status == 200

    async with anonymous.post("/logout", headers=csrf) as response:
        assert response.status == 200
    anonymous.cookie_jar.clear()
    async with anonymous.get("/api/clients") as response:
        assert response.status == 401


async def test_logged_out_session_id_is_dead(anonymous: aiohttp.ClientSession, dashboard: Dashboard) -> None:
    async with anonymous.post("/login", data={"token": dashboard.token}, allow_redirects=False) as r:
        session_id = r.cookies["hookmq_dashboard"].value
    async with anonymous.get("/api/session") as response:
        csrf = (await response.json())["csrf_token"]
    async with anonymous.post("/logout", headers={"X-CSRF-Token": csrf}):
        pass
    async with anonymous.get("/api/clients", cookies={"hookmq_dashboard": session_id}) as response:
        assert response.status == 401


async def test_no_cross_origin_use(http: aiohttp.ClientSession) -> None:
    evil = {"Origin": "http://evil.example"}
    async with http.get("/api/clients", headers=evil) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers
    async with http.options("/api/publish", headers={**evil, "Access-Control-Request-Method": "POST"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
    async with http.post("/api/publish", json={"topic": "t"}, headers=evil) as response:
        assert response.status == 403
    async with http.delete("/api/retained/t", headers={"Origin": "null"}) as response:
        assert response.status == 403
    async with http.get("/api/live", headers={**evil, "Connection": "Upgrade", "Upgrade": "websocket",
                                              "Sec-WebSocket-Version": "13",
                                              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as response:
        assert response.status == 403


async def test_no_mutation_through_get(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/publish", params={"topic": "t"}) as response:
        assert response.status == 405
    async with http.get("/logout") as response:
        assert response.status == 405


async def test_protective_headers(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as response:
        assert response.status == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_generated_token_is_logged_once(make_config: Callable[..., Config],
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.plugins.dashboard")
    async with running(make_config(token=None)) as dashboard:
        assert dashboard.token_generated
        assert len(dashboard.token) >= 24
        assert sum(dashboard.token in record.getMessage() for record in caplog.records) == 1
        bearer = {"Authorization": f"Bearer {dashboard.token}"}
        async with client(dashboard, headers=bearer) as http, http.get("/api/clients") as response:
            assert response.status == 200
        async with client(dashboard) as anonymous, anonymous.get("/api/clients") as response:
            assert response.status == 401


async def test_configured_token_is_not_logged(dashboard: Dashboard, caplog: pytest.LogCaptureFixture) -> None:
    assert not dashboard.token_generated
    assert all(dashboard.token not in record.getMessage() for record in caplog.records)


async def test_open_on_loopback(make_config: Callable[..., Config]) -> None:
    async with running(make_config(token=None, open_on_loopback=True)) as dashboard, client(dashboard) as local:
        async with local.get("/api/clients") as response:
            assert response.status == 200
        # A DNS-rebinding page reaches 127.0.0.1 under a foreign host name: not local.
        async with local.get("/api/clients", headers={"Host": "evil.example"}) as response:
            assert response.status == 401
        async with local.post("/api/publish", json={"topic": "t"}) as response:
            assert response.status == 403
        async with local.get("/api/session") as response:
            session = await response.json()
        assert session["auth"] == "loopback"
        async with local.post("/api/publish", json={"topic": "t"},
                              headers={"X-CSRF-Token": session["csrf_token"]}) as response:
            assert response.status == 200


async def test_closed_loopback_still_needs_the_token(anonymous: aiohttp.ClientSession, dashboard: Dashboard) -> None:
    assert dashboard.settings.open_on_loopback is False
    async with anonymous.get("/api/clients") as response:
        assert response.status == 401


async def test_token_guessing_is_throttled(anonymous: aiohttp.ClientSession, dashboard: Dashboard) -> None:
    statuses = []
    for attempt in range(12):
        async with anonymous.post("/login", data={"token": f"guess-number-{attempt:04d}"}) as response:
            statuses.append(response.status)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    async with anonymous.post("/login", data={"token": dashboard.token}, allow_redirects=False) as response:
        assert response.status == 429  # even the right token waits out the window
    async with anonymous.get("/api/clients", headers={"Authorization": f"Bearer {dashboard.token}"}) as response:
        assert response.status == 200  # scripts with the token are unaffected


async def test_favicon_is_served_without_a_token(anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get("/favicon.ico") as response:
        assert response.status == 200
        assert response.content_type == "image/svg+xml"
        assert (await response.read()).lstrip().startswith(b"<svg")
    async with anonymous.get("/login") as response:
        assert '<link rel="icon" href="/static/favicon.svg"' in await response.text()
