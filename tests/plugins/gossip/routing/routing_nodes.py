"""Several real brokers in one process, joined by cluster routing, and the helpers their tests share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cluster_nodes import bounded, broker_config, cluster_table, connected, eventually, messages

from hookmq.engine import Broker
from hookmq.plugins.gossip.routing.plugin import ClusterRouting
from hookmq.testing.raw import RawClient

__all__ = ["Node", "StartNodes", "bounded", "broker_config", "cluster_table", "eventually", "messages", "no_message",
           "routes_settled"]


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
        return await connected(self.port, client_id, level, **kwargs)


class StartNodes(Protocol):
    """The `start_nodes` fixture: brokers started by name and joined by routing (see the conftest)."""

    async def __call__(self, names: Sequence[str] = ("A", "B"), connect: bool = True, store_factory: Any = None,
                       links: str = "memory", **config: Any) -> list[Node]: ...


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
