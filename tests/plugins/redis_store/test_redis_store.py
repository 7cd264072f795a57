"""The Redis store: key layout, group commit, plugin wiring and behaviour while Redis is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pydantic
import pytest
import pytest_asyncio
import redis

from hookmq.plugins import redis_store
from hookmq.plugins.redis_store.settings import RedisStoreSettings
from hookmq.plugins.redis_store.store import RedisStore, _client_kwargs
from hookmq.store.errors import StoreError, StoreUnavailable
from hookmq.store.records import OutgoingRecord, SubscriptionRecord
from hookmq.store.settings import StorageSettings
from hookmq.testing.redis import RedisServer
from hookmq.testing.store_contract import sample_message, sample_session


@pytest_asyncio.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    opened = RedisStore(RedisStoreSettings(url=redis_server.url, prefix="t:"))
    await opened.open()
    yield opened
    await opened.close()


def _exec_calls(server: RedisServer) -> int:
    stats = redis.Redis.from_url(server.url).info("commandstats")
    return int(stats.get("cmdstat_exec", {}).get("calls", 0))


async def test_key_layout_matches_the_documentation(store: RedisStore, redis_server: RedisServer) -> None:
    await store.save_session(sample_session("c:1"))
    await store.save_subscription("c:1", SubscriptionRecord("a/#"))
    await store.save_outgoing("c:1", OutgoingRecord(5, sample_message(qos=1, packet_id=5)))
    await store.save_incoming("c:1", 9)
    await store.queue_append("c:1", sample_message("q"), limit=10)
    await store.save_retained(sample_message("r", retain=True))
    await store.save_counters({"n": 1})
    keys = {key.decode() for key in redis.Redis.from_url(redis_server.url).keys("*")}
    assert keys == {
        "t:sessions", "t:subscribers", "t:subs:c:1", "t:out:c:1", "t:outorder:c:1",
        "t:in:c:1", "t:queue:c:1", "t:retained", "t:sys",
    }
    await store.delete_session("c:1")
    left = {key.decode() for key in redis.Redis.from_url(redis_server.url).keys("*")}
    assert left == {"t:retained", "t:sys"}  # Redis drops the emptied sessions hash
    assert await store.load_session("c:1") is None


async def test_concurrent_writes_share_transactions(store: RedisStore, redis_server: RedisServer) -> None:
    before = _exec_calls(redis_server)
    await asyncio.gather(*(store.save_incoming("c", packet_id) for packet_id in range(1, 1001)))
    transactions = _exec_calls(redis_server) - before
    assert await store.load_incoming("c") == list(range(1, 1001))
    # 1000 acknowledged writes; grouping must make that far fewer round trips.
    assert 1 <= transactions <= 100


async def test_clear_leaves_other_prefixes_alone(store: RedisStore, redis_server: RedisServer) -> None:
    other = RedisStore(RedisStoreSettings(url=redis_server.url, prefix="other:"))
    await other.open()
    try:
        await other.save_retained(sample_message("keep"))
        await store.save_retained(sample_message("drop"))
        await store.clear()
        assert await store.load_retained() == []
        assert [m.publish.topic for m in await other.load_retained()] == ["keep"]
    finally:
        await other.close()


async def test_open_fails_clearly_when_redis_is_down() -> None:
    with RedisServer() as server:
        url = server.url
    store = RedisStore(RedisStoreSettings(url=url, connect_timeout=1))
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        await store.open()


async def test_writes_fail_while_down_and_recover_after_restart() -> None:
    with RedisServer(appendonly=True) as server:
        store = RedisStore(RedisStoreSettings(url=server.url, connect_timeout=1, timeout=1, max_backoff=0.2))
        await store.open()
        try:
            await store.save_session(sample_session("before"))
            server.kill()
            with pytest.raises(StoreUnavailable):
                await store.save_session(sample_session("during"))
            # While backing off, operations fail at once instead of hanging.
            with pytest.raises(StoreUnavailable, match=r"down|unreachable"):
                await store.load_session("before")
            server.start()
            loaded = await _eventually(lambda: store.load_session("before"))
            assert loaded == sample_session("before")
            await store.save_session(sample_session("after"))
            assert await store.load_session("after") == sample_session("after")
            assert await store.load_session("during") is None
        finally:
            await store.close()


async def test_write_behind_loss_is_reported_by_flush() -> None:
    with RedisServer() as server:
        settings = StorageSettings(durability="async")
        store = RedisStore(RedisStoreSettings(url=server.url, connect_timeout=1, timeout=1), settings)
        await store.open()
        try:
            server.kill()
            await store.save_retained(sample_message("lost"))  # queued: returns without waiting
            with pytest.raises(StoreUnavailable):
                await store.flush()
        finally:
            await store.close()


async def _eventually(call: Callable[[], Any], attempts: int = 100) -> Any:
    """Retry ``call`` through the back-off window; bounded by attempts, not by time assertions."""
    for _ in range(attempts):
        try:
            return await call()
        except StoreUnavailable:
            await asyncio.sleep(0.05)
    return await call()


def test_plugin_registers_the_redis_backend(redis_server: RedisServer) -> None:
    registered: dict[str, Any] = {}
    settings = RedisStoreSettings(url=redis_server.url, prefix="p:")
    redis_store.register_stores(register=registered.__setitem__, settings=settings)

    class Config:
        storage = StorageSettings(backend="redis", durability="async")

    built = registered["redis"](Config())
    assert isinstance(built, RedisStore)
    assert built.keys.prefix == "p:" and built.storage.durability == "async"
    assert redis_store.plugin_settings_model() is RedisStoreSettings
    assert redis_store.HOOKMQ_DEFAULT_ENABLED is True


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(pydantic.ValidationError, match="prefx"):
        RedisStoreSettings.model_validate({"prefx": "x"})


def test_tls_and_credentials_reach_the_client() -> None:
    url, kwargs = _client_kwargs(
        RedisStoreSettings(
            url="redis://db.example:6380/2", tls=True, password=pydantic.SecretStr("s3cret"), username="broker",
            db=4, tls_ca_file="/ca.pem", tls_verify=False,
        )
    )
    assert url == "rediss://db.example:6380/2"
    assert kwargs["password"] == "s3cret" and kwargs["username"] == "broker" and kwargs["db"] == 4
    assert kwargs["ssl_ca_certs"] == "/ca.pem" and kwargs["ssl_cert_reqs"] == "none"
    plain_url, plain = _client_kwargs(RedisStoreSettings(url="redis://h:1/0"))
    assert plain_url == "redis://h:1/0" and not any(key.startswith("ssl") for key in plain)


def test_password_is_hidden_in_messages() -> None:
    store = RedisStore(RedisStoreSettings(url="redis://:hunter2@127.0.0.1:1/0"))
    assert "hunter2" not in store.where and "***" in store.where


async def test_a_failing_command_fails_only_its_operation(store: RedisStore, redis_server: RedisServer) -> None:
    redis.Redis.from_url(redis_server.url).set("t:queue:broken", "not a list")
    results = await asyncio.gather(store.queue_length("broken"), store.save_incoming("fine", 1), return_exceptions=True)
    assert isinstance(results[0], StoreError) and "WRONGTYPE" in str(results[0])
    assert results[1] is None and await store.load_incoming("fine") == [1]


async def test_wait_replicas_confirms_a_write_only_once_a_replica_has_it() -> None:
    with RedisServer() as primary, RedisServer(extra=["--replicaof", "127.0.0.1", str(primary.port)]) as replica:
        await _replica_online(primary)
        store = RedisStore(RedisStoreSettings(url=primary.url, wait_replicas=1, wait_timeout=1.0, max_backoff=0.2))
        await store.open()
        try:
            await store.save_session(sample_session("confirmed"))
            replica.stop()
            with pytest.raises(StoreUnavailable, match="0 of 1 replicas confirmed"):
                await store.save_session(sample_session("unconfirmed"))
            replica.start()
            await _replica_online(primary)
            await store.save_session(sample_session("confirmed-again"))
            assert {s.client_id for s in await store.list_sessions()} >= {"confirmed", "confirmed-again"}
        finally:
            await store.close()


async def _replica_online(primary: RedisServer) -> None:
    client = redis.Redis.from_url(primary.url)
    for _ in range(200):
        if client.info("replication").get("slave0", {}).get("state") == "online":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica did not come online")


def test_banner_names_the_topology() -> None:
    sentinel = RedisStore(RedisStoreSettings(url="redis://:pw@x:1/2", sentinels=["10.0.0.1:26379"], service_name="main"))
    assert sentinel.describe() == "redis: 'main' via sentinels 10.0.0.1:26379 (key prefix 'hookmq:')"
    cluster = RedisStore(RedisStoreSettings(url="redis://:pw@10.0.0.5:7000", cluster=True, nodes=["10.0.0.6:7000"]))
    assert cluster.describe() == "redis: cluster redis://10.0.0.5:7000,10.0.0.6:7000 (key prefix 'hookmq:')"
    assert "pw" not in cluster.where and cluster.keys.tagged and not sentinel.keys.tagged
