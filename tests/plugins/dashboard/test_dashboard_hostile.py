"""A hostile or careless HTTP client against the dashboard (issue 19 §1, §2, §4, §5), over real sockets.

Short timeouts and small caps are configured for this module so the bounds show within a
test; docs/security.md gives the defaults. No assertion is about speed: a connection is
closed or not, a count is within a bound, a PINGRESP arrives before a listing's response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hookmq.engine.message import Message
from hookmq.mqtt.packets import Pingreq, Pingresp
from hookmq.plugins.dashboard.server import Dashboard
from hookmq.plugins.dashboard.views import MAX_LIMIT
from hookmq.testing.raw import RawClient

TOKEN = "test-token-0123456789abcdef"  # the conftest's token


@pytest.fixture
def dashboard_settings() -> dict[str, Any]:
    return {"header_timeout": 0.5, "request_timeout": 0.5, "idle_timeout": 1.5,
            "max_connections_per_address": 6, "max_connections": 9, "trusted_proxies": ["127.0.0.1"]}


def mqtt_port(broker: Any) -> int:
    return int(broker.listeners[0].address[1])


@contextlib.asynccontextmanager
async def raw_http(dashboard: Dashboard, source: str = "127.0.0.1") -> AsyncIterator[
        tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    assert dashboard.bound_address is not None
    host, port = dashboard.bound_address
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    """Whether the server closes the connection (EOF or reset) within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def test_idle_half_sent_and_trickled_requests_are_closed(dashboard: Dashboard) -> None:
    async with raw_http(dashboard) as (silent, _):
        assert await closed_by_server(silent)
    async with raw_http(dashboard) as (half, writer):
        writer.write(b"GET /healthz HT")
        assert await closed_by_server(half)

    async def trickle(writer: asyncio.StreamWriter, data: bytes) -> None:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"p" * 200 + b"\r\n\r\n"
    async with raw_http(dashboard) as (reader, writer):
        sending = asyncio.create_task(trickle(writer, request))  # 22 s of headers
        assert await closed_by_server(reader)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending

    head = (b"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
    async with raw_http(dashboard) as (reader, writer):
        writer.write(head)
        sending = asyncio.create_task(trickle(writer, b'{"topic": "t", "payload": "' + b"x" * 370 + b'"}'))
        assert await closed_by_server(reader)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
    assert dashboard.connections.counters["timed_out"] == 4, dashboard.connections.counters  # all causes, if not


async def test_keep_alive_connection_closed_after_idle_timeout(dashboard: Dashboard) -> None:
    before = dashboard.connections.counters["timed_out"]
    async with raw_http(dashboard) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        assert await closed_by_server(reader)
    # Closed by the guard (counted and logged), never first by aiohttp's own keep-alive timer.
    assert dashboard.connections.counters["timed_out"] == before + 1, dashboard.connections.counters


async def test_connection_caps_per_address_and_in_total(dashboard: Dashboard,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hookmq.plugins.dashboard")
    async with contextlib.AsyncExitStack() as stack:
        first = [await stack.enter_async_context(raw_http(dashboard)) for _ in range(66)]
        fates = await asyncio.gather(*(closed_by_server(reader, 0.3) for reader, _ in first))
        assert fates.count(False) == 6, fates  # max_connections_per_address
        others = [await stack.enter_async_context(raw_http(dashboard, f"127.0.0.{n}")) for n in range(2, 8)]
        fates = await asyncio.gather(*(closed_by_server(reader, 0.3) for reader, _ in others))
        assert fates.count(False) == 3, fates  # max_connections (9) less the 6 held
        assert dashboard.connections.total == 9
    refusals = [r for r in caplog.records if "dashboard connection refused" in r.getMessage()]
    per_address = [r for r in refusals if "max_connections_per_address" in r.getMessage()]
    assert 1 <= len(per_address) <= 20  # 60 refusals, rate-limited to a burst of 20 lines
    assert dashboard.connections.counters["refused_per_address"] == 60
    assert any("(max_connections)" in r.getMessage() for r in refusals)


async def test_malformed_requests_log_one_line_each_rate_limited(dashboard: Dashboard,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for number in range(40):
        async with raw_http(dashboard) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n")
            answer = await reader.read(4096)
            if number == 0:
                assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
                assert b"\r\nServer: hookmq\r\n" in answer
                assert b"aiohttp" not in answer.lower() and b"python" not in answer.lower()
    records = [r for r in caplog.records if r.levelno >= logging.WARNING and "HTTP request" in r.getMessage()]
    assert records and len(records) <= 21
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith(("aiohttp", "hookmq")))
    assert all("Traceback" not in r.getMessage() for r in caplog.records)


async def test_server_header_names_no_versions(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as response:
        assert response.headers["Server"] == "hookmq"
    async with http.get("/no/such/page") as response:
        assert response.headers["Server"] == "hookmq"


async def test_secure_cookie_only_when_a_trusted_proxy_says_https(anonymous: aiohttp.ClientSession,
                                                                  dashboard: Dashboard) -> None:
    async def cookie(headers: dict[str, str]) -> str:
        async with anonymous.post("/login", data={"token": dashboard.token}, headers=headers,
                                  allow_redirects=False) as response:
            assert response.status == 303
            return response.headers["Set-Cookie"]

    assert "Secure" in await cookie({"X-Forwarded-Proto": "https"})  # 127.0.0.1 is a trusted proxy here
    assert "Secure" not in await cookie({})
    assert "Secure" not in await cookie({"X-Forwarded-Proto": "http"})


async def test_secure_cookie_setting_and_untrusted_forwarded_proto(make_config: Any) -> None:
    from hookmq.engine import Broker
    from hookmq.plugins.dashboard import dashboard_of

    for settings, forwarded, expected in (({"secure_cookie": True}, None, True),
                                          ({}, "https", False),  # no trusted proxy: the header is ignored
                                          ({"secure_cookie": False, "trusted_proxies": ["127.0.0.0/8"]}, "https", False)):
        broker = Broker(make_config(**settings))
        await broker.start()
        try:
            found = dashboard_of(broker)
            assert found is not None
            async with aiohttp.ClientSession(base_url=found.url) as session:
                headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
                async with session.post("/login", data={"token": found.token}, headers=headers,
                                        allow_redirects=False) as response:
                    assert ("Secure" in response.headers["Set-Cookie"]) is expected, settings
        finally:
            await broker.stop()


async def test_dollar_topics_refused_by_the_http_api(http: aiohttp.ClientSession, broker: Any) -> None:
    for topic in ("$SYS/broker/version", "$share/g/x", "$anything"):
        async with http.post("/api/publish", json={"topic": topic, "payload": "forged", "retain": True}) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "bad_topic"
    assert broker.retained.get("$SYS/broker/version") is None or broker.retained.get(
        "$SYS/broker/version").payload != b"forged"


async def test_dot_segments_refused_and_names_in_the_query(http: aiohttp.ClientSession, broker: Any,
                                                           dashboard: Dashboard) -> None:
    victim = await RawClient.connect("127.0.0.1", mqtt_port(broker), "victim", level=5)
    dots = await RawClient.connect("127.0.0.1", mqtt_port(broker), "..", level=5)
    await broker.publish("../clients/victim", b"bait", retain=True)
    for raw in ("/api/retained/../clients/victim", "/api/retained/%2E%2E/clients/victim",
                "/api/clients/%2e%2e", "/api/clients/a/./b"):
        async with raw_http(dashboard) as (reader, writer):
            writer.write(f"DELETE {raw} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Connection: close\r\n\r\n".encode())
            answer = await reader.read()
            assert answer.startswith(b"HTTP/1.1 400"), (raw, answer[:200])
            assert b"bad_path" in answer
    assert "victim" in broker.connected and ".." in broker.connected
    async with http.delete("/api/retained", params={"topic": "../clients/victim"}) as response:
        assert response.status == 200
    assert broker.retained.get("../clients/victim") is None and "victim" in broker.connected
    async with http.get("/api/client", params={"client_id": ".."}) as response:
        assert (await response.json())["client_id"] == ".."
    async with http.delete("/api/client", params={"client_id": ".."}) as response:
        assert response.status == 200
    await victim[0].close()
    assert await dots[0].closed_within(5) is not None


async def test_client_detail_pages_its_subscriptions(http: aiohttp.ClientSession, broker: Any) -> None:
    client, _ = await RawClient.connect("127.0.0.1", mqtt_port(broker), "many", level=5)
    for batch in range(12):
        for i in range(100):
            await client.subscribe(f"m/{batch}/{i}", 0)
    detail_default = await (await http.get("/api/clients/many")).json()
    assert detail_default["subscriptions_total"] == 1000  # max_subscriptions_per_client
    assert len(detail_default["subscriptions"]) == 50
    detail = await (await http.get("/api/client", params={"client_id": "many", "offset": 990, "limit": 100_000})).json()
    assert detail["subscriptions_limit"] == MAX_LIMIT and len(detail["subscriptions"]) == 10
    await client.close()


async def test_pingreq_answered_while_a_large_listing_runs(http: aiohttp.ClientSession, broker: Any) -> None:
    for n in range(200_000):
        broker.retained.store(Message(f"bulk/{n}", b"v", 0, True))
    pinger, _ = await RawClient.connect("127.0.0.1", mqtt_port(broker), "pinger", level=5)
    listing = asyncio.create_task(http.get("/api/retained", params={"q": "no-such-topic", "limit": 100_000}))
    answered_during = 0
    while not listing.done():
        await pinger.send(Pingreq())
        await pinger.expect(Pingresp, timeout=30)
        if not listing.done():
            answered_during += 1
    response = await listing
    page = await response.json()
    assert page["total"] == 0 and page["limit"] == MAX_LIMIT
    # The scan yields to the event loop between slices, so other clients are served meanwhile.
    assert answered_during >= 5, answered_during
    everything = await (await http.get("/api/retained", params={"limit": 100_000})).json()
    assert everything["total"] == 200_000 and len(everything["items"]) == MAX_LIMIT
    await pinger.close()
