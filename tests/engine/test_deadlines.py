"""The connect timeouts of waiting connections, on a simulated clock (no sleeping)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hookmq.engine.client import Client
from hookmq.engine.deadlines import ConnectDeadlines


class FakeHandle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """The two things ConnectDeadlines asks of a loop: its clock and a timer."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[FakeHandle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle(when, callback)
        self.timers.append(handle)
        return handle

    def run_until(self, now: float) -> None:
        """Advance the clock, firing the timers due (in order, also those armed meanwhile)."""
        self.now = now
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= now]
            if not due:
                return
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            timer.callback()


class FakeConn:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class FakeClient:
    def __init__(self) -> None:
        self.conn = FakeConn()
        self.connect: object = None
        self.error: str | None = None
        self.ends: list[tuple[str, str | None]] = []

    def note_end(self, kind: str, reason_code: int | None = None, detail: str | None = None) -> None:
        self.ends.append((kind, detail))


def make(timeout: float = 10.0) -> tuple[ConnectDeadlines, FakeLoop, set[Any]]:
    loop = FakeLoop()
    live: set[Any] = set()
    return ConnectDeadlines(timeout, cast(Any, live), cast(Any, loop)), loop, live


def add(deadlines: ConnectDeadlines, live: set[Any]) -> FakeClient:
    client = FakeClient()
    live.add(client)
    deadlines.add(cast(Client, client))
    return client


def test_a_connection_without_connect_is_cut_when_its_timeout_passes() -> None:
    deadlines, loop, live = make(10.0)
    client = add(deadlines, live)
    loop.run_until(109.9)
    assert not client.conn.aborted
    loop.run_until(110.0)
    assert client.conn.aborted
    assert client.error == "no CONNECT within the connect timeout"
    assert client.ends == [("connect-timeout", "no CONNECT within the connect timeout")]
    assert len(deadlines) == 0


def test_one_timer_serves_every_connection_in_order() -> None:
    deadlines, loop, live = make(10.0)
    first = add(deadlines, live)
    loop.now = 103.0
    second = add(deadlines, live)
    loop.now = 105.0
    third = add(deadlines, live)
    assert len([t for t in loop.timers if not t.cancelled]) == 1  # armed for the oldest only
    loop.run_until(110.0)
    assert (first.conn.aborted, second.conn.aborted, third.conn.aborted) == (True, False, False)
    loop.run_until(113.0)
    assert (second.conn.aborted, third.conn.aborted) == (True, False)
    loop.run_until(115.0)
    assert third.conn.aborted
    assert not [t for t in loop.timers if not t.cancelled]  # nothing left waiting, no timer


def test_connections_that_sent_connect_or_ended_are_left_alone() -> None:
    deadlines, loop, live = make(10.0)
    connected = add(deadlines, live)
    ended = add(deadlines, live)
    waiting = add(deadlines, live)
    connected.connect = object()
    live.discard(ended)
    loop.run_until(111.0)
    assert not connected.conn.aborted and not ended.conn.aborted
    assert waiting.conn.aborted


def test_close_stops_the_timer_and_forgets_everyone() -> None:
    deadlines, loop, live = make(10.0)
    client = add(deadlines, live)
    deadlines.close()
    assert all(t.cancelled for t in loop.timers)
    loop.run_until(200.0)
    assert not client.conn.aborted
    assert len(deadlines) == 0
