"""Sessions moving between nodes reach the live feed: a takeover from another node, a handover,
and a departed node's sessions adopted. Two brokers in cluster mode in this process (real
membership, real links, a real Redis), each with its dashboard; real MQTT clients and real
WebSockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties
from hookmq.plugins.dashboard import dashboard_of
from hookmq.plugins.gossip import cluster_of, links_of
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer, redis_server

__all__ = ["redis_server"]

pytestmark = pytest.mark.timeout(90)
TOKEN = "session-events-token-0123456789"
PERSISTENT = Properties(session_expiry_interval=600)


def node_config(name: str, members: list[str], redis_url: str | None) -> Config:
    stores: dict[str, Any] = {"redis_store": {"url": redis_url}} if redis_url else {}
    return Config.model_validate({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "mqtt": {"sys_interval": 0},
        "storage": {"backend": "redis", "durability": "ack_after_write"} if redis_url else {"backend": "memory"},
        "plugins": {**stores, "dashboard": {"address": "127.0.0.1:0", "token": TOKEN, "sample_interval": 0.5}},
        "cluster": {"mode": True, "port": 0, "bind": "127.0.0.1", "advertise": "127.0.0.1", "node_name": name,
                    "profile": "local", "members": members, "runner": "loop", "leave_timeout": 1.0},
    })


async def eventually(predicate: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            return bool(predicate())
        await asyncio.sleep(0.05)
    return True


class Feed:
    """One dashboard's live feed, its cluster frames collected in the background."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            frame = json.loads(message.data)
            if frame.get("type") == "cluster":
                self.frames.append(frame)

    def of(self, event: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["event"] == event]


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[tuple[list[Broker], aiohttp.ClientSession]]:
    async with started(redis_server.url) as running:
        yield running


@pytest.fixture
async def cluster_without_store() -> AsyncIterator[tuple[list[Broker], aiohttp.ClientSession]]:
    async with started(None) as running:
        yield running


@contextlib.asynccontextmanager
async def started(redis_url: str | None) -> AsyncIterator[tuple[list[Broker], aiohttp.ClientSession]]:
    brokers: list[Broker] = []
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=aiohttp.ClientTimeout(total=10))
    try:
        for name in ("alpha", "beta"):
            seeds = [f"127.0.0.1:{cluster_of(brokers[0]).local.port}"] if brokers else []  # type: ignore[union-attr]
            broker = Broker(node_config(name, seeds, redis_url))
            await asyncio.wait_for(broker.start(), 15)
            brokers.append(broker)
        assert await eventually(lambda: links_of(brokers[0]).is_up("beta") and links_of(brokers[1]).is_up("alpha"), 20)
        yield brokers, http
    finally:
        await http.close()
        for broker in reversed(brokers):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(broker.stop(), 15)


async def feed(broker: Broker, http: aiohttp.ClientSession) -> Feed:
    dashboard = dashboard_of(broker)
    assert dashboard is not None
    ws = await http.ws_connect(f"{dashboard.url.rstrip('/')}/api/live")
    return Feed(ws)


def port(broker: Broker) -> int:
    return int(broker.listeners[0].address[1])


async def persistent(broker: Broker, client_id: str) -> RawClient:
    client, connack = await asyncio.wait_for(
        RawClient.connect("127.0.0.1", port(broker), client_id, 5, clean_start=False, properties=PERSISTENT), 10)
    assert connack.reason_code == 0
    return client


async def test_a_takeover_from_another_node_and_the_handover_appear_in_both_feeds(
    cluster: tuple[list[Broker], aiohttp.ClientSession],
) -> None:
    (alpha, beta), http = cluster
    alpha_feed, beta_feed = await feed(alpha, http), await feed(beta, http)
    first = await persistent(alpha, "mover")
    await first.subscribe("moving/#", 1)

    second = await persistent(beta, "mover")

    assert await eventually(lambda: beta_feed.of("takeover") and alpha_feed.of("handed_over"), 10), \
        (alpha_feed.frames, beta_feed.frames)
    (taken,) = beta_feed.of("takeover")
    assert (taken["node"], taken["client_ids"], taken["count"]) == ("alpha", ["mover"], 1)
    (handed,) = alpha_feed.of("handed_over")
    assert (handed["node"], handed["client_ids"]) == ("beta", ["mover"])
    assert isinstance(taken["t"], float) and taken["t"] > 0
    assert await first.closed_within(5) is not None  # the old connection was ended
    await second.disconnect()
    for each in (alpha_feed, beta_feed):
        await each.ws.close()


async def test_a_departed_nodes_sessions_adopted_here_appear_in_the_feed(
    cluster: tuple[list[Broker], aiohttp.ClientSession],
) -> None:
    (alpha, beta), http = cluster
    beta_feed = await feed(beta, http)
    for client_id in ("orphan-1", "orphan-2"):
        client = await persistent(alpha, client_id)
        await client.subscribe(f"orphans/{client_id}", 1)
        await client.disconnect()

    await asyncio.wait_for(alpha.stop(), 15)  # leaves the cluster gracefully: beta adopts what alpha owned

    assert await eventually(lambda: beta_feed.of("adoption"), 20), beta_feed.frames
    (adopted,) = beta_feed.of("adoption")
    assert adopted["node"] == "alpha"
    assert sorted(adopted["client_ids"]) == ["orphan-1", "orphan-2"] and adopted["count"] == 2
    assert [frame["node"] for frame in beta_feed.of("left")] == ["alpha"]
    await beta_feed.ws.close()


async def test_without_a_shared_store_the_session_that_travels_is_reported_as_taken_over(
    cluster_without_store: tuple[list[Broker], aiohttp.ClientSession],
) -> None:
    (alpha, beta), http = cluster_without_store
    alpha_feed, beta_feed = await feed(alpha, http), await feed(beta, http)
    first = await persistent(alpha, "traveller")
    await first.subscribe("travel/#", 1)

    second = await persistent(beta, "traveller")

    assert await eventually(lambda: beta_feed.of("takeover") and alpha_feed.of("handed_over"), 10), \
        (alpha_feed.frames, beta_feed.frames)
    assert [(f["node"], f["client_ids"]) for f in beta_feed.of("takeover")] == [("alpha", ["traveller"])]
    assert [(f["node"], f["client_ids"]) for f in alpha_feed.of("handed_over")] == [("beta", ["traveller"])]
    assert alpha_feed.of("takeover") == [] and beta_feed.of("handed_over") == []
    await second.disconnect()
    for each in (alpha_feed, beta_feed):
        await each.ws.close()
