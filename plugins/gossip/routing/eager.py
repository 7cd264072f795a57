"""Start a coroutine at once, in the caller's turn: most cross-node deliveries then need no task at all.

A forwarded message's delivery (`Broker.inject`) usually completes without suspending (QoS 0,
or no store to wait for). Wrapping every one in an `asyncio.Task` cost a task object, a loop
turn and a done-callback per received frame, the largest single cost of the receiving node.
:func:`start_eagerly` runs the coroutine until it first suspends; only then does the rest go
into a task (what Python 3.12's eager task factory does, written here for 3.11).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["start_eagerly"]

T = TypeVar("T")


def start_eagerly(coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T] | None:
    """Run ``coroutine`` now; None if it finished (its result is dropped), else a task for the rest.

    An exception it raises before suspending propagates to the caller, as from a plain call.
    """
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return None
    rest = asyncio.ensure_future(_Resumed(coroutine, yielded))
    # A task cancelled before its first step never resumes the coroutine: close it then (its
    # `finally` runs); closing a finished coroutine does nothing.
    rest.add_done_callback(lambda _: coroutine.close())
    return rest


class _Resumed:
    """An awaitable that continues a coroutine which already yielded ``first`` to the event loop."""

    __slots__ = ("_coroutine", "_first")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coroutine = coroutine
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, yielded = self._coroutine, self._first
        while True:
            try:
                sent = yield yielded  # the task waits for the future the coroutine yielded
            except BaseException as error:  # cancellation or the future's failure: into the coroutine
                try:
                    yielded = coroutine.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value
