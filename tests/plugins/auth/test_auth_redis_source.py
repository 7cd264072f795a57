"""The Redis source against a real redis-server: layout, prefix, cache TTL and failing closed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from auth_helpers import ClientRecord, cheap_hash
from broker_helpers import raw, running_broker

from hookmq.mqtt.packets import Connect
from hookmq.plugins.auth.service import AuthService
from hookmq.plugins.auth.settings import AuthSettings
from hookmq.plugins.auth.sources import RedisSource, SourceUnavailableError
from hookmq.testing.redis import RedisServer

PREFIX = "test:auth:"


class ManualClock:
    """A clock the test moves by hand, so TTL expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """A separate connection that edits users and rules as an operator would."""
    client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


def settings(url: str, **overrides: Any) -> AuthSettings:
    return AuthSettings.model_validate(
        {"source": "redis", "redis_url": url, "redis_prefix": PREFIX, "cache_ttl": 5.0, **overrides}
    )


@pytest.fixture
async def auth(redis_server: RedisServer) -> AsyncIterator[tuple[AuthService, ManualClock]]:
    clock = ManualClock()
    config = settings(redis_server.url)
    service = AuthService(config, source=RedisSource(config, clock=clock), clock=clock)
    yield service, clock
    await service.close()


def alice() -> tuple[ClientRecord, Connect]:
    return ClientRecord(username="alice"), Connect(client_id="c1", username="alice", password=b"wonderland")


async def test_users_come_from_the_users_hash(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, clock = auth
    assert await service.authenticate(*alice()) is False
    await admin.hset(PREFIX + "users", "alice", cheap_hash("wonderland"))
    await admin.hset(PREFIX + "users", "bob", cheap_hash("builder"))
    # bob was never looked up, so he is read at once; alice's absence is cached for the TTL.
    bob = ClientRecord(username="bob")
    assert await service.authenticate(bob, Connect(username="bob", password=b"builder")) is True
    assert await service.authenticate(*alice()) is False
    clock.now += 6
    assert await service.authenticate(*alice()) is True


async def test_user_changes_apply_after_the_ttl(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, clock = auth
    await admin.hset(PREFIX + "users", "alice", cheap_hash("wonderland"))
    assert await service.authenticate(*alice()) is True
    await admin.hset(PREFIX + "users", "alice", cheap_hash("changed"))
    assert await service.authenticate(*alice()) is True  # still cached
    clock.now += 6
    assert await service.authenticate(*alice()) is False


async def test_rules_come_from_the_acl_list_and_reload_after_the_ttl(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, clock = auth
    client, _ = alice()
    await admin.rpush(PREFIX + "acl", json.dumps({"topic": "users/%u/#"}))
    assert await service.authorise(client, "users/alice/x", True) is True
    assert await service.authorise(client, "news", True) is None
    await admin.rpush(PREFIX + "acl", json.dumps({"topic": "news", "access": "write"}))
    await admin.rpush(PREFIX + "acl", json.dumps({"topic": "users/alice/secret", "effect": "deny"}))
    assert await service.authorise(client, "news", True) is None  # cached rules
    clock.now += 6
    assert await service.authorise(client, "news", True) is True
    assert await service.authorise(client, "users/alice/secret", True) is False


async def test_an_invalid_rule_list_keeps_the_previous_rules(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, clock = auth
    client, _ = alice()
    await admin.rpush(PREFIX + "acl", json.dumps({"topic": "a"}))
    assert await service.authorise(client, "a", True) is True
    await admin.rpush(PREFIX + "acl", json.dumps({"topic": "a", "effect": "deny", "typo": 1}))
    clock.now += 6
    assert await service.authorise(client, "a", True) is True


async def test_an_unusable_hash_in_redis_refuses_the_login(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, _ = auth
    await admin.hset(PREFIX + "users", "alice", "wonderland")
    assert await service.authenticate(*alice()) is False


async def test_certificate_only_user_is_an_empty_value(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, _ = auth
    await admin.hset(PREFIX + "users", "alice", "")
    entry = await service.source.user("alice")
    assert entry is not None and entry.password is None
    assert await service.authenticate(*alice()) is False


async def test_other_prefixes_are_not_read(
    auth: tuple[AuthService, ManualClock], admin: redis.asyncio.Redis
) -> None:
    service, _ = auth
    await admin.hset("hookmq:auth:users", "alice", cheap_hash("wonderland"))
    assert await service.authenticate(*alice()) is False


async def test_unreachable_redis_fails_closed(redis_server: RedisServer) -> None:
    config = settings(redis_server.url)
    redis_server.stop()
    service = AuthService(config)
    try:
        assert await service.authenticate(*alice()) is False
        assert await service.authorise(alice()[0], "a", True) is False
        with pytest.raises(SourceUnavailableError):
            await service.source.user("alice")
    finally:
        await service.close()


async def test_broker_with_redis_source_picks_up_changes_without_restart(
    redis_server: RedisServer, admin: redis.asyncio.Redis
) -> None:
    table = {"source": "redis", "redis_url": redis_server.url, "redis_prefix": PREFIX, "cache_ttl": 0}
    await admin.hset(PREFIX + "users", "alice", cheap_hash("wonderland"))
    await admin.rpush(PREFIX + "acl", json.dumps({"topic": "users/%u/#"}))
    async with running_broker(table) as broker:
        client, code = await raw(broker, 5, "alice", b"wonderland", client_id="r1")
        assert code == 0
        assert (await client.subscribe("news/#", qos=1)).reason_codes == (0x87,)
        await admin.rpush(PREFIX + "acl", json.dumps({"topic": "news/#", "access": "read"}))
        assert (await client.subscribe("news/#", qos=1)).reason_codes == (1,)
        await client.disconnect()
        await admin.hset(PREFIX + "users", "alice", cheap_hash("changed"))
        client, code = await raw(broker, 5, "alice", b"wonderland", client_id="r2")
        assert code == 0x86
        await client.close()
