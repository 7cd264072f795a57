"""The ring buffer of samples and the rates derived from it."""

from __future__ import annotations

from hookmq.plugins.dashboard.sampling import History, is_counter, rates_between


def test_rates_are_per_second_deltas_of_counters() -> None:
    history = History(10)
    first = history.record(100.0, {"messages_received": 10, "clients_connected": 3, "version": "1"})
    assert first.rates == {}
    second = history.record(102.0, {"messages_received": 30, "clients_connected": 5, "version": "1"})
    assert second.rates == {"messages_received_per_second": 10.0}


def test_a_counter_going_backwards_reads_as_zero() -> None:
    history = History(10)
    history.record(1.0, {"bytes_sent": 500})
    assert history.record(2.0, {"bytes_sent": 100}).rates == {"bytes_sent_per_second": 0.0}


def test_the_buffer_is_bounded() -> None:
    history = History(3)
    for second in range(10):
        history.record(float(second), {"messages_sent": second})
    assert len(history) == 3 == history.capacity
    assert [sample.time for sample in history] == [7.0, 8.0, 9.0]
    assert [sample.time for sample in history.since(8.5)] == [9.0]


def test_non_figures_are_left_out() -> None:
    history = History(2)
    sample = history.record(1.0, {"ok": 1, "nested": {"a": 1}, "flag": True, "name": "x"})
    assert dict(sample.figures) == {"ok": 1, "name": "x"}


def test_counter_names() -> None:
    assert is_counter("messages_received") and is_counter("bytes_sent") and is_counter("messages_dropped")
    assert is_counter("clients_total")
    assert not is_counter("clients_connected") and not is_counter("uptime")
    assert rates_between(None, 1.0, {"messages_sent": 1}) == {}
