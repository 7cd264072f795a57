"""The transmit-limited queue: order, packing, limits, replacement."""

from __future__ import annotations

from hookmq.plugins.gossip.membership.broadcasts import BroadcastQueue


def test_least_sent_then_largest_then_newest() -> None:
    queue = BroadcastQueue()
    queue.queue(b"aa", "x")
    queue.queue(b"bbbb", "y")
    queue.queue(b"cc", "z")
    assert queue.get(0, 100, transmit_limit=10) == [b"bbbb", b"cc", b"aa"]
    queue.queue(b"d")
    # d has been sent 0 times, the others once: d first, then the others in the same order.
    assert queue.get(0, 100, transmit_limit=10) == [b"d", b"bbbb", b"cc", b"aa"]


def test_packs_what_fits_and_skips_what_does_not() -> None:
    queue = BroadcastQueue()
    queue.queue(b"x" * 50)
    queue.queue(b"y" * 30)
    queue.queue(b"z" * 10)
    # 45 bytes with 2 overhead each: the 50 does not fit; 30 + 2 does, then 10 + 2 does.
    assert queue.get(2, 45, transmit_limit=5) == [b"y" * 30, b"z" * 10]
    assert len(queue) == 3


def test_dropped_after_the_transmit_limit_with_a_callback() -> None:
    finished: list[str] = []
    queue = BroadcastQueue()
    queue.queue(b"m", on_finished=lambda: finished.append("m"))
    sent = [queue.get(0, 100, transmit_limit=3) for _ in range(5)]
    assert sent == [[b"m"], [b"m"], [b"m"], [], []]
    assert finished == ["m"] and len(queue) == 0


def test_a_named_broadcast_replaces_its_predecessor() -> None:
    finished: list[str] = []
    queue = BroadcastQueue()
    queue.queue(b"suspect n1", "n1", on_finished=lambda: finished.append("old"))
    queue.queue(b"alive n1", "n1")
    queue.queue(b"alive n2", "n2")
    assert sorted(queue.get(0, 100, transmit_limit=3)) == [b"alive n1", b"alive n2"]
    assert finished == ["old"]


def test_prune_drops_the_most_sent_first() -> None:
    queue = BroadcastQueue(max_items=3)
    queue.queue(b"old")
    queue.get(0, 100, transmit_limit=10)
    for payload in (b"a", b"b", b"c"):
        queue.queue(payload)
    assert sorted(message for message, _ in queue.transmits()) == [b"a", b"b", b"c"]
