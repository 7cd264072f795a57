"""The cluster brokers of ``hookmq bench compare`` (``hookmq:x2``): real node processes, started and stopped together."""

from __future__ import annotations

from pathlib import Path

from hookmq.bench.brokers import start_broker
from hookmq.bench.workloads import Workload
from hookmq.plugins.gossip.bench.cluster import linked
from hookmq.plugins.gossip.bench.compare_cluster import ClusterBroker


def test_a_cluster_broker_is_two_linked_node_processes_stopped_together(tmp_path: Path) -> None:
    broker = start_broker("hookmq:x2", tmp_path)
    try:
        assert isinstance(broker, ClusterBroker)
        first, second = broker.members
        assert linked(first, second) and linked(second, first)
        pids = broker.target.pids
        assert pids == (first.pid, second.pid)
        assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
        plans = broker.place(Workload("pairs", clients=1).client_plans("r", "127.0.0.1"))
        assert len({plan.port for plan in plans}) == 2
    finally:
        broker.stop()
    assert not first.alive() and not second.alive()
