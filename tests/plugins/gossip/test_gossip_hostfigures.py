"""The host's `$SYS/host/…` figures from the workers' exchanged figures (sans-I/O)."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]

from hookmq.plugins.gossip.figures import FigureBook
from hookmq.plugins.gossip.hostfigures import host_topics


def _book() -> FigureBook:
    book = FigureBook("h-w0", stale_after=4.0)
    book.record_local(100.0, {"clients_connected": 3, "subscriptions": 5, "messages_received": 10, "messages_sent": 20})
    book.record_local(101.0, {"clients_connected": 3, "subscriptions": 5, "messages_received": 30, "messages_sent": 60})
    body = msgpack.packb({"c": 2, "s": 1, "r": 7, "x": 8, "ri": 1.5, "ro": 2.5})
    book.received("h-w1", body, 101.0)
    book.received("other-host", body, 101.0)
    return book


def test_totals_sum_the_fresh_figures_of_the_hosts_workers_only() -> None:
    topics = host_topics(_book(), 102.0, ["h-w0", "h-w1"])
    assert topics["$SYS/host/workers"] == "2"
    assert topics["$SYS/host/clients/connected"] == "5"
    assert topics["$SYS/host/subscriptions/count"] == "6"
    assert topics["$SYS/host/messages/received"] == "37" and topics["$SYS/host/messages/sent"] == "68"
    assert topics["$SYS/host/messages/received/per_second"] == "21.500"  # 20/s here, 1.5/s on h-w1
    assert topics["$SYS/host/workers/h-w1/clients/connected"] == "2"
    assert topics["$SYS/host/workers/h-w0/messages/sent"] == "60"
    assert not any("other-host" in topic for topic in topics)  # a node of another host is not summed


def test_a_worker_whose_figures_are_stale_is_not_counted() -> None:
    topics = host_topics(_book(), 106.0, ["h-w0", "h-w1"])  # h-w1's last frame is 5 s old; ours was read at 101
    assert topics["$SYS/host/workers"] == "0" and topics["$SYS/host/clients/connected"] == "0"
    fresh_local = _book()
    fresh_local.record_local(106.0, {"clients_connected": 1})
    assert host_topics(fresh_local, 106.0, ["h-w0", "h-w1"])["$SYS/host/workers"] == "1"
