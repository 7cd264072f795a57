"""The connect timeout of every connection that has not sent CONNECT yet, kept with one timer.

A connection has `MqttSettings.connect_timeout` seconds to send its CONNECT. An
``asyncio.timeout`` around each handshake read cost a timer (a ``call_at``, a handle and its
cancellation) per connection, a measurable part of accepting one (docs/benchmarks.md, "The
connect path"). Every deadline here is the same timeout after its connection opened, so
they arrive in order: one queue, one timer armed for its oldest entry. The connections that
opened within the same `GRANULARITY` share one entry (a list slot each, not a tuple and a
float each: the queue holds every connection of the last timeout's worth, and that memory
counts in the bench's memory per idle connection). When a deadline passes and the connection
still has not sent CONNECT, it is recorded as a connect timeout and aborted; its handshake
then reads the end of the stream and stops. A connection is cut at most `GRANULARITY` seconds
after its timeout.

State owned: the queue of (deadline, clients) and its one timer. Who changes it: the
handshake adds each new connection (`ConnectDeadlines.add`); the timer removes what is due;
the broker stops it (`ConnectDeadlines.close`).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

__all__ = ["GRANULARITY", "ConnectDeadlines", "timed_out"]

#: Seconds: connections that open within one such step share a deadline (their step's end).
GRANULARITY = 0.1


def timed_out(client: Client) -> None:
    """Record that ``client`` sent no CONNECT in time, and cut its connection."""
    client.error = "no CONNECT within the connect timeout"
    client.note_end("connect-timeout", detail=client.error)
    client.conn.abort()


class ConnectDeadlines:
    """Connections waiting for their CONNECT, in the order they opened, each with its deadline."""

    __slots__ = ("_live", "_loop", "_timer", "_waiting", "timeout")

    def __init__(self, timeout: float, live: Collection[Client], loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.timeout = timeout
        #: The broker's live connections: one that ended is no longer in it and is skipped.
        self._live = live
        self._waiting: deque[tuple[float, list[Client]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        #: The loop whose clock and timer are used (the running one from the first `add`, unless given).
        self._loop = loop

    def __len__(self) -> int:
        return sum(len(clients) for _, clients in self._waiting)

    def add(self, client: Client) -> None:
        """Start ``client``'s connect timeout now (called before its first read)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = math.ceil((loop.time() + self.timeout) / GRANULARITY) * GRANULARITY
        waiting = self._waiting
        if waiting and waiting[-1][0] >= deadline:
            waiting[-1][1].append(client)
        else:
            waiting.append((deadline, [client]))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """Cut every connection whose deadline passed without a CONNECT; arm the timer for the next."""
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        waiting = self._waiting
        live = self._live
        while waiting and waiting[0][0] <= now:
            for client in waiting.popleft()[1]:
                if client.connect is None and client in live:
                    timed_out(client)
        if waiting:
            self._timer = loop.call_at(waiting[0][0], self._expire)

    def close(self) -> None:
        """Stop the timer and forget every connection (the broker is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
