"""Fixtures of the cluster-session tests: real brokers in cluster mode (real membership and links) and a real Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from session_nodes import Node, StartNodes, bounded, broker_config, cluster_table, eventually

from hookmq.engine import Broker
from hookmq.plugins.gossip import cluster_of, links_of
from hookmq.plugins.gossip.sessions import sessions_of
from hookmq.testing.redis import redis_server

__all__ = ["redis_server"]


@pytest.fixture
async def start_nodes() -> AsyncIterator[StartNodes]:
    """Start brokers in cluster mode on 127.0.0.1, sharing ``redis_url`` when given; waits until all links are up."""
    brokers: list[Broker] = []

    async def start(names: Sequence[str] = ("A", "B"), redis_url: str | None = None, **config: Any) -> list[Node]:
        nodes = []
        if redis_url is not None:
            config = {"storage": {"backend": "redis", "durability": "ack_after_write"},
                      "plugins": {"redis_store": {"url": redis_url}}, **config}
        for name in names:
            seed = [f"127.0.0.1:{gossip_port(brokers[0])}"] if brokers else []
            broker = Broker(broker_config(cluster=cluster_table(name, seed), **config))
            await bounded(broker.start(), 10)
            brokers.append(broker)
            sessions = sessions_of(broker)
            assert sessions is not None
            nodes.append(Node(name, broker, sessions, links_of(broker)))
        assert await eventually(lambda: all(node.links.is_up(other.name) for node in nodes
                                            for other in nodes if other is not node), 20)
        return nodes

    yield start
    for broker in reversed(brokers):
        with contextlib.suppress(TimeoutError):
            await bounded(broker.stop(), 10)


def gossip_port(broker: Broker) -> int:
    cluster = cluster_of(broker)
    assert cluster is not None
    return cluster.local.port
