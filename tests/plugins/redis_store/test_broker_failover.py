"""A real broker on a shared Redis whose primary fails over while MQTT clients publish to it.

A paho-mqtt publisher sends QoS 1 messages to a persistent session that is offline (its
subscriber left), through a ``hookmq`` process storing in Redis Sentinel or Redis Cluster with
``durability = "ack_after_write"`` and ``wait_replicas = 1``, the servers running with
``appendfsync always`` and ``min-replicas-to-write 1``. The primary is failed over mid-stream;
then the broker is killed with SIGKILL, a new broker process starts on the same store, and the
subscriber comes back: every message the first broker PUBACKed with success must arrive.

Slow (``-m slow``): the Sentinel runs (each ~30 s: Sentinel re-attaches the old primary as a
replica only on its next 10 s INFO round, and until then ``min-replicas-to-write`` holds writes)
and the Cluster kill (~25 s). The coordinated CLUSTER FAILOVER (~10 s) runs by default.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hookmq.testing.process import BrokerProcess
from hookmq.testing.redis_ha import ClusterSetup, SentinelSetup

#: Messages PUBACKed before the failover starts, and after it is over.
BEFORE, AFTER = 200, 200

#: QoS 1 messages the publisher keeps unacknowledged at once.
WINDOW = 20

#: The longest the publishing phase may take (the failover included).
RUN_TIMEOUT = 120.0


def _broker_config(store_table: str) -> str:
    return (
        'disabled_plugins = ["dashboard"]\n'
        "[mqtt]\nsys_interval = 0\nmax_queued_messages = 100000\n"
        '[storage]\nbackend = "redis"\ndurability = "ack_after_write"\n'
        "[plugins.redis_store]\n" + store_table +
        'prefix = "bfo:"\nwait_replicas = 1\nwait_timeout = 0.5\nconnect_timeout = 0.5\ntimeout = 5\nmax_backoff = 0.2\n'
        '[[listeners]]\nname = "tcp"\ntype = "tcp"\naddress = "127.0.0.1:0"\n'
    )


class Publisher:
    """A paho v5 client publishing numbered QoS 1 messages, at most WINDOW unacknowledged."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher", protocol=MQTTProtocolVersion.MQTTv5)
        self.client.max_inflight_messages_set(WINDOW)
        self.client.on_publish = self._on_publish
        self.disconnects = 0
        self.client.on_disconnect = self._on_disconnect
        self.lock = threading.Lock()
        self.number_of: dict[int, int] = {}
        self.early: dict[int, bool] = {}
        self.in_flight = 0
        self.acked: list[int] = []
        self.refused = 0
        self.ack_times: list[float] = []
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        with self.lock:
            if mid not in self.number_of:  # answered before publish() learnt its mid
                self.early[mid] = bool(reason_code.is_failure)
                return
            self._settle(self.number_of.pop(mid), bool(reason_code.is_failure))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.disconnects += 1

    def _settle(self, number: int, failed: bool) -> None:
        if failed:
            self.refused += 1
        else:
            self.acked.append(number)
            self.ack_times.append(time.monotonic())

    @property
    def outstanding(self) -> int:
        with self.lock:
            return self.in_flight - len(self.acked) - self.refused

    def publish(self, number: int) -> None:
        with self.lock:
            self.in_flight += 1
        # Never hold our lock while paho takes its own: its network thread calls back under it.
        info = self.client.publish(f"load/{number}", str(number).encode(), qos=1)
        with self.lock:
            if info.mid in self.early:
                self._settle(number, self.early.pop(info.mid))
            else:
                self.number_of[info.mid] = number

    def longest_pause(self) -> float:
        times = sorted(self.ack_times)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _subscriber(port: int) -> tuple[mqtt.Client, list[int], threading.Event]:
    """The persistent session's client: connects (clean_start False, expiry 1 h) and collects payloads."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="offline-sub", protocol=MQTTProtocolVersion.MQTTv5)
    received: list[int] = []
    connected = threading.Event()
    client.on_message = lambda c, u, message: received.append(int(message.payload))
    client.on_connect = lambda c, u, flags, code, props: connected.set()
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, keepalive=60, clean_start=False, properties=properties)
    client.loop_start()
    assert connected.wait(10), "no CONNACK for the subscriber"
    return client, received, connected


async def _run(tmp_path: Path, store_table: str, failover: Callable[[], Awaitable[None]]) -> tuple[Publisher, list[int]]:
    config = _broker_config(store_table)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    async with BrokerProcess(first_dir, config) as broker:
        sub, _, _ = _subscriber(broker.mqtt_port)
        subscribed = threading.Event()
        sub.on_subscribe = lambda *args: subscribed.set()
        sub.subscribe("load/#", qos=1)
        assert subscribed.wait(10), "no SUBACK"
        sub.disconnect()
        sub.loop_stop()
        publisher = Publisher(broker.mqtt_port)
        try:
            async with asyncio.timeout(RUN_TIMEOUT):
                await _publish_through(publisher, failover)
                while publisher.outstanding:
                    await asyncio.sleep(0.05)
            assert publisher.disconnects == 0, "the broker dropped the publisher during the failover"
        finally:
            publisher.stop()
        os.kill(broker.pid, signal.SIGKILL)  # nothing the first broker holds in memory survives
        await asyncio.to_thread(broker.process.wait, 10)  # type: ignore[union-attr]
    async with BrokerProcess(second_dir, config) as again:
        sub, received, _ = _subscriber(again.mqtt_port)
        try:
            wanted = set(publisher.acked)
            deadline = time.monotonic() + 30
            while not wanted <= set(received) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            sub.disconnect()
            sub.loop_stop()
    return publisher, received


async def _publish_through(publisher: Publisher, failover: Callable[[], Awaitable[None]]) -> None:
    number = 0
    task: asyncio.Task[None] | None = None
    after_from = -1
    refused_seen = 0
    while after_from < 0 or len(publisher.acked) < after_from + AFTER:
        if task is None and len(publisher.acked) >= BEFORE:
            task = asyncio.create_task(failover())
        if task is not None and task.done() and after_from < 0:
            task.result()
            after_from = len(publisher.acked)
        if publisher.refused > refused_seen:
            refused_seen = publisher.refused
            await asyncio.sleep(0.05)  # refused (0x80): back off a little, as a real device would
        elif publisher.outstanding < WINDOW:
            number += 1
            publisher.publish(number)
        else:
            await asyncio.sleep(0.002)


def _report(what: str, publisher: Publisher, received: list[int]) -> None:
    found = len(set(publisher.acked) & set(received))
    print(f"\n{what}: {len(publisher.acked)} PUBACKed (success), {publisher.refused} refused (0x80), "
          f"{found} of the PUBACKed found after a SIGKILL and restart of the broker; "
          f"longest pause between PUBACKs {publisher.longest_pause():.2f} s")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["sentinel-failover", "kill-primary"])
async def test_broker_on_sentinel_keeps_every_acknowledged_message(tmp_path: Path, how: str) -> None:
    with SentinelSetup() as setup:
        table = f"sentinels = {setup.sentinel_addresses!r}\nservice_name = {setup.service!r}\n".replace("'", '"')

        async def failover() -> None:
            if how == "sentinel-failover":
                await asyncio.to_thread(setup.failover)
                return
            old = setup.server(setup.primary_port())
            old.kill()
            await asyncio.to_thread(_until_primary_moves, setup, old.port)
            old.start()
            await asyncio.to_thread(setup.wait_settled, setup.primary_port())

        publisher, received = await _run(tmp_path, table, failover)
    _report(f"broker on sentinel, {how}", publisher, received)
    assert len(publisher.acked) >= BEFORE + AFTER
    assert sorted(set(publisher.acked) - set(received)) == []


def _until_primary_moves(setup: SentinelSetup, old_port: int) -> None:
    deadline = time.monotonic() + 30
    while setup.primary_port() == old_port:
        if time.monotonic() > deadline:
            raise TimeoutError("the sentinels did not promote the replica")
        time.sleep(0.05)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["cluster-failover", pytest.param("kill-primary", marks=pytest.mark.slow)])
async def test_broker_on_redis_cluster_keeps_every_acknowledged_message(tmp_path: Path, how: str) -> None:
    with ClusterSetup(primaries=3, replicas_each=1) as cluster:
        table = f'url = "{cluster.url}"\ncluster = true\nnodes = {cluster.addresses[1:]!r}\n'.replace("'", '"')
        victim = cluster.primary_of("bfo:{c:offline-sub}:queue")

        async def failover() -> None:
            replica = cluster.replica_of(victim)
            if how == "cluster-failover":
                await asyncio.to_thread(cluster.failover_to, replica)
                return
            victim.kill()
            await asyncio.to_thread(cluster.wait_primary, replica)
            victim.start()
            await asyncio.to_thread(cluster.wait_ok)

        publisher, received = await _run(tmp_path, table, failover)
    _report(f"broker on redis cluster, {how}", publisher, received)
    assert len(publisher.acked) >= BEFORE + AFTER
    assert sorted(set(publisher.acked) - set(received)) == []
