"""Hook calls the synchronous message path cannot await, run in order by one task.

The delivery path is synchronous (no task per message), so a notification it raises
(`on_qos_publish`, `on_publish_dropped`, …) and a write that must pass through the packet hooks
are queued here and run, in the order they were queued, by the broker's one deferred-hooks task
or by `flush()` before a connection closes.

State owned: the queue of pending calls and the event that wakes the runner. Who changes it:
any part may append (`notify`, `call`); only `run()` (the broker's task) and `flush()` drain it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..hooks import HookFacade

log = logging.getLogger("hookmq.broker")

#: A queued call: a hook name to notify, or a coroutine function to await, with its keyword arguments.
_Pending = tuple[str | Callable[..., Awaitable[Any]], dict[str, Any]]


class Deferred:
    """The queue of deferred hook notifications and hooked writes of one broker."""

    __slots__ = ("_pending", "_wakeup", "hooks")

    def __init__(self, hooks: HookFacade) -> None:
        self.hooks = hooks
        self._pending: list[_Pending] = []
        self._wakeup: asyncio.Event | None = None

    def notify(self, name: str, **kwargs: Any) -> None:
        """Queue a notify-hook call."""
        self._pending.append((name, kwargs))
        if self._wakeup is not None:
            self._wakeup.set()

    def call(self, function: Callable[..., Awaitable[Any]], **kwargs: Any) -> None:
        """Queue ``await function(**kwargs)`` (a write through the packet hooks)."""
        self._pending.append((function, kwargs))
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(self) -> None:
        """The runner task: drain the queue whenever something is added."""
        self._wakeup = wakeup = asyncio.Event()
        if self._pending:
            wakeup.set()
        while True:
            await wakeup.wait()
            wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        """Run every queued call now, in order; a failing one is logged and the rest still run."""
        while self._pending:
            batch, self._pending = self._pending, []
            for target, kwargs in batch:
                try:
                    if isinstance(target, str):
                        await self.hooks.notify(target, **kwargs)
                    else:
                        await target(**kwargs)
                except Exception:
                    log.exception("deferred hook %s failed", getattr(target, "__name__", target))


__all__ = ["Deferred"]
