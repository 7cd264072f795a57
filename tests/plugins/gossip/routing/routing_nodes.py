"""Several real brokers in one process, joined by cluster routing, and the helpers their tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import Puback, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.plugins.gossip.routing.plugin import ClusterRouting
from hookmq.testing.raw import RawClient

T = TypeVar("T")


@dataclass
class Node:
    """One broker of a test cluster and its routing."""

    name: str
    broker: Broker
    routing: ClusterRouting
    links: Any

    @property
    def port(self) -> int:
        return int(self.broker.listeners[0].address[1])

    async def client(self, client_id: str, level: int = 5, **kwargs: Any) -> RawClient:
        client, connack = await bounded(RawClient.connect("127.0.0.1", self.port, client_id, level, **kwargs))
        assert connack.reason_code == 0, connack
        return client


def broker_config(**extra: Any) -> Config:
    """Loopback TCP on port 0, memory store, no dashboard, no `$SYS` ticks (tests publish figures themselves)."""
    return Config.model_validate({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0, **extra.pop("mqtt", {})},
        **extra,
    })


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


async def no_message(client: RawClient, seconds: float = 0.3) -> bool:
    """True when nothing arrives within ``seconds``."""
    return await client.nothing_within(seconds)


async def routes_settled(nodes: list[Node], timeout: float = 5.0) -> bool:
    """Every node holds every other node's complete routes (no snapshot under way)."""
    def settled() -> bool:
        for node in nodes:
            for other in nodes:
                if other is node:
                    continue
                if node.routing.remote.receiving_snapshot(other.name):
                    return False
                if node.routing.remote.filters(other.name).keys() != {
                        f for f, _ in other.routing.announcer.interest.items()}:
                    return False
        return True
    return await eventually(settled, timeout)
