"""The tagged key layout on a real Redis Cluster: one slot per client, scripts that stay atomic.

These are the guarantees other code building on the store relies on (a session claim keyed by
client id, the cluster's versioned retained keys): see docs/storage.md "Key layout".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import redis

from hookmq.plugins.redis_store.connect import connect
from hookmq.plugins.redis_store.keys import KeyLayout
from hookmq.plugins.redis_store.settings import RedisStoreSettings
from hookmq.plugins.redis_store.store import RedisStore
from hookmq.testing.redis_ha import ClusterSetup
from hookmq.testing.store_contract import sample_session

ODD_IDS = ("plain", "", "}", "a}b", "{x}", "c:1", "ünï")


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[ClusterSetup]:
    with ClusterSetup(primaries=3) as setup:
        yield setup


@pytest_asyncio.fixture
async def store(redis_cluster: ClusterSetup) -> AsyncIterator[RedisStore]:
    opened = RedisStore(RedisStoreSettings(url=redis_cluster.url, cluster=True, prefix="lay:"))
    await opened.open()
    await opened.clear()
    yield opened
    await opened.close()


def _slot(cluster: ClusterSetup, key: str) -> int:
    with redis.Redis(port=cluster.servers[0].port) as client:
        return int(client.execute_command("CLUSTER", "KEYSLOT", key))


def test_every_key_of_a_client_is_in_one_slot_whatever_its_id(redis_cluster: ClusterSetup) -> None:
    layout = KeyLayout("lay:", tagged=True)
    slots_of_clients = set()
    for client_id in ODD_IDS:
        keys = [*layout.client_keys(client_id), layout.client_key(client_id, "owner")]
        slots = {_slot(redis_cluster, key) for key in keys}
        assert len(slots) == 1, (client_id, keys)
        slots_of_clients |= slots
    assert len(slots_of_clients) > 1  # different clients spread over slots
    retained = {_slot(redis_cluster, layout.shared_key("cluster:retained", name)) for name in ("versions", "messages")}
    assert len(retained) == 1


# A claim in the style of a session owner/epoch script: both keys of one client, one atomic step.
_CLAIM = """
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return epoch
"""


async def test_a_script_over_one_clients_keys_runs_through_the_store(store: RedisStore) -> None:
    for client_id in ODD_IDS:
        owner, session = store.keys.client_key(client_id, "owner"), store.keys.session(client_id)
        first = await store._read(lambda r: r[0], ("EVAL", _CLAIM, 2, owner, session, "node-a", b"x"))
        second = await store._read(lambda r: r[0], ("EVAL", _CLAIM, 2, owner, session, "node-b", b"x"))
        assert (first, second) == (1, 2)


async def test_an_operation_spanning_slots_lands_in_every_slot(store: RedisStore, redis_cluster: ClusterSetup) -> None:
    index = store.keys.shared_key("idx", "sessions")
    session = store.keys.session("spanning")
    assert _slot(redis_cluster, index) != _slot(redis_cluster, session)
    await store._write(("SET", session, b"record"), ("SADD", index, "spanning"))
    backend = connect(store.options)
    try:
        client: Any = backend.client
        assert await client.get(session) == b"record"
        assert await client.smembers(index) == {b"spanning"}
    finally:
        await backend.aclose()


async def test_versioned_retained_script_on_shared_keys(redis_cluster: ClusterSetup) -> None:
    """A compare-and-set over two shared keys, as the cluster's retained versions need, on a Cluster."""
    options = RedisStoreSettings(url=redis_cluster.url, cluster=True, prefix="lay:")
    layout = KeyLayout(options.prefix, tagged=True)
    backend = connect(options)
    cas = backend.client.register_script(
        "local held = redis.call('HGET', KEYS[1], ARGV[1]) "
        "if held and held >= ARGV[2] then return 0 end "
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) return 1"
    )
    keys = [layout.shared_key("cluster:retained", "versions"), layout.shared_key("cluster:retained", "messages")]
    try:
        assert await cas(keys=keys, args=["t", "00000000000000000002", "new"]) == 1
        assert await cas(keys=keys, args=["t", "00000000000000000001", "old"]) == 0
        client: Any = backend.client
        assert await client.hget(keys[1], "t") == b"new"
    finally:
        await backend.aclose()


async def test_sessions_are_listed_by_scanning_every_primary(store: RedisStore) -> None:
    for client_id in ODD_IDS:
        await store.save_session(sample_session(client_id))
    assert sorted(s.client_id for s in await store.list_sessions()) == sorted(ODD_IDS)
