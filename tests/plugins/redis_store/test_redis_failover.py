"""The Redis store through a failover of its primary, under load, on real Sentinel and Cluster setups.

Writers append numbered messages to offline queues as fast as the store confirms them while the
primary is failed over (by command, or by SIGKILL); afterwards a new store object must find every
message whose write was confirmed. The servers run with ``appendfsync always`` and
``min-replicas-to-write 1``, and the store with ``wait_replicas = 1``.

By default one run per topology (Sentinel's FAILOVER command, a Cluster primary killed); the
other two are ``-m slow`` (the broker-level tests cover the coordinated Cluster failover).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from hookmq.mqtt.packets import Publish
from hookmq.plugins.redis_store.settings import RedisStoreSettings
from hookmq.plugins.redis_store.store import RedisStore
from hookmq.store.errors import StoreError
from hookmq.store.records import StoredMessage
from hookmq.testing.redis_ha import ClusterSetup, SentinelSetup

#: Writes confirmed before the failover starts, and after it is over, per run.
BEFORE, AFTER = 100, 100

#: The longest any run may take (the failover included).
RUN_TIMEOUT = 90.0

CLIENTS = ("alpha", "beta", "gamma", "delta")


@dataclass
class Load:
    """What the writers had confirmed, and the longest pause between two confirmations."""

    confirmed: dict[str, list[int]] = field(default_factory=lambda: {c: [] for c in CLIENTS})
    refused: int = 0
    #: Per client, the longest pause between two of its confirmed writes, and its last one.
    longest_gap: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLIENTS, 0.0))
    last: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLIENTS, time.monotonic()))

    @property
    def total(self) -> int:
        return sum(len(numbers) for numbers in self.confirmed.values())


def _message(number: int) -> StoredMessage:
    return StoredMessage(Publish(topic="load", payload=str(number).encode(), qos=1), received_at=time.time())


async def _write_through(store: RedisStore, failover: Callable[[], Awaitable[None]]) -> Load:
    """Writers on every client until AFTER confirmations follow the end of ``failover``."""
    load = Load()
    done = asyncio.Event()
    phase = {"after_from": -1}

    async def writer(client_id: str) -> None:
        number = 0
        while not done.is_set():
            number += 1
            try:
                await store.queue_append(client_id, _message(number), limit=1_000_000)
            except StoreError:
                load.refused += 1
                await asyncio.sleep(0.02)
                continue
            now = time.monotonic()
            load.longest_gap[client_id] = max(load.longest_gap[client_id], now - load.last[client_id])
            load.last[client_id] = now
            load.confirmed[client_id].append(number)
            if phase["after_from"] >= 0 and load.total >= phase["after_from"] + AFTER:
                done.set()

    async def conductor() -> None:
        while load.total < BEFORE:
            await asyncio.sleep(0.01)
        await failover()
        phase["after_from"] = load.total

    async with asyncio.timeout(RUN_TIMEOUT):
        await asyncio.gather(conductor(), *(writer(c) for c in CLIENTS))
    return load


async def _all_found(options: RedisStoreSettings, load: Load) -> dict[str, list[int]]:
    """Per client, the confirmed numbers missing from its queue as a new store object reads it."""
    again = RedisStore(options)
    await again.open()
    try:
        missing = {}
        for client_id, numbers in load.confirmed.items():
            stored = {int(m.publish.payload) for m in await again.queue_peek(client_id)}
            missing[client_id] = [n for n in numbers if n not in stored]
        return missing
    finally:
        await again.close()


def _report(what: str, load: Load) -> None:
    gaps = ", ".join(f"{client} {gap:.2f}" for client, gap in load.longest_gap.items())
    print(f"\n{what}: {load.total} writes confirmed ({load.refused} refused, retried), all found; "
          f"longest pause between one client's confirmations, s: {gaps} ({CLIENTS[0]} on the failed primary)")


def _sentinel_options(setup: SentinelSetup) -> RedisStoreSettings:
    return RedisStoreSettings(
        sentinels=setup.sentinel_addresses, service_name=setup.service, prefix="fo:", wait_replicas=1,
        wait_timeout=0.5, connect_timeout=0.5, timeout=1, max_backoff=0.2,
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["sentinel-failover", pytest.param("kill-primary", marks=pytest.mark.slow)])
async def test_sentinel_failover_under_load_loses_no_confirmed_write(how: str) -> None:
    with SentinelSetup() as setup:
        options = _sentinel_options(setup)
        store = RedisStore(options)
        await store.open()

        async def failover() -> None:
            if how == "sentinel-failover":
                await asyncio.to_thread(setup.failover)
                return
            old = setup.server(setup.primary_port())
            old.kill()
            await asyncio.to_thread(_wait_new_primary, setup, old.port)
            old.start()  # back as a replica: min-replicas-to-write lets the new primary write again
            await asyncio.to_thread(setup.wait_settled, setup.primary_port())

        try:
            load = await _write_through(store, failover)
        finally:
            await store.close()
        _report(f"sentinel {how}", load)
        assert load.total >= BEFORE + AFTER
        assert await _all_found(options, load) == {c: [] for c in CLIENTS}


def _wait_new_primary(setup: SentinelSetup, old_port: int) -> None:
    deadline = time.monotonic() + 30
    while setup.primary_port() == old_port:
        if time.monotonic() > deadline:
            raise TimeoutError("the sentinels did not promote the replica")
        time.sleep(0.05)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", [pytest.param("cluster-failover", marks=pytest.mark.slow), "kill-primary"])
async def test_cluster_failover_under_load_loses_no_confirmed_write(how: str) -> None:
    with ClusterSetup(primaries=3, replicas_each=1) as cluster:
        options = RedisStoreSettings(
            url=cluster.url, nodes=cluster.addresses[1:], cluster=True, prefix="fo:", wait_replicas=1,
            wait_timeout=0.5, connect_timeout=0.5, timeout=1, max_backoff=0.2,
        )
        store = RedisStore(options)
        await store.open()
        victim = cluster.primary_of(store.keys.queue(CLIENTS[0]))

        async def failover() -> None:
            replica = cluster.replica_of(victim)
            if how == "cluster-failover":
                await asyncio.to_thread(cluster.failover_to, replica)
                return
            victim.kill()
            await asyncio.to_thread(cluster.wait_primary, replica)
            victim.start()  # rejoins as the new primary's replica
            await asyncio.to_thread(cluster.wait_ok)

        try:
            load = await _write_through(store, failover)
        finally:
            await store.close()
        _report(f"cluster {how}", load)
        assert load.total >= BEFORE + AFTER
        assert await _all_found(options, load) == {c: [] for c in CLIENTS}
