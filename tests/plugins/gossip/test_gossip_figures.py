"""The figures book, sans-I/O: rates from successive readings, the frame both ways, bad frames
refused and counted (hypothesis), staleness and totals over live nodes."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from hookmq.plugins.gossip.figures import MAX_BODY, FigureBook


def info(clients: int, subscriptions: int, received: int, sent: int) -> dict[str, object]:
    return {"clients_connected": clients, "subscriptions": subscriptions, "messages_received": received,
            "messages_sent": sent, "version": "x"}


def test_rates_come_from_the_previous_reading() -> None:
    book = FigureBook("a", stale_after=4.0)
    first = book.record_local(100.0, info(1, 2, 10, 20))
    assert (first.messages_in_per_second, first.messages_out_per_second) == (0.0, 0.0)
    second = book.record_local(102.0, info(3, 4, 30, 25))
    assert (second.clients, second.subscriptions) == (3, 4)
    assert (second.messages_in_per_second, second.messages_out_per_second) == (10.0, 2.5)
    restarted = book.record_local(103.0, info(0, 0, 0, 0))  # counters went back: no negative rate
    assert restarted.messages_in_per_second == 0.0


def test_a_frame_carries_the_figures_to_a_peer() -> None:
    sender, receiver = FigureBook("a", 4.0), FigureBook("b", 4.0)
    assert sender.encode_local() == b""
    sender.record_local(100.0, info(1, 2, 10, 20))
    sender.record_local(101.0, info(5, 6, 17, 29))
    got = receiver.received("a", sender.encode_local(), now=500.0)
    assert got is not None and got.node == "a" and got.at == 500.0
    assert (got.clients, got.subscriptions, got.messages_received, got.messages_sent) == (5, 6, 17, 29)
    assert (got.messages_in_per_second, got.messages_out_per_second) == (7.0, 9.0)
    assert receiver.of("a") == got and receiver.of("b") is None


@given(st.binary(max_size=600))
def test_any_bytes_are_read_or_refused_never_raised(body: bytes) -> None:
    book = FigureBook("b", 4.0)
    got = book.received("a", body, now=1.0)
    if got is None:
        assert book.bad_frames == 1 and book.of("a") is None
    else:
        assert len(body) <= MAX_BODY and book.bad_frames == 0 and book.of("a") == got  # a map: kept


def test_non_numbers_read_as_zero_and_oversized_frames_are_refused() -> None:
    book = FigureBook("b", 4.0)
    got = book.received("a", msgpack.packb({"c": "many", "s": True, "r": 3, "ri": None}), now=1.0)
    assert got is not None and (got.clients, got.subscriptions, got.messages_received, got.messages_in_per_second) == (0, 0, 3, 0.0)
    assert book.received("a", msgpack.packb({"c": 1, "pad": "x" * MAX_BODY}), now=2.0) is None
    assert book.received("a", msgpack.packb([1, 2]), now=2.0) is None
    assert book.bad_frames == 2


def test_totals_count_live_nodes_with_fresh_figures_only() -> None:
    book = FigureBook("a", stale_after=4.0)
    book.record_local(100.0, info(1, 10, 0, 0))
    peer = FigureBook("b", 4.0)
    peer.record_local(100.0, info(2, 20, 0, 0))
    old = FigureBook("c", 4.0)
    old.record_local(100.0, info(4, 40, 0, 0))
    book.received("b", peer.encode_local(), now=101.0)
    book.received("c", old.encode_local(), now=95.0)  # stale at 101
    totals = book.totals(101.0, {"a", "b", "c"})
    assert totals["nodes_reporting"] == 2 and totals["clients"] == 3 and totals["subscriptions"] == 30
    assert book.totals(101.0, {"a"})["clients"] == 1  # b is not live any more
    book.forget("b")
    assert book.of("b") is None
