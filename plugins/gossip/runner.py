"""Where membership runs: a dedicated thread with its own event loop, or the broker's loop.

The choice is made here and only here (``[cluster] runner``). A failure detector must answer
pings within a few hundred milliseconds; in the broker's loop, a burst of MQTT work delays
every ack by as long as that burst holds the loop, which is the false-positive problem
Lifeguard describes. In its own thread, the gossip waits at most for the interpreter to
switch threads (``sys.getswitchinterval()``, 5 ms) however busy the broker's loop is.
docs/cluster.md gives the reasoning and the measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from .driver import GossipNode, NodeEvent

__all__ = ["GossipRunner", "RunnerMode"]

T = TypeVar("T")
RunnerMode = Literal["thread", "loop"]


class GossipRunner:
    """Starts, drives and stops one :class:`GossipNode` in the loop the mode chooses.

    Calls come from the caller's loop (the broker's); events go back to it. ``listener`` is
    always called in the caller's loop, whatever the mode; ``in_node_loop`` (if given) first,
    in the node's own loop, as the event happens (for the operator's log lines, which must not
    wait for a busy broker loop).
    """

    def __init__(
        self, node: GossipNode, mode: RunnerMode, listener: Callable[[NodeEvent], None],
        in_node_loop: Callable[[NodeEvent], None] | None = None,
    ) -> None:
        self.node = node
        self.mode = mode
        self._listener = listener
        self._in_node_loop = in_node_loop
        self._caller: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start the node (and its thread, in thread mode)."""
        self._caller = asyncio.get_running_loop()
        self.node.listener = self._forward
        if self.mode == "loop":
            self._loop = self._caller
            await self.node.start()
            return
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="hookmq-gossip", daemon=True)
        self._thread.start()
        try:
            await self.call(self.node.start)
        except BaseException:
            await self._end_thread()
            raise

    async def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run ``await function()`` in the node's loop and return its result here."""
        if self._loop is None or self._loop is self._caller:
            return await function()
        future = asyncio.run_coroutine_threadsafe(_awaited(function), self._loop)
        return await asyncio.wrap_future(future)

    async def run(self, function: Callable[[], T]) -> T:
        """Run a plain ``function()`` in the node's loop (the state machine is not thread-safe)."""

        async def wrapper() -> T:
            return function()

        return await self.call(wrapper)

    async def stop(self, leave_timeout: float) -> bool:
        """Leave gracefully (waiting at most ``leave_timeout``), close the node, end the thread."""
        left = False
        try:
            left = await self.call(lambda: self.node.leave(leave_timeout))
        finally:
            with contextlib.suppress(Exception):
                await self.call(self.node.stop)
            await self._end_thread()
        return left

    async def _end_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 5.0)
        if not thread.is_alive():
            loop.close()
        self._thread = None

    def _forward(self, event: NodeEvent) -> None:
        if self._in_node_loop is not None:
            self._in_node_loop(event)
        caller = self._caller
        if caller is None or caller is self._loop:
            self._listener(event)
        elif not caller.is_closed():
            caller.call_soon_threadsafe(self._listener, event)


async def _awaited(function: Callable[[], Awaitable[T]]) -> T:
    return await function()
