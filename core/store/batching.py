"""Group commit: many concurrent store operations share one backend round trip.

A backend hands the :class:`GroupCommitter` a coroutine function that executes a list of
operations in one go (one SQLite transaction, one Redis MULTI/EXEC pipeline) and returns one
outcome per operation. Callers ``submit`` operations and get a future; a single runner task
takes everything queued since the previous batch started, so while one commit is in flight
the next batch fills up. Throughput therefore grows with concurrency while each caller still
waits only for the commit that contains its own operation.

Batches run strictly one after another in submission order, which gives every store
read-your-writes ordering even in write-behind mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from .errors import StoreClosed, StoreError, StoreUnavailable
from .settings import StorageSettings

__all__ = ["BatchExecutor", "GroupCommitter"]

Op = TypeVar("Op")

#: Executes one batch; returns, per operation, its result or the exception it raised.
BatchExecutor = Callable[[list[Op]], Awaitable[list[object]]]

_log = logging.getLogger("hookmq.store")

# Write-behind errors are logged at most this often, so a dead backend cannot flood the log.
_LOG_EVERY = 5.0


class GroupCommitter(Generic[Op]):
    """Queues operations and executes them in sequential batches on one runner task."""

    def __init__(
        self,
        execute: BatchExecutor[Op],
        *,
        name: str,
        delay: float = 0.0,
        max_batch: int = 4096,
        write_behind: bool = False,
        max_backlog: int = 100_000,
    ) -> None:
        """``delay`` (seconds) is how long a batch waits for company before it runs.

        With ``write_behind`` (``async`` durability), :meth:`write` returns as soon as the
        operation is queued, unless ``max_backlog`` operations are already waiting: then it
        waits like ``ack_after_write`` so a slow backend cannot grow memory without bound.
        """
        self._execute = execute
        self._name = name
        self._delay = delay
        self._max_batch = max_batch
        self._pending: deque[tuple[Op, asyncio.Future[object]]] = deque()
        self._wakeup = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._last: asyncio.Future[object] | None = None
        self._closing = False
        self._last_logged = 0.0
        self._write_behind = write_behind
        self._max_backlog = max_backlog

    @classmethod
    def started_for(cls, execute: BatchExecutor[Op], name: str, storage: StorageSettings) -> GroupCommitter[Op]:
        """A running committer configured by the ``[storage]`` table (batch window, size, durability)."""
        committer = cls(
            execute,
            name=name,
            delay=storage.write_batch_ms / 1000,
            max_batch=storage.write_batch_max,
            write_behind=storage.durability == "async",
        )
        committer.start()
        return committer

    @property
    def backlog(self) -> int:
        """Operations submitted and not yet taken into a batch."""
        return len(self._pending)

    def start(self) -> None:
        """Start the runner task (in the running event loop)."""
        if self._runner is None:
            self._closing = False
            self._runner = asyncio.get_running_loop().create_task(self._run(), name=f"hookmq-store-{self._name}")

    def submit(self, op: Op) -> asyncio.Future[object]:
        """Queue ``op``; the future resolves with its result once its batch has run."""
        if self._runner is None or self._closing:
            raise StoreClosed(f"{self._name} store is not open")
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        self._last = future
        self._wakeup.set()
        return future

    async def call(self, op: Op) -> object:
        """Run ``op`` in the next batch and return its result (reads, and writes whose result matters)."""
        return await self.submit(op)

    async def write(self, op: Op) -> None:
        """Run a write: wait for its commit, or only queue it in write-behind mode."""
        if self._write_behind and len(self._pending) < self._max_backlog:
            self.submit_detached(op)
        else:
            await self.submit(op)

    def submit_detached(self, op: Op) -> None:
        """Queue ``op`` without waiting for it (write-behind); a failure is logged, not raised."""
        self.submit(op).add_done_callback(self._report_detached)

    def _report_detached(self, future: asyncio.Future[object]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY:
            self._last_logged = now
            _log.error("%s store: a write-behind write was lost: %s", self._name, future.exception())

    async def drain(self) -> None:
        """Wait until everything submitted so far has run; raise if the last batch failed."""
        last = self._last
        if last is not None:
            await asyncio.shield(last)

    async def close(self) -> None:
        """Run what is queued, then stop the runner."""
        if self._runner is None:
            return
        try:
            await self.drain()
        except StoreError:
            pass  # already reported to whoever awaited the operation
        finally:
            self._closing = True
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
            self._fail_pending(StoreClosed(f"{self._name} store closed"))

    def _fail_pending(self, error: StoreError) -> None:
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(error)

    def _take_batch(self) -> list[tuple[Op, asyncio.Future[object]]]:
        count = min(len(self._pending), self._max_batch)
        return [self._pending.popleft() for _ in range(count)]

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._delay:
                await asyncio.sleep(self._delay)
            while self._pending:
                await self._run_batch(self._take_batch())

    async def _run_batch(self, batch: list[tuple[Op, asyncio.Future[object]]]) -> None:
        try:
            outcomes = await self._execute([op for op, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreClosed(f"{self._name} store closed"))
            raise
        except StoreError as error:
            outcomes = [error] * len(batch)
        except Exception as error:  # an unexpected backend failure must not kill the runner
            outcomes = [StoreUnavailable(f"{self._name} store: {error!r}")] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, StoreError):
                future.set_exception(outcome)
            elif isinstance(outcome, BaseException):
                wrapped = StoreError(f"{self._name} store: {outcome!r}")
                wrapped.__cause__ = outcome
                future.set_exception(wrapped)
            else:
                future.set_result(outcome)
