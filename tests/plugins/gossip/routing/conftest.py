"""Fixtures of the routing tests: real brokers in one process, joined by routing over test links."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import pytest
from routing_memory_links import MemoryNetwork
from routing_nodes import Node, bounded, broker_config

from hookmq import hookimpl
from hookmq.engine import Broker
from hookmq.plugins.gossip.routing import install_routing, routing_of, uninstall_routing


class StartNodes(Protocol):
    async def __call__(self, names: Sequence[str] = ("A", "B"), connect: bool = True, **config: Any) -> list[Node]: ...


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
    """Start brokers named as given, with routing over the in-memory links, all connected."""
    brokers: list[Broker] = []

    async def start(names: Sequence[str] = ("A", "B"), connect: bool = True, store_factory: Any = None,
                    **config: Any) -> list[Node]:
        nodes = []
        for name in names:
            broker = Broker(broker_config(**config),
                            extra_plugins={"routing_starter": _RoutingStarter(network, name, store_factory)})
            await bounded(broker.start(), 10)
            brokers.append(broker)
            routing = routing_of(broker)
            assert routing is not None
            nodes.append(Node(name, broker, routing, network.nodes[name]))
        if connect:
            network.connect_all()
        return nodes

    yield start
    for broker in reversed(brokers):
        with contextlib.suppress(TimeoutError):
            await bounded(broker.stop(), 10)
