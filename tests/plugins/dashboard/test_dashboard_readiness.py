"""`/readyz` needs a store that answers: a real Redis behind the broker, stopped and started again."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from hookmq.config import Config
from hookmq.testing.redis import RedisServer, redis_server

__all__ = ["redis_server"]


@pytest.fixture
def broker_config(redis_server: RedisServer) -> Config:
    return Config.from_mapping({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "storage": {"backend": "redis"},
        "plugins": {"redis_store": {"url": redis_server.url, "connect_timeout": 1},
                    "dashboard": {"address": "127.0.0.1:0", "token": "readiness-token-0123456789", "sample_interval": 0.1}},
    }, source="<readiness tests>")


async def _ready(anonymous: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    async with anonymous.get("/readyz") as response:
        return response.status, await response.json()


async def test_readyz_follows_the_store(broker: Any, anonymous: aiohttp.ClientSession, redis_server: RedisServer) -> None:
    status, body = await _ready(anonymous)
    assert status == 200 and body["status"] == "ready", body
    redis_server.stop()
    status, body = await _ready(anonymous)
    assert status == 503 and body["status"] == "not ready"
    assert body["reason"].startswith("store unreachable: the redis store "), body
    redis_server.start()
    for _ in range(50):  # redis-py reconnects on the next command
        status, body = await _ready(anonymous)
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200, body
