"""The fenced store on a real Redis Cluster: client ids of any form (empty, with ``{`` or ``}``) claim, write, read and delete.

Every fenced key comes from the store's own tagged layout (`KeyLayout.client_key`), so one
client's script touches one slot whatever its id, and the indexes beside it land in theirs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis

from hookmq.mqtt.packets import Publish
from hookmq.plugins.redis_store.fenced import FencedRedisStore
from hookmq.plugins.redis_store.keys import KeyLayout
from hookmq.plugins.redis_store.settings import RedisStoreSettings
from hookmq.store.records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from hookmq.testing.redis_ha import ClusterSetup

ODD_IDS = ("plain", "", "}", "a}b", "{x}", "{", "c:1", "ünï")


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[ClusterSetup]:
    with ClusterSetup(primaries=3) as setup:
        yield setup


@pytest_asyncio.fixture
async def two_nodes(redis_cluster: ClusterSetup) -> AsyncIterator[tuple[FencedRedisStore, FencedRedisStore]]:
    options = RedisStoreSettings(url=redis_cluster.url, cluster=True, prefix="fc:")
    a, b = FencedRedisStore(options), FencedRedisStore(options)
    await a.open()
    await a.clear()
    await b.open()
    yield a, b
    await a.close()
    await b.close()


def test_the_fenced_keys_are_the_tagged_layouts_keys(redis_cluster: ClusterSetup) -> None:
    layout = KeyLayout("fc:", tagged=True)
    fenced = FencedRedisStore(RedisStoreSettings(url=redis_cluster.url, cluster=True, prefix="fc:")).keys
    with redis.Redis(port=redis_cluster.servers[0].port) as client:
        for client_id in ODD_IDS:
            keys = [fenced.owner(client_id), fenced.session(client_id), *fenced.client_keys(client_id)]
            assert keys == [layout.client_key(client_id, kind) for kind in
                            ("owner", "session", "subs", "out", "outorder", "in", "inpend", "queue", "done")]
            assert len({client.execute_command("CLUSTER", "KEYSLOT", key) for key in keys}) == 1, client_id


async def test_odd_client_ids_are_claimed_written_fenced_and_deleted_on_a_cluster(
        two_nodes: tuple[FencedRedisStore, FencedRedisStore]) -> None:
    a, b = two_nodes
    for client_id in ODD_IDS:
        await a.claim(client_id, "A")
        await a.save_session(SessionRecord(client_id, 5, False, 300, node="A"))
        await a.save_subscription(client_id, SubscriptionRecord("t/#"))
        message = StoredMessage(Publish("t/1", client_id.encode(), 2), 1.0, identity=b"n/1")
        await a.save_outgoing(client_id, OutgoingRecord(3, message))
        await a.save_incoming(client_id, 9)
        assert await a.queue_append(client_id, message, 10) is None
        await a.complete_outgoing(client_id, 4, b"n/0")
    await a.flush()
    assert sorted(s.client_id for s in await b.list_sessions()) == sorted(ODD_IDS)
    assert sorted(await b.load_all_subscriptions()) == sorted(ODD_IDS)
    assert (await b.owners()).keys() == set(ODD_IDS)
    for client_id in ODD_IDS:
        assert await b.owner(client_id) == ("A", 1)
        assert [r.message.publish.payload for r in await b.load_outgoing(client_id)] == [client_id.encode()]
        assert await b.load_incoming(client_id) == [9]
        assert [m.identity for m in await b.queue_peek(client_id)] == [b"n/1"]
        assert await b.load_completed(client_id) == [b"n/0"]
        await b.claim(client_id, "B")
        await a.save_session(SessionRecord(client_id, 5, False, 1, node="A"))  # stale: refused
        await a.delete_session(client_id)  # stale: refused
    await a.flush()
    for client_id in ODD_IDS:
        stored = await b.load_session(client_id)
        assert stored is not None and stored.node == "A" and stored.expiry_interval == 300
        await b.delete_session(client_id)
    await b.flush()
    for client_id in ODD_IDS:
        assert await b.load_session(client_id) is None
        assert await b.load_outgoing(client_id) == [] and await b.queue_peek(client_id) == []
        assert await b.load_completed(client_id) == []
        assert await b.owner(client_id) == ("B", 2)  # the epoch outlives the session
