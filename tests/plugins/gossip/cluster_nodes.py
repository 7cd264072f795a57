"""What the in-process multi-broker tests of routing and sessions share: the broker's and the
cluster table's configuration, bounded waits, and a subscriber that acknowledges what it gets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hookmq.config import Config
from hookmq.mqtt.packets import Puback, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.testing.raw import RawClient

T = TypeVar("T")


def broker_config(**extra: Any) -> Config:
    """Loopback TCP on port 0, memory store, no dashboard, no `$SYS` ticks (tests publish figures themselves)."""
    return Config.model_validate({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0, **extra.pop("mqtt", {})},
        **extra,
    })


def cluster_table(name: str, members: list[str]) -> dict[str, Any]:
    """A cluster node on 127.0.0.1 with memberlist's `local` timings, membership in the broker's loop."""
    return {"mode": True, "port": 0, "bind": "127.0.0.1", "advertise": "127.0.0.1", "node_name": name,
            "profile": "local", "members": members, "runner": "loop", "leave_timeout": 1.0}


async def bounded(awaitable: Awaitable[T], timeout: float = 5.0) -> T:
    """Await with an upper bound, so a hang fails the test instead of stalling it."""
    return await asyncio.wait_for(awaitable, timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll until ``predicate()`` holds or ``timeout`` passes; returns its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return predicate()
        await asyncio.sleep(step)
    return True


async def messages(client: RawClient, count: int, timeout: float = 5.0, ack: bool = True) -> list[Publish]:
    """The next ``count`` PUBLISH packets, acknowledged as they come (QoS 2 flows may interleave)."""
    if not ack:
        return [await client.receive_message(timeout, ack=False) for _ in range(count)]
    received: list[Publish] = []
    releases = 0
    while len(received) < count or releases < sum(1 for m in received if m.qos == 2):
        packet = await client.recv(timeout)
        if isinstance(packet, Publish):
            received.append(packet)
            if packet.qos == 1:
                await client.send(Puback(packet.packet_id))
            elif packet.qos == 2:
                await client.send(Pubrec(packet.packet_id))
        elif isinstance(packet, Pubrel):
            releases += 1
            await client.send(Pubcomp(packet.packet_id))
        else:
            raise AssertionError(f"expected PUBLISH or PUBREL, got {packet!r}")
    return received


async def connected(port: int, client_id: str, level: int = 5, **kwargs: Any) -> RawClient:
    """A raw client on ``127.0.0.1:port`` whose CONNECT was accepted."""
    client, connack = await bounded(RawClient.connect("127.0.0.1", port, client_id, level, **kwargs))
    assert connack.reason_code == 0, connack
    return client
