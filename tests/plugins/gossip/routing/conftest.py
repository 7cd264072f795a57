"""Fixtures of the routing tests: real brokers in one process, joined by routing over test links."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from routing_memory_links import MemoryNetwork
from routing_nodes import Node, StartNodes, bounded, broker_config, cluster_table, eventually, routes_settled

from hookmq import hookimpl
from hookmq.engine import Broker
from hookmq.plugins.gossip import cluster_of, links_of
from hookmq.plugins.gossip.routing import install_routing, routing_of, uninstall_routing


class _RoutingStarter:
    """Installs routing while the broker starts (as the gossip plugin does), so restored sessions count."""

    def __init__(self, network: MemoryNetwork, name: str, store_factory: Any = None) -> None:
        self.network = network
        self.name = name
        self.store_factory = store_factory

    @hookimpl
    async def plugin_start(self, broker: Broker) -> None:
        store = self.store_factory(broker.config) if self.store_factory is not None else None
        await install_routing(broker, None, self.network.links(self.name), self.name, store)

    @hookimpl
    async def plugin_stop(self, broker: Broker) -> None:
        await uninstall_routing(broker)


@pytest.fixture
async def network() -> AsyncIterator[MemoryNetwork]:
    net = MemoryNetwork()
    yield net
    await net.close()


@pytest.fixture
async def start_nodes(network: MemoryNetwork) -> AsyncIterator[StartNodes]:
    """Start brokers named as given, joined by cluster routing.

    ``links="real"``: cluster mode on 127.0.0.1, real membership and the real data links, as
    in production (``connect`` waits until every link is up and every route is exchanged).
    ``links="memory"``: routing over the in-memory link double, for the tests that cut links
    and fail nodes at chosen moments (``connect`` brings every link up).
    """
    brokers: list[Broker] = []

    async def start(names: Sequence[str] = ("A", "B"), connect: bool = True, store_factory: Any = None,
                    links: str = "memory", **config: Any) -> list[Node]:
        nodes = []
        for name in names:
            if links == "real":
                seed = [f"127.0.0.1:{gossip_port(brokers[0])}"] if brokers else []
                broker = Broker(broker_config(cluster=cluster_table(name, seed), **config))
            else:
                broker = Broker(broker_config(**config),
                                extra_plugins={"routing_starter": _RoutingStarter(network, name, store_factory)})
            await bounded(broker.start(), 10)
            brokers.append(broker)
            routing = routing_of(broker)
            assert routing is not None
            nodes.append(Node(name, broker, routing, links_of(broker) if links == "real" else network.nodes[name]))
        if connect and links == "memory":
            network.connect_all()
        elif connect:
            everyone = [node for node in await _started_nodes(brokers)]
            assert await eventually(lambda: all(node.links.is_up(other.name) for node in everyone
                                                for other in everyone if other is not node), 20)
            assert await routes_settled(everyone, 20)
        return nodes

    async def _started_nodes(started: list[Broker]) -> list[Node]:
        found = []
        for broker in started:
            routing = routing_of(broker)
            if routing is not None and broker.config.cluster.mode:
                found.append(Node(routing.name, broker, routing, links_of(broker)))
        return found

    yield start
    for broker in reversed(brokers):
        with contextlib.suppress(TimeoutError):
            await bounded(broker.stop(), 10)


def gossip_port(broker: Broker) -> int:
    cluster = cluster_of(broker)
    assert cluster is not None
    return cluster.local.port
