"""The worker process: runs its share of the clients on a uvloop event loop.

Phases, each bounded by a timeout: set up (connect and subscribe every client that is not
timed), wait at the *ready* barrier until every worker is set up, run the timed phase, put the
result on the queue, wait at the *release* barrier (the coordinator measures the broker's
memory meanwhile, with every connection still open), then disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading
import time
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

from . import wire
from .client import BenchClient, BrokerRefused
from .plan import ClientPlan, ClientResult, WorkerPlan, WorkerResult

_PROGRESS_PERIOD = 0.1


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard limit; return the new soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_worker(
    plan: WorkerPlan,
    ready: threading.Barrier,
    release: threading.Barrier,
    results: Queue[WorkerResult],
    progress: SynchronizedArray[Any],
) -> None:
    """Process entry point (spawned by the coordinator)."""
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(_Worker(plan, ready, release, results, progress).main())
    else:
        uvloop.run(_Worker(plan, ready, release, results, progress).main())


class _Worker:
    def __init__(
        self,
        plan: WorkerPlan,
        ready: threading.Barrier,
        release: threading.Barrier,
        results: Queue[WorkerResult],
        progress: SynchronizedArray[Any],
    ) -> None:
        self.plan = plan
        self.ready = ready
        self.release = release
        self.results = results
        self.progress = progress
        self.clients: dict[str, BenchClient] = {}
        self.connected_at: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.pending = 0
        self.all_done: asyncio.Event | None = None

    async def main(self) -> None:
        self.all_done = asyncio.Event()
        result = WorkerResult(index=self.plan.index)
        try:
            await asyncio.wait_for(self._setup(), self.plan.setup_timeout)
        except Exception as exc:
            self.ready.abort()
            result.error = f"setup failed: {_describe(exc)}"
            self.results.put(result)
            await self._teardown()
            return
        if self.plan.settle > 0:
            await asyncio.sleep(self.plan.settle)
        try:
            await asyncio.to_thread(self.ready.wait, self.plan.setup_timeout)
        except threading.BrokenBarrierError:
            result.error = "another worker failed during setup"
            self.results.put(result)
            await self._teardown()
            return
        result.go = time.monotonic()
        cpu_before = _cpu_seconds()
        result.timed_out = not await self._run()
        result.cpu_s = _cpu_seconds() - cpu_before
        result.clients = [self._client_result(client_plan) for client_plan in self.plan.clients]
        self.results.put(result)
        with contextlib.suppress(threading.BrokenBarrierError):
            await asyncio.to_thread(self.release.wait, self.plan.run_timeout + 30)
        await self._teardown()

    # -- setup -------------------------------------------------------------------------------

    async def _setup(self) -> None:
        early = [c for c in self.plan.clients if not (c.connect_in_run or c.session_in_run)]
        await self._connect_all(early, strict=True)
        for client_plan in early:
            if client_plan.subscriptions:
                await self.clients[client_plan.client_id].subscribe(
                    list(client_plan.subscriptions), self.plan.qos, client_plan.subscribe_batch
                )

    async def _connect_all(self, plans: list[ClientPlan], strict: bool) -> None:
        gate = asyncio.Semaphore(self.plan.connect_concurrency)
        await asyncio.gather(*(self._connect(p, gate, strict) for p in plans))

    async def _connect(self, client_plan: ClientPlan, gate: asyncio.Semaphore, strict: bool) -> BenchClient | None:
        """Open one connection (at most ``connect_concurrency`` opening at once); None if it failed."""
        async with gate:
            try:
                client = await BenchClient.open(
                    client_plan.client_id,
                    self.plan.host,
                    client_plan.port or self.plan.port,
                    self.plan.level,
                    self._client_done,
                    client_plan.source_ip,
                    per_packet=self.plan.per_packet,
                )
            except Exception as exc:
                if strict:
                    raise
                self.errors[client_plan.client_id] = _describe(exc)
                return None
            self.clients[client_plan.client_id] = client
            self.connected_at[client_plan.client_id] = time.monotonic()
            return client

    # -- timed phase -------------------------------------------------------------------------

    async def _run(self) -> bool:
        """Run the timed phase; False if it hit the run timeout."""
        reporter = asyncio.create_task(self._report_progress())
        try:
            await asyncio.wait_for(self._timed_phase(), self.plan.run_timeout)
            return True
        except TimeoutError:
            return False
        finally:
            reporter.cancel()
            self._write_progress()

    async def _timed_phase(self) -> None:
        assert self.all_done is not None
        await self._connect_all([c for c in self.plan.clients if c.connect_in_run], strict=False)
        sessions = [p for p in self.plan.clients if p.session_in_run]
        active = [p for p in self.plan.clients if p.client_id in self.clients and not p.session_in_run]
        self.pending = len(active) + len(sessions)
        gate = asyncio.Semaphore(self.plan.connect_concurrency)
        publishers = [self._device_session(p, gate) for p in sessions]
        for client_plan in active:
            client = self.clients[client_plan.client_id]
            client.latencies_ns = [] if self.plan.measure_latency else None
            client.expect(client_plan.expected, client_plan.publish_count)
            if client_plan.publish_topic and client_plan.publish_count:
                publishers.append(_guarded(self._publish(client, client_plan), client))
        await asyncio.gather(*publishers)
        if self.pending:
            await self.all_done.wait()

    async def _device_session(self, client_plan: ClientPlan, gate: asyncio.Semaphore) -> None:
        """Connect, subscribe, then publish: a device's whole session, inside the timed phase."""
        client = await self._connect(client_plan, gate, strict=False)
        if client is None:
            self._client_done(None)
            return
        try:
            await client.subscribe(list(client_plan.subscriptions), self.plan.qos, client_plan.subscribe_batch)
        except (BrokerRefused, ConnectionError) as exc:
            client.error = client.error or _describe(exc)
            self._client_done(client)
            return
        client.expect(client_plan.expected, client_plan.publish_count)
        if client_plan.publish_topic and client_plan.publish_count:
            await _guarded(self._publish(client, client_plan), client)

    def _publish(self, client: BenchClient, client_plan: ClientPlan) -> Any:
        assert client_plan.publish_topic is not None
        payload = bytes(max(self.plan.payload_size, 8 if self.plan.measure_latency else 0))
        template = wire.PublishTemplate(client_plan.publish_topic, payload, self.plan.qos, self.plan.level)
        if client_plan.rate:
            return client.publish_at_rate(template, client_plan.publish_count, client_plan.rate)
        return client.publish(template, client_plan.publish_count, self.plan.window)

    def _client_done(self, client: BenchClient | None) -> None:
        self.pending -= 1
        if self.pending <= 0 and self.all_done is not None:
            self.all_done.set()

    async def _report_progress(self) -> None:
        while True:
            self._write_progress()
            await asyncio.sleep(_PROGRESS_PERIOD)

    def _write_progress(self) -> None:
        connections_only = all(c.connect_in_run for c in self.plan.clients)
        if connections_only:
            self.progress[self.plan.index] = len(self.clients)
        else:
            self.progress[self.plan.index] = sum(c.received for c in self.clients.values())

    # -- results and teardown ----------------------------------------------------------------

    def _client_result(self, client_plan: ClientPlan) -> ClientResult:
        client = self.clients.get(client_plan.client_id)
        result = ClientResult(client_plan.client_id, client_plan.role, expected=client_plan.expected)
        if client is None:
            result.error = self.errors.get(client_plan.client_id, "not connected")
            return result
        result.published = client.published
        result.acked = client.acked
        result.publish_started = client.publish_started
        result.publish_finished = client.publish_finished
        result.received = client.received
        result.last_receive = client.last_receive
        result.connected_at = self.connected_at.get(client_plan.client_id, 0.0)
        result.error = client.error
        result.latencies_ns = client.latencies_ns or []
        return result

    async def _teardown(self) -> None:
        clients = list(self.clients.values())
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


async def _guarded(publishing: Any, client: BenchClient) -> None:
    # A publisher whose connection dies must not end the whole worker: its error is reported.
    try:
        await publishing
    except (BrokerRefused, ConnectionError) as exc:
        client.error = client.error or _describe(exc)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
