"""Links between real processes in network namespaces of their own, on one bridge, through partitions.

Two hookmq processes (``link_node.py``), each in its own namespace with its own address
(:mod:`gossip_netns`, shared with membership's partition test; nothing outside the namespaces
this test creates is touched), send each other a paced stream of reliable frames while one
cable is pulled out of the bridge and put back.

- Shorter than the suspicion timeout but longer than the link's idle timeout: the link breaks
  on both sides mid-stream, is redialled after the heal, and every frame of both streams
  arrives exactly once and in order; membership never declares anyone failed.
- Longer than the suspicion timeout (slow): both sides declare the other failed, every frame
  the peer had not acknowledged is handed back (``on_unacked``), and after the heal the nodes
  re-join, the link comes back and frames flow both ways again; every acknowledged frame was
  received.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from gossip_netns import NetnsLab, require_netns
from gossip_oracle import Process

NODE = Path(__file__).parent / "link_node.py"
PORT = 7946
RATE = 40.0  # frames per second each way
SHORT_KEEPALIVE = {"link_idle_timeout": 2.5, "link_ping_interval": 0.5}  # the link gives up after 2.5 s of silence


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    require_netns()
    made = NetnsLab(2)
    try:
        yield made
    finally:
        made.close()
        assert made.leftovers() == []


class Node:
    """One link_node process in a namespace of the lab, sending ``frames`` to ``peer``."""

    def __init__(self, lab: NetnsLab, index: int, name: str, peer: str, tmp: Path, frames: int,
                 cluster: dict[str, Any], traffic: dict[str, Any]) -> None:
        self.name = name
        self.record, self.acked, self.handed = (tmp / f"{name}.{what}" for what in ("received", "acked", "handed"))
        members = [] if index == 0 else [f"{lab.address(0)}:{PORT}"]
        config = {"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
                  "disabled_plugins": ["dashboard"], "log": {"level": "INFO"},
                  "cluster": {"mode": True, "bind": lab.address(index), "advertise": lab.address(index), "port": PORT,
                              "node_name": name, "members": members, "profile": "local", **cluster}}
        sending = {"peer": peer, "frames": frames, "rate": RATE, "acked": str(self.acked), "handed": str(self.handed),
                   **traffic}
        self.process = Process([*lab.prefix(index), sys.executable, str(NODE), json.dumps(config), str(self.record),
                                json.dumps(sending)])

    @staticmethod
    def _numbers(path: Path) -> list[int]:
        return [int(line) for line in path.read_text().split()] if path.exists() else []

    def received(self) -> list[int]:
        return self._numbers(self.record)

    def acknowledged(self) -> list[int]:
        return self._numbers(self.acked)

    def handed_back(self) -> list[int]:
        return self._numbers(self.handed)

    def lines(self, text: str, since: float = 0.0) -> list[float]:
        return [at for at, line in self.process.output() if text in line and at >= since]

    def stop(self) -> None:
        self.process.terminate(5)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def start_pair(lab: NetnsLab, tmp: Path, frames: int, cluster: dict[str, Any], traffic: dict[str, Any]) -> tuple[Node, Node]:
    tag = uuid.uuid4().hex[:4]
    a_name, b_name = f"a-{tag}", f"b-{tag}"  # a sorts first: a dials
    a = Node(lab, 0, a_name, b_name, tmp, frames, cluster, traffic)
    b = Node(lab, 1, b_name, a_name, tmp, frames, cluster, traffic)
    up = lambda: all(n.lines("Link up:") and n.lines("recorder ready") for n in (a, b))  # noqa: E731
    assert wait_until(up, 60), a.process.text()[-3000:] + "\n---\n" + b.process.text()[-3000:]
    return a, b


def describe(*nodes: Node) -> str:
    return "\n---\n".join(node.process.text()[-4000:] for node in nodes)


@pytest.mark.timeout(180)
def test_a_link_broken_by_a_partition_mid_stream_loses_nothing_and_keeps_order(lab: NetnsLab, tmp_path: Path) -> None:
    frames = 600
    # Membership waits 30 s before declaring a silent node dead; the link gives up after 2.5 s.
    a, b = start_pair(lab, tmp_path, frames, {"suspicion_mult": 30, **SHORT_KEEPALIVE}, {})
    try:
        assert wait_until(lambda: min(len(a.acknowledged()), len(b.acknowledged())) >= 80, 30), describe(a, b)
        cut = time.time()
        lab.link(0, up=False)
        broke = lambda: bool(a.lines("Link down:", cut) and b.lines("Link down:", cut))  # noqa: E731
        assert wait_until(broke, 20), describe(a, b)
        sent_during = (len(a.acknowledged()), len(b.acknowledged()))
        time.sleep(max(0.0, cut + 7.0 - time.time()))  # a 7 s partition
        healed = time.time()
        lab.link(0, up=True)
        complete = lambda: len(a.acknowledged()) == frames and len(b.acknowledged()) == frames  # noqa: E731
        assert wait_until(complete, 90), describe(a, b)
        back = [node.lines("Link up:", healed)[0] - healed for node in (a, b)]
        print(f"\npartition of {healed - cut:.1f} s mid-stream ({sent_during[0]} and {sent_during[1]} frames acknowledged "
              f"before it): links down on both sides, up again {back[0]:.2f} s / {back[1]:.2f} s after the heal; "
              f"{frames} frames each way, all acknowledged")
        # Every frame of each stream arrived once, in order; nothing was handed back; nobody failed.
        assert b.received() == list(range(frames)) and a.received() == list(range(frames))
        assert sorted(a.acknowledged()) == sorted(b.acknowledged()) == list(range(frames))
        assert a.handed_back() == [] and b.handed_back() == []
        assert not a.lines("A node has failed") and not b.lines("A node has failed")
    finally:
        a.stop()
        b.stop()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_after_a_partition_longer_than_the_suspicion_timeout_links_come_back_and_flow_both_ways(lab: NetnsLab,
                                                                                                  tmp_path: Path) -> None:
    frames = 1200
    a, b = start_pair(lab, tmp_path, frames, {"rejoin_interval": 5.0, **SHORT_KEEPALIVE}, {})
    try:
        assert wait_until(lambda: min(len(a.acknowledged()), len(b.acknowledged())) >= 80, 30), describe(a, b)
        cut = time.time()
        lab.link(0, up=False)
        failed = lambda: bool(a.lines(f"A node has failed: {b.name}", cut) and b.lines(f"A node has failed: {a.name}", cut))  # noqa: E731
        assert wait_until(failed, 60), describe(a, b)
        healed = time.time()
        lab.link(0, up=True)
        rejoined = lambda: bool(a.lines("Link up:", healed) and b.lines("Link up:", healed))  # noqa: E731
        assert wait_until(rejoined, 30), describe(a, b)
        back = max(node.lines("Link up:", healed)[0] for node in (a, b)) - healed
        at_heal = (len(a.received()), len(b.received()))
        assert wait_until(lambda: bool(a.lines("sender done") and b.lines("sender done")), 90), describe(a, b)
        time.sleep(2.0)  # the last frames' acknowledgements
        for sender, receiver in ((a, b), (b, a)):
            acked, handed, got = set(sender.acknowledged()), set(sender.handed_back()), receiver.received()
            assert got == sorted(set(got))  # in order, each once
            assert acked <= set(got)  # every acknowledged frame was received
            assert handed and not handed & acked  # the peer's failure handed back what it had not acknowledged
        assert len(a.received()) > at_heal[0] and len(b.received()) > at_heal[1]  # flowing both ways again
        print(f"\npartition of {healed - cut:.1f} s (both sides declared the other failed): handed back "
              f"{len(a.handed_back())} / {len(b.handed_back())} unacknowledged frames; link up again {back:.2f} s after "
              f"the heal; after it {len(a.received()) - at_heal[0]} / {len(b.received()) - at_heal[1]} more frames received")
    finally:
        a.stop()
        b.stop()
