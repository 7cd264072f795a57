"""The store contract suite over every built-in backend (Redis runs against a real redis-server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookmq.plugins.redis_store import RedisStoreSettings
from hookmq.plugins.redis_store.store import RedisStore
from hookmq.plugins.sqlite_store import SqliteStore
from hookmq.store.memory import MemoryStore
from hookmq.store.settings import StorageSettings
from hookmq.testing.redis import RedisServer
from hookmq.testing.redis_ha import ClusterSetup, SentinelSetup
from hookmq.testing.store_contract import StoreContract, StoreFactory


class TestMemoryStore(StoreContract):
    """The default in-memory backend; it keeps nothing across store objects."""

    persistent = False

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return MemoryStore


class TestSqliteStore(StoreContract):
    """The embedded persistent backend, acknowledging after each commit."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: SqliteStore(tmp_path / "state.sqlite3")


class TestSqliteStoreWriteBehind(StoreContract):
    """The SQLite backend in ``async`` durability: reads still see earlier writes."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        settings = StorageSettings(durability="async", write_batch_ms=2)
        return lambda: SqliteStore(tmp_path / "state.sqlite3", settings, synchronous="normal")


class TestRedisStore(StoreContract):
    """The Redis backend against a real redis-server on a free port."""

    @pytest.fixture
    def store_factory(self, redis_server: RedisServer) -> StoreFactory:
        options = RedisStoreSettings(url=redis_server.url, prefix="contract:")
        return lambda: RedisStore(options)


class TestRedisStoreWriteBehind(StoreContract):
    """The Redis backend in ``async`` durability, with a prefix holding glob characters."""

    @pytest.fixture
    def store_factory(self, redis_server: RedisServer) -> StoreFactory:
        options = RedisStoreSettings(url=redis_server.url, prefix="we[ird]*:")
        settings = StorageSettings(durability="async", write_batch_ms=2)
        return lambda: RedisStore(options, settings)


class TestRedisSentinelStore(StoreContract):
    """The Redis backend finding its primary through three real sentinels."""

    @pytest.fixture
    def store_factory(self, redis_sentinel: SentinelSetup) -> StoreFactory:
        options = RedisStoreSettings(
            sentinels=redis_sentinel.sentinel_addresses, service_name=redis_sentinel.service, prefix="sentinel:",
            wait_replicas=1,
        )
        return lambda: RedisStore(options)


class TestRedisClusterStore(StoreContract):
    """The Redis backend on a real three-primary Redis Cluster (hash-tagged keys, one transaction per slot)."""

    @pytest.fixture
    def store_factory(self, redis_cluster: ClusterSetup) -> StoreFactory:
        options = RedisStoreSettings(url=redis_cluster.url, cluster=True, prefix="cluster:")
        return lambda: RedisStore(options)


class TestRedisClusterStoreWriteBehind(StoreContract):
    """Redis Cluster in ``async`` durability, with a prefix holding glob characters."""

    @pytest.fixture
    def store_factory(self, redis_cluster: ClusterSetup) -> StoreFactory:
        options = RedisStoreSettings(url=redis_cluster.url, cluster=True, prefix="we[ird]*:")
        settings = StorageSettings(durability="async", write_batch_ms=2)
        return lambda: RedisStore(options, settings)
