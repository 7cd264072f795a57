"""The ``hookmq:xN`` and ``hookmq:nN`` brokers of ``hookmq bench compare``: N cluster nodes as one broker.

The nodes are started as ``hookmq bench cluster`` starts them (:class:`.cluster.Nodes`: real
processes, gossip and MQTT bound and advertised on 127.0.0.1, links up between every two before
the first workload), with the queue limits every broker of compare gets. Each workload's
clients are placed on the nodes by :func:`hookmq.bench.placement.place`; memory and CPU are
the nodes' together (``Target.other_pids``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hookmq.bench.placement import place
from hookmq.bench.plan import ClientPlan
from hookmq.bench.runner import Target

from .cluster import SETTLE, Nodes
from .processes import HookmqNode

__all__ = ["ClusterBroker", "start_cluster"]


@dataclass(slots=True)
class ClusterBroker:
    """A running cluster measured as one broker by compare."""

    name: str
    layout: str
    version: str
    nodes: Nodes
    members: list[HookmqNode] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @property
    def target(self) -> Target:
        """Node 1's address (where unplaced clients would go), every node's PID."""
        first, *others = self.members
        return Target(self.name, first.address, self.ports[0], first.pid, tuple(node.pid for node in others))

    @property
    def settle(self) -> float:
        """Seconds after setup for the subscriptions to reach the other nodes' routes."""
        return SETTLE

    def place(self, plans: list[ClientPlan]) -> list[ClientPlan]:
        """The clients on the nodes by the layout (``x``: cross-node, ``n``: spread)."""
        return place(plans, self.layout, self.ports)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after the grace)."""
        self.nodes.stop_all()


def start_cluster(name: str, workdir: Path, layout: str, size: int, version: str, queue_limit: int) -> ClusterBroker:
    """Start ``size`` linked nodes for broker ``name``; raises RuntimeError (every node stopped) if they do not come up."""
    nodes = Nodes(workdir)
    # As hookmq alone gets in compare (hookmq.bench.brokers): mosquitto bounds neither.
    limits = ["[mqtt]", f"max_queued_messages = {queue_limit}", "max_subscriptions_per_client = 0"]
    try:
        members = nodes.cluster(f"C{layout}{size}n", size, limits)
        ports = [node.mqtt_port() for node in members]
    except BaseException:
        nodes.stop_all()
        raise
    return ClusterBroker(name, layout, f"{version}, {size} nodes", nodes, members, ports)
