"""``hookmq store migrate``: sqlite -> redis -> sqlite against a real redis-server."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
import redis

from hookmq.mqtt.packets import SubscriptionOptions
from hookmq.store import cli
from hookmq.store.base import Store
from hookmq.store.migrate import MigrationError, migrate, open_location, store_for_location
from hookmq.store.records import OutgoingRecord, SubscriptionRecord
from hookmq.testing.redis import RedisServer
from hookmq.testing.redis_ha import ClusterSetup
from hookmq.testing.store_contract import sample_message, sample_session

Snapshot = dict[str, object]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hookmq store")
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


async def _fill(location: str) -> None:
    store = await open_location(location)
    try:
        for n in range(12):
            client_id = f"client-{n}"
            await store.save_session(sample_session(client_id, disconnected_at=None if n % 2 else 1000.0 + n))
            await store.save_subscription(client_id, SubscriptionRecord(f"t/{n}/#", SubscriptionOptions(qos=n % 3), n + 1))
            await store.save_subscription(client_id, SubscriptionRecord("$share/g/all"))
            for packet_id in (7, 3, 9):
                message = sample_message(f"out/{n}/{packet_id}", qos=2, packet_id=packet_id)
                await store.save_outgoing(client_id, OutgoingRecord(packet_id, message, "pubrel" if packet_id == 3 else "publish"))
            await store.save_incoming(client_id, 100 + n)
            for index in range(n):
                await store.queue_append(client_id, sample_message(f"q/{n}/{index}"), limit=100)
        # Subscriptions of a client without a session record are copied too.
        await store.save_subscription("orphan", SubscriptionRecord("o/+"))
        for n in range(20):
            await store.save_retained(sample_message(f"retained/{n}", bytes([n]) * n, retain=True))
        await store.save_counters({"messages_received": 12345, "uptime": 3.5, "version": "0.1.0"})
    finally:
        await store.close()


async def _snapshot_of(store: Store) -> Snapshot:
    sessions = sorted(await store.list_sessions(), key=lambda s: s.client_id)
    subscriptions = {
        cid: sorted(subs, key=lambda s: s.topic_filter) for cid, subs in (await store.load_all_subscriptions()).items()
    }
    clients = [s.client_id for s in sessions]
    return {
        "sessions": sessions,
        "subscriptions": subscriptions,
        "outgoing": {cid: await store.load_outgoing(cid) for cid in clients},
        "incoming": {cid: await store.load_incoming(cid) for cid in clients},
        "queues": {cid: await store.queue_peek(cid) for cid in clients},
        "retained": sorted(await store.load_retained(), key=lambda m: m.publish.topic),
        "counters": await store.load_counters(),
    }


async def _snapshot(location: str) -> Snapshot:
    store = await open_location(location)
    try:
        return await _snapshot_of(store)
    finally:
        await store.close()


def _run(*argv: str) -> int:
    # The CLI calls asyncio.run itself, so it must run outside the test's event loop.
    return cli.run(_parse(*argv))


async def test_sqlite_to_redis_to_sqlite_keeps_everything(tmp_path: Path, redis_server: RedisServer) -> None:
    first, last = f"sqlite:{tmp_path / 'first.sqlite3'}", f"sqlite:{tmp_path / 'last.sqlite3'}"
    await _fill(first)
    original = await _snapshot(first)

    assert await asyncio.to_thread(_run, "migrate", "--from", first, "--to", redis_server.url, "--quiet") == 0
    assert await _snapshot(redis_server.url) == original

    assert await asyncio.to_thread(_run, "migrate", "--from", redis_server.url, "--to", last) == 0
    copied = await _snapshot(last)
    assert copied == original
    assert len(copied["sessions"]) == 12  # type: ignore[arg-type]
    assert "orphan" in copied["subscriptions"]  # type: ignore[operator]
    # Resend order survived both hops, not just the set of packet ids.
    assert [r.packet_id for r in copied["outgoing"]["client-4"]] == [7, 3, 9]  # type: ignore[index]


async def test_progress_bar_goes_to_stderr(tmp_path: Path, redis_server: RedisServer, capfd: pytest.CaptureFixture[str]) -> None:
    source = f"sqlite:{tmp_path / 's.sqlite3'}"
    await _fill(source)
    assert await asyncio.to_thread(_run, "migrate", "--from", source, "--to", redis_server.url) == 0
    out, err = capfd.readouterr()
    assert out == ""
    assert "migrating" in err and "sessions=12" in err and "retained=20" in err


async def test_non_empty_destination_is_refused_unless_cleared(tmp_path: Path, redis_server: RedisServer) -> None:
    source = f"sqlite:{tmp_path / 's.sqlite3'}"
    await _fill(source)
    stale = await open_location(redis_server.url)
    await stale.save_session(sample_session("stale"))
    await stale.close()

    assert await asyncio.to_thread(_run, "migrate", "--from", source, "--to", redis_server.url, "--quiet") == 2
    assert await asyncio.to_thread(
        _run, "migrate", "--from", source, "--to", redis_server.url, "--clear-destination", "--quiet"
    ) == 0
    assert await _snapshot(redis_server.url) == await _snapshot(source)


async def test_redis_prefixes_are_independent(redis_server: RedisServer) -> None:
    source = await open_location(redis_server.url, "a:")
    await source.save_retained(sample_message("only/here", retain=True))
    await source.close()
    args = ("migrate", "--from", redis_server.url, "--from-prefix", "a:", "--to", redis_server.url, "--to-prefix", "b:", "--quiet")
    assert await asyncio.to_thread(_run, *args) == 0
    copy = await open_location(redis_server.url, "b:")
    try:
        assert [m.publish.topic for m in await copy.load_retained()] == ["only/here"]
    finally:
        await copy.close()


@pytest.mark.parametrize("bad", ["memory", "memory:", "postgres://x", "sqlite:"])
def test_invalid_locations(bad: str, tmp_path: Path) -> None:
    with pytest.raises(MigrationError):
        asyncio.run(store_for_location(bad))
    assert _run("migrate", "--from", bad, "--to", f"sqlite:{tmp_path / 'x.sqlite3'}", "--quiet") == 2


def test_memory_is_refused_as_source_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("migrate", "--from", "memory", "--to", f"sqlite:{tmp_path / 'x.sqlite3'}") == 2
    assert "memory is not a valid location" in capsys.readouterr().err


def test_same_store_twice_is_refused(tmp_path: Path) -> None:
    location = f"sqlite:{tmp_path / 'x.sqlite3'}"
    assert _run("migrate", "--from", location, "--to", location, "--quiet") == 2


def test_unreachable_redis_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RedisServer() as server:
        url = server.url
    assert _run("migrate", "--from", f"sqlite:{tmp_path / 'x.sqlite3'}", "--to", url, "--quiet") == 2
    assert "cannot reach" in capsys.readouterr().err


async def test_migrate_function_reports_counts(tmp_path: Path) -> None:
    await _fill(f"sqlite:{tmp_path / 'a.sqlite3'}")
    source = await open_location(f"sqlite:{tmp_path / 'a.sqlite3'}")
    destination = await open_location(f"sqlite:{tmp_path / 'b.sqlite3'}", bulk=True)
    totals: list[int] = []
    steps: list[int] = []
    try:
        report = await migrate(source, destination, on_total=totals.append, on_progress=steps.append)
    finally:
        await destination.close()
        await source.close()
    assert report.sessions == 12 and report.subscriptions == 25 and report.outgoing == 36
    assert report.incoming == 12 and report.queued == sum(range(12)) and report.retained == 20 and report.counters == 3
    assert totals == [13 + 20 + 1] and sum(steps) == totals[0]


async def test_one_redis_to_a_redis_cluster_and_back(redis_server: RedisServer, redis_cluster: ClusterSetup) -> None:
    """The flat layout of one Redis (or Sentinel) moves to a Cluster's tagged layout, and back."""
    cluster = redis_cluster.url.replace("redis://", "redis-cluster://")
    await _fill(redis_server.url)
    original = await _snapshot(redis_server.url)
    assert await asyncio.to_thread(_run, "migrate", "--from", redis_server.url, "--to", cluster,
                                   "--clear-destination", "--quiet") == 0
    assert await _snapshot(cluster) == original
    node = redis_cluster.primary_of("hookmq:{c:client-3}:queue")
    keys = {key.decode() for key in redis.Redis(port=node.port).keys("hookmq:{c:client-3}:*")}
    assert keys == {f"hookmq:{{c:client-3}}:{kind}" for kind in ("session", "subs", "out", "outorder", "in", "queue")}
    back = f"redis://127.0.0.1:{redis_server.port}/1"
    assert await asyncio.to_thread(_run, "migrate", "--from", cluster, "--to", back, "--quiet") == 0
    assert await _snapshot(back) == original
