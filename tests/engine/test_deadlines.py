"""The connect timeouts of waiting connections, on a simulated clock (no sleeping)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, cast

from hookmq.engine.client import Client
from hookmq.engine.deadlines import GRANULARITY, ConnectDeadlines
from hookmq.engine.deferred import Deferred
from hookmq.engine.protocol import ProtocolState
from hookmq.engine.settings import MqttSettings
from hookmq.engine.stats import Stats
from hookmq.mqtt.packets import Connect

#: A connection is cut at most one step after its timeout (plus float rounding of the step).
LATE = GRANULARITY + 1e-9


class FakeLoop(asyncio.AbstractEventLoop):
    """The two things ConnectDeadlines asks of a loop, its clock and a timer, on a simulated clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[asyncio.TimerHandle] = []

    def time(self) -> float:
        return self.now

    def get_debug(self) -> bool:
        return False

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        self.timers.append(handle)
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass

    def armed(self) -> list[asyncio.TimerHandle]:
        return [t for t in self.timers if not t.cancelled()]

    def run_until(self, now: float) -> None:
        """Advance the clock, firing the timers due (in order, also those armed meanwhile)."""
        self.now = now
        while True:
            due = [t for t in self.armed() if t.when() <= now]
            if not due:
                return
            timer = min(due, key=lambda t: t.when())
            self.timers.remove(timer)
            timer._run()


class FakeConn:
    """What a Client reads of its connection at construction, and the abort the deadline calls."""

    remote_address = "127.0.0.1:1"
    listener = "tcp"
    tls_peer_certificate = None

    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def new_client() -> tuple[Client, FakeConn]:
    """A real Client (the compiled build checks the type) over a fake connection."""
    conn = FakeConn()
    client = Client(cast(Any, conn), ProtocolState(MqttSettings(), 0.0), Stats(), Deferred(cast(Any, None)))
    return client, conn


def make(timeout: float = 10.0) -> tuple[ConnectDeadlines, FakeLoop, set[Client]]:
    loop = FakeLoop()
    live: set[Client] = set()
    return ConnectDeadlines(timeout, live, loop), loop, live


def add(deadlines: ConnectDeadlines, live: set[Client]) -> tuple[Client, FakeConn]:
    client, conn = new_client()
    live.add(client)
    deadlines.add(client)
    return client, conn


def test_a_connection_without_connect_is_cut_when_its_timeout_passes() -> None:
    deadlines, loop, live = make(10.0)
    client, conn = add(deadlines, live)
    loop.run_until(109.9)
    assert not conn.aborted
    loop.run_until(110.0 + LATE)
    assert conn.aborted
    assert client.error == "no CONNECT within the connect timeout"
    assert client.end_cause is not None
    assert (client.end_cause.kind, client.end_cause.detail) == ("connect-timeout", "no CONNECT within the connect timeout")
    assert len(deadlines) == 0


def test_one_timer_serves_every_connection_in_order() -> None:
    deadlines, loop, live = make(10.0)
    _, first = add(deadlines, live)
    loop.now = 103.0
    _, second = add(deadlines, live)
    loop.now = 105.0
    _, third = add(deadlines, live)
    assert len(loop.armed()) == 1  # armed for the oldest only
    loop.run_until(110.0 + LATE)
    assert (first.aborted, second.aborted, third.aborted) == (True, False, False)
    loop.run_until(113.0 + LATE)
    assert (second.aborted, third.aborted) == (True, False)
    loop.run_until(115.0 + LATE)
    assert third.aborted
    assert not loop.armed()  # nothing left waiting, no timer


def test_connections_that_sent_connect_or_ended_are_left_alone() -> None:
    deadlines, loop, live = make(10.0)
    connected, connected_conn = add(deadlines, live)
    ended, ended_conn = add(deadlines, live)
    _, waiting_conn = add(deadlines, live)
    connected.connect = Connect(client_id="c")
    live.discard(ended)
    loop.run_until(111.0)
    assert not connected_conn.aborted and not ended_conn.aborted
    assert waiting_conn.aborted


def test_close_stops_the_timer_and_forgets_everyone() -> None:
    deadlines, loop, live = make(10.0)
    _, conn = add(deadlines, live)
    deadlines.close()
    assert not loop.armed()
    loop.run_until(200.0)
    assert not conn.aborted
    assert len(deadlines) == 0


def test_connections_opened_close_together_share_one_entry() -> None:
    deadlines, loop, live = make(10.0)
    conns = []
    for step in range(5):
        loop.now = 100.05 + step * GRANULARITY / 10  # all inside one step
        conns.append(add(deadlines, live)[1])
    assert len(deadlines) == 5
    assert len(deadlines._waiting) == 1  # one (deadline, clients) entry for the five
    loop.run_until(110.0 + LATE)
    assert all(conn.aborted for conn in conns)
