"""A broker killed with SIGKILL under load loses nothing it acknowledged (issue 6).

The broker runs as a real process with a persistent store. A publisher pushes QoS 1 (or 2)
messages as fast as its window allows and records every acknowledgement; at a random point
the broker is killed. After a restart with the same configuration, persistent subscribers that
resume their sessions must receive every acknowledged message, redelivered inflight messages
must carry DUP = 1, and subscriptions and retained messages must still be there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import pytest
from durability_helpers import (
    BrokerFactory,
    BrokerProcess,
    DurableRedis,
    PublishRun,
    collect_until,
    connect,
    duplicates_without_dup,
    index_of,
    indexes,
    publish_pipelined,
    redis_config,
    settle,
    sqlite_config,
)

from hookmq.mqtt.packets import Properties, Pubcomp, Publish, Pubrec, Pubrel, Will
from hookmq.testing.raw import RawClient

#: Messages the publisher tries to send; the broker dies somewhere in the middle.
COUNT = 1500
#: Receive Maximum of the online subscriber that never acknowledges: its inflight window.
WINDOW = 10
MARKER = b"end"
MQTT = {"max_queued_messages": COUNT + 100}


def _config(backend: str, tmp_path: Path, redis: DurableRedis | None) -> Path:
    if backend == "sqlite":
        return sqlite_config(tmp_path, mqtt=MQTT)
    assert redis is not None
    return redis_config(tmp_path, redis, mqtt=MQTT)


def _store_redis(backend: str, request: pytest.FixtureRequest) -> DurableRedis | None:
    """The fsync-always Redis, only for the redis backend."""
    if backend != "redis":
        return None
    server: DurableRedis = request.getfixturevalue("durable_redis")
    return server


async def _drain_until_closed(client: RawClient, into: list[Publish]) -> None:
    """Read messages without acknowledging them until the broker's death closes the socket."""
    with contextlib.suppress(EOFError, ConnectionError, OSError, TimeoutError):
        while True:
            into.append(await client.receive_message(timeout=30, ack=False))


async def _kill_when(broker: BrokerProcess, run: PublishRun, acked: int) -> None:
    """SIGKILL the broker once ``acked`` messages have been acknowledged."""
    while len(run.acked) < acked and broker.running:
        await asyncio.sleep(0.001)
    broker.kill()


async def _prepare(port: int, qos: int) -> RawClient:
    """A retained message, an offline v3.1.1 persistent subscriber, an online v5 one."""
    setup, _ = await connect(port, "setup")
    ack = await setup.publish("keep/r1", b"r1", qos=1, retain=True)
    assert ack is not None and ack.reason_code < 0x80
    await setup.disconnect()
    offline, present = await connect(port, "offline", level=4, clean=False)
    assert not present
    assert (await offline.subscribe("load/#", qos=qos)).reason_codes == (qos,)
    await offline.disconnect()
    live, _ = await connect(port, "live", clean=False, expiry=300, receive_maximum=WINDOW)
    assert (await live.subscribe("load/#", qos=qos)).reason_codes == (qos,)
    return live


