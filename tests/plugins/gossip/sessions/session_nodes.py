"""Brokers of a test cluster in one process, and the helpers the cluster-session tests share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cluster_nodes import bounded, broker_config, cluster_table, connected, eventually, messages

from hookmq.engine import Broker
from hookmq.mqtt.packets import Disconnect
from hookmq.plugins.gossip.sessions.plugin import ClusterSessions
from hookmq.testing.raw import RawClient

__all__ = ["Node", "StartNodes", "bounded", "broker_config", "cluster_table", "disconnect_reason", "eventually",
           "messages"]


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
        return await connected(self.port, client_id, level, **kwargs)


class StartNodes(Protocol):
    """The ``start_nodes`` fixture: brokers in cluster mode, sharing a Redis when ``redis_url`` is given."""

    async def __call__(self, names: Sequence[str] = ("A", "B"), redis_url: str | None = None,
                       **config: Any) -> list[Node]: ...


async def disconnect_reason(client: RawClient, timeout: float = 5.0) -> int | None:
    """Wait for the broker to close; the reason code of its DISCONNECT, None when it sent none."""
    received = await client.closed_within(timeout)
    codes = [p.reason_code for p in received if isinstance(p, Disconnect)]
    return codes[-1] if codes else None
