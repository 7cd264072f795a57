"""One snapshot stream per peer: the task that sends a peer a full state after its link came up.

Owns the running task for each node. A new link-up replaces a stream still under way; a link-down
or close cancels it; a stream that ends removes itself (`finished`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


class NodeStreams:
    """The snapshot task per node, at most one each."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, node: str, stream: Coroutine[Any, Any, None]) -> None:
        """Run ``stream`` for ``node``, cancelling one still under way."""
        self.stop(node)
        self._tasks[node] = asyncio.get_running_loop().create_task(stream)

    def stop(self, node: str) -> None:
        """Cancel the stream to ``node``, if any."""
        task = self._tasks.pop(node, None)
        if task is not None:
            task.cancel()

    def finished(self, node: str) -> None:
        """Called by a stream as it ends: forget it, unless a newer one replaced it already."""
        if self._tasks.get(node) is asyncio.current_task():
            del self._tasks[node]

    async def close(self) -> None:
        """Cancel every stream and wait for each to end."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