async def _load_and_kill(broker: BrokerProcess, live: RawClient, qos: int, seed: int) -> tuple[PublishRun, list[Publish]]:
    """Publish until the broker is killed at a random acknowledgement count."""
    seen_before: list[Publish] = []
    reader = asyncio.create_task(_drain_until_closed(live, seen_before))
    publisher, _ = await connect(broker.port, "publisher")
    run = PublishRun()
    kill_after = random.Random(seed).randint(COUNT // 5, 4 * COUNT // 5)
    killer = asyncio.create_task(_kill_when(broker, run, kill_after))
    await asyncio.wait_for(publish_pipelined(publisher, "load/{}", COUNT, qos=qos, run=run), 60)
    await asyncio.wait_for(killer, 30)
    await asyncio.wait_for(reader, 30)
    await publisher.close()
    await live.close()
    return run, seen_before


@pytest.mark.timeout(90)
# QoS 2 only on SQLite: the store calls are the same, and each case costs a few seconds.
@pytest.mark.parametrize(("backend", "qos"), [("sqlite", 1), ("sqlite", 2), ("redis", 1)])
async def test_acknowledged_messages_survive_sigkill(backend: str, qos: int, tmp_path: Path, brokers: BrokerFactory,
                                                     request: pytest.FixtureRequest) -> None:
    seed = random.randrange(1 << 30)
    broker = brokers(_config(backend, tmp_path, _store_redis(backend, request)))
    live = await _prepare(broker.port, qos)
    run, seen_before = await _load_and_kill(broker, live, qos, seed)
    assert len(run.acked) < COUNT, f"the broker was killed after publishing ended (seed {seed})"
    assert run.acked, "nothing was acknowledged before the kill"
    assert len(seen_before) == WINDOW  # the window filled and nothing was acknowledged

    broker.start()
    live, live_present = await connect(broker.port, "live", clean=False, expiry=300, receive_maximum=WINDOW)
    offline, offline_present = await connect(broker.port, "offline", level=4, clean=False)
    assert live_present and offline_present
    marker, _ = await connect(broker.port, "marker")
    ack = await marker.publish("load/marker", MARKER, qos=1)
    assert ack is not None and ack.reason_code < 0x80
    live_after = await collect_until(live, MARKER)
    offline_after = await collect_until(offline, MARKER)

    context = f"seed {seed}, {len(run.acked)} acknowledged; log: {broker.log_path}"
    assert run.acked <= set(indexes(live_after)), f"online subscriber lost acknowledged messages ({context})"
    assert run.acked <= set(indexes(offline_after)), f"offline subscriber lost acknowledged messages ({context})"
    assert duplicates_without_dup(live_after) == []
    # Sent before the crash and stored (their publisher was acknowledged): resent with DUP = 1.
    resent = {index_of(m): m.dup for m in reversed(live_after) if m.payload.startswith(b"m")}
    assert all(resent[i] for i in indexes(seen_before) if i in run.acked)
    assert duplicates_without_dup(offline_after) == []
    assert all(m.qos == qos for m in live_after[:-1] + offline_after[:-1])

    reader, _ = await connect(broker.port, "retained-reader")
    await reader.subscribe("keep/#", qos=1)
    retained = await reader.receive_message(timeout=10)
    assert (retained.topic, retained.payload, retained.retain) == ("keep/r1", b"r1", True)
    for client in (live, offline, marker, reader):
        await client.disconnect()


@pytest.mark.timeout(60)
async def test_inflight_redelivered_with_dup_after_sigkill(tmp_path: Path, brokers: BrokerFactory) -> None:
    """Messages sent but not acknowledged before a crash come back with DUP = 1 (MQTT 5 §4.4)."""
    broker = brokers(sqlite_config(tmp_path))
    live, _ = await connect(broker.port, "live", clean=False, expiry=300)
    await live.subscribe("dup/#", qos=1)
    publisher, _ = await connect(broker.port, "publisher")
    for index in range(3):
        ack = await publisher.publish(f"dup/{index}", f"m{index:06d}".encode(), qos=1)
        assert ack is not None and ack.reason_code < 0x80
    first = [await live.receive_message(ack=False) for _ in range(3)]
    assert [m.dup for m in first] == [False, False, False]
    broker.kill()
    await live.close()
    await publisher.close()

    broker.start()
    live, present = await connect(broker.port, "live", clean=False, expiry=300)
    assert present
    again = [await live.receive_message() for _ in range(3)]
    assert [(m.packet_id, m.payload) for m in again] == [(m.packet_id, m.payload) for m in first]
    assert [m.dup for m in again] == [True, True, True]
    await live.disconnect()


@pytest.mark.timeout(60)
async def test_acknowledged_subscription_survives_sigkill(tmp_path: Path, brokers: BrokerFactory) -> None:
    """SUBACK means the subscription is stored: a crash right after it must not lose it."""
    broker = brokers(sqlite_config(tmp_path))
    subscriber, _ = await connect(broker.port, "subscriber", clean=False, expiry=300)
    assert (await subscriber.subscribe("sub/#", qos=1)).reason_codes == (1,)
    broker.kill()
    await subscriber.close()

    broker.start()
    publisher, _ = await connect(broker.port, "publisher")
    ack = await publisher.publish("sub/1", b"kept", qos=1)
    assert ack is not None and ack.reason_code == 0  # 0x10 would mean: no subscriber any more
    await publisher.disconnect()


@pytest.mark.timeout(60)
async def test_qos2_packet_id_acknowledged_by_pubrec_survives_sigkill(tmp_path: Path, brokers: BrokerFactory) -> None:
    """After PUBREC the broker owns the exactly-once state: PUBREL after a crash still finds it.

    A single try can pass by luck (the id is committed a moment after PUBREC), so it is tried
    several times; every try must find the id.
    """
    broker = brokers(sqlite_config(tmp_path))
    codes = []
    for attempt in range(4):
        publisher, _ = await connect(broker.port, "qos2-publisher", clean=False, expiry=300)
        packet_id = 100 + attempt
        await publisher.send(Publish("q2/x", b"exactly once", 2, False, False, packet_id))
        assert (await publisher.expect(Pubrec)).reason_code < 0x80
        broker.kill()
        await publisher.close()
        broker.start()
        publisher, present = await connect(broker.port, "qos2-publisher", clean=False, expiry=300)
        assert present
        await publisher.send(Pubrel(packet_id))
        codes.append((await publisher.expect(Pubcomp)).reason_code)
        await publisher.disconnect()
    assert codes == [0, 0, 0, 0]  # 0x92 would be "packet identifier not found"


@pytest.mark.timeout(60)
async def test_will_of_a_client_cut_off_by_the_crash_is_sent_after_restart(tmp_path: Path,
                                                                             brokers: BrokerFactory) -> None:
    """The crash ended the connection without DISCONNECT: the stored will goes out after the restart."""
    broker = brokers(sqlite_config(tmp_path))
    watcher, _ = await connect(broker.port, "watcher", clean=False, expiry=300)
    await watcher.subscribe("will/#", qos=1)
    await settle(watcher)
    await watcher.disconnect()
    dying, connack = await RawClient.connect("127.0.0.1", broker.port, "dying", level=5, clean_start=False,
                                             will=Will("will/dying", b"gone", 1, False),
                                             properties=Properties(session_expiry_interval=300))
    assert connack.reason_code == 0
    await settle(dying)
    broker.kill()
    await dying.close()

    broker.start()
    watcher, present = await connect(broker.port, "watcher", clean=False, expiry=300)
    assert present
    will = await watcher.receive_message(timeout=10)
    assert (will.topic, will.payload, will.qos) == ("will/dying", b"gone", 1)
    await watcher.disconnect()
