"""Brokers of a test cluster in one process, and the helpers the cluster-session tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import Disconnect, Puback, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.plugins.gossip.sessions.plugin import ClusterSessions
from hookmq.testing.raw import RawClient

T = TypeVar("T")


@dataclass
class Node:
    """One broker of a test cluster and its cluster sessions."""

    name: str
    broker: Broker
    sessions: ClusterSessions
    links: Any

    @property
    def port(self) -> int:
        return int(self.broker.listeners[0].address[1])

    async def client(self, client_id: str, level: int = 5, **kwargs: Any) -> RawClient:
        client, connack = await bounded(RawClient.connect("127.0.0.1", self.port, client_id, level, **kwargs))
        assert connack.reason_code == 0, connack
        return client


class StartNodes(Protocol):
    """The ``start_nodes`` fixture: brokers in cluster mode, sharing a Redis when ``redis_url`` is given."""

    async def __call__(self, names: Sequence[str] = ("A", "B"), redis_url: str | None = None,
                       **config: Any) -> list[Node]: ...


def broker_config(**extra: Any) -> Config:
    """Loopback TCP on port 0, no dashboard, no `$SYS` ticks."""
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


async def disconnect_reason(client: RawClient, timeout: float = 5.0) -> int | None:
    """Wait for the broker to close; the reason code of its DISCONNECT, None when it sent none."""
    received = await client.closed_within(timeout)
    codes = [p.reason_code for p in received if isinstance(p, Disconnect)]
    return codes[-1] if codes else None
