"""Issue 13, test 4: a partition longer than the dead-node memory, in network namespaces, heals.

Three hookmq processes, each in a network namespace of its own with its own address, on one
bridge (:mod:`gossip_netns`; nothing outside the namespaces this test creates is touched).
The seed node's cable is pulled (its bridge port down) until both sides have declared each
other failed *and forgotten each other* (the gossip-to-the-dead time has passed: memberlist
would never meet again, hashicorp/memberlist#222). The cable goes back in, and the cluster must
be whole again within one re-join interval. Timings are shortened by ``[cluster]`` overrides.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gossip_netns import NetnsLab, require_netns

from hookmq.plugins.gossip.bench.processes import HookmqNode, wait_until

REJOIN = 10.0
TCP_TIMEOUT = 1.0  # the local profile's
OVERRIDES = {
    "suspicion_max_timeout_mult": 2,  # the isolated node gets no confirmations: 6 s, not 18
    "gossip_to_the_dead_time": 3.0,   # the dead-node memory (15 s in the local profile)
    "rejoin_interval": REJOIN,
}


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    require_netns()
    made = NetnsLab(3)
    try:
        yield made
    finally:
        made.close()
        assert made.leftovers() == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_partition_longer_than_the_dead_node_memory_heals_within_one_rejoin_interval(lab: NetnsLab, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:4]
    nodes: list[HookmqNode] = []

    def start(index: int, members: list[str]) -> HookmqNode:
        node = HookmqNode(tmp_path, f"p{index}{tag}", address=lab.address(index), members=members, cluster=OVERRIDES,
                          prefix=lab.prefix(index), log_level="DEBUG")
        nodes.append(node)
        return node

    try:
        seed = start(0, [])
        rest = [start(1, [seed.endpoint]), start(2, [seed.endpoint])]
        joined = lambda: all(n.first(f"A node has joined: {m.name}") for n in nodes for m in nodes)  # noqa: E731
        assert wait_until(joined, 60), [n.text() for n in nodes]
        assert seed.first("Local member 10.213.13.10:") is not None  # its own address, not loopback

        cut = time.time()
        lab.link(0, up=False)
        forgotten = lambda: (  # noqa: E731
            all(seed.first(f"Forgetting {other.name}", cut) for other in rest)
            and all(other.first(f"Forgetting {seed.name}", cut) for other in rest)
        )
        assert wait_until(forgotten, 90), [n.text() for n in nodes]
        assert all(n.first(f"A node has failed: {seed.name}", cut) for n in rest)
        assert all(seed.first(f"A node has failed: {other.name}", cut) for other in rest)
        healed = time.time()
        lab.link(0, up=True)

        whole = lambda: (  # noqa: E731
            all(seed.first(f"A node has joined: {other.name}", healed) for other in rest)
            and all(other.first(f"A node has joined: {seed.name}", healed) for other in rest)
        )
        assert wait_until(whole, REJOIN + 15), [n.text() for n in nodes]
        rejoined = [seed.first(f"A node has joined: {o.name}", healed) for o in rest]
        rejoined += [o.first(f"A node has joined: {seed.name}", healed) for o in rest]
        took = max(t for t in rejoined if t is not None) - healed
        print(f"\npartition of {healed - cut:.1f} s (both sides had forgotten each other); "
              f"whole again {took:.2f} s after the heal (re-join interval {REJOIN:.0f} s)")
        assert took < REJOIN + TCP_TIMEOUT + 1.0
        # The two nodes that kept their cable never lost each other.
        assert not any(a.first(f"A node has failed: {b.name}") for a in rest for b in rest)
    finally:
        for node in nodes:
            node.stop()
