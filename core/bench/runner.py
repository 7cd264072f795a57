"""The coordinator: spawns the worker processes for one workload and gathers their reports."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any
from urllib.parse import urlsplit

from .plan import ClientPlan, WorkerPlan, WorkerResult
from .sysinfo import read_context_switches, read_cpu_seconds, read_cpu_wait_seconds, read_rss_kib
from .worker import raise_fd_limit, run_worker
from .workloads import Workload, WorkloadResult, summarise

#: Puts a workload's connections on the nodes of a cluster (``ClientPlan.port``).
Placement = Callable[[list[ClientPlan]], list[ClientPlan]]
_SPAWN_ALLOWANCE = 30.0  # seconds a worker may take to start and import before its setup begins
_TEARDOWN_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Target:
    """A broker to drive: a name for reports, its address and (optionally) its PID for memory and CPU.

    ``other_pids``: the other processes of the same broker (the nodes of a ``hookmq:x2`` cluster),
    whose memory and CPU are added to the first's.
    """

    name: str
    host: str
    port: int
    pid: int | None = None
    other_pids: tuple[int, ...] = ()

    @property
    def pids(self) -> tuple[int, ...]:
        """Every process of the broker (none when the PID is unknown)."""
        return () if self.pid is None else (self.pid, *self.other_pids)

    @classmethod
    def from_url(cls, url: str, name: str | None = None, pid: int | None = None) -> Target:
        """Parse ``mqtt://host:port`` (port 1883 when omitted)."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}: only mqtt:// (plain TCP) is driven")
        host = parts.hostname or "127.0.0.1"
        return cls(name or host, host, parts.port or 1883, pid)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to run a workload, independent of which one."""

    workers: int = max(1, os.cpu_count() or 1)
    level: int = 4
    payload: int = 64
    window: int = 20
    setup_timeout: float = 120.0
    run_timeout: float = 120.0
    progress: bool = True
    #: pairs/fanout/fanin/filters: write every packet on its own (device workloads always do).
    per_packet: bool = False
    #: pairs/filters: connect and subscribe inside the timed phase (device workloads always do).
    timed_connect: bool = False
    #: Seconds every worker waits after setup before the timed phase (cluster: routes to spread).
    settle: float = 0.0


def run_workload(workload: Workload, target: Target, options: RunOptions, place: Placement | None = None) -> WorkloadResult:
    """Run ``workload`` once against ``target`` and summarise it; ``place`` puts its clients on a cluster's nodes."""
    run_id = secrets.token_hex(3)
    clients = workload.client_plans(run_id, target.host)
    if options.timed_connect and workload.kind in ("pairs", "filters"):
        clients = [c if c.role == "holder" else dataclasses.replace(c, session_in_run=True) for c in clients]
    return run_clients(workload, place(clients) if place else clients, target, options)


def run_clients(workload: Workload, clients: list[ClientPlan], target: Target, options: RunOptions) -> WorkloadResult:
    """Run these connections (a workload's own, or placed on several brokers by ``ClientPlan.port``) and summarise."""
    raise_fd_limit()
    plans = _split(clients, options, workload, target)
    rss_before = _rss_kib(target)
    coordinator = _Coordinator(plans, options, workload, target)
    reports, rss_after = coordinator.run()
    result = summarise(workload, target.name, reports, rss_before, rss_after)
    add_cpu_figures(result, coordinator.broker_cpu_s, sum(r.cpu_s for r in reports), coordinator.broker_wait_s)
    if coordinator.broker_switches is not None:
        result.metrics["broker_sleeps"], result.metrics["broker_preemptions"] = coordinator.broker_switches
    return result


def add_cpu_figures(result: WorkloadResult, broker_cpu_s: float | None, loadgen_cpu_s: float,
                    broker_wait_s: float | None = None) -> None:
    """CPU seconds of the broker and of the load generator over the timed phase, and their share of it.

    A load generator busy for most of the wall time on the cores left to it is the bottleneck,
    and then the run measures the load generator, not the broker. ``broker_wait_s`` is the time
    the broker was runnable but not running (waiting for a core).
    """
    result.metrics["broker_wait_s"] = broker_wait_s
    wall = result.wall_s
    result.metrics["broker_cpu_s"] = broker_cpu_s
    result.metrics["loadgen_cpu_s"] = loadgen_cpu_s
    result.metrics["broker_cpu_share"] = broker_cpu_s / wall if broker_cpu_s is not None and wall > 0 else None
    result.metrics["loadgen_cpu_share"] = loadgen_cpu_s / wall if wall > 0 else None


def _summed(read: Callable[[int | None], float | None], target: Target) -> float | None:
    """``read`` summed over the broker's processes; None if any of them is unknown (or no PID)."""
    values = [read(pid) for pid in target.pids]
    if not values or any(value is None for value in values):
        return None
    return sum(value for value in values if value is not None)


def _rss_kib(target: Target) -> int | None:
    """The broker's resident memory, all its processes together."""
    total = _summed(read_rss_kib, target)
    return None if total is None else int(total)


def _summed_switches(target: Target) -> tuple[int, int] | None:
    """(voluntary, involuntary) context switches summed over the broker's processes, or None."""
    counts = [read_context_switches(pid) for pid in target.pids]
    if not counts or any(count is None for count in counts):
        return None
    return sum(c[0] for c in counts if c), sum(c[1] for c in counts if c)


def _split(clients: list[ClientPlan], options: RunOptions, workload: Workload, target: Target) -> list[WorkerPlan]:
    count = max(1, min(options.workers, len(clients)))
    return [
        WorkerPlan(
            index=index,
            host=target.host,
            port=target.port,
            level=options.level,
            qos=workload.qos,
            payload_size=options.payload,
            window=1 if workload.per_packet else options.window,
            clients=tuple(clients[index::count]),
            setup_timeout=options.setup_timeout,
            run_timeout=options.run_timeout,
            measure_latency=workload.kind == "latency",
            per_packet=workload.per_packet or options.per_packet,
            settle=options.settle,
        )
        for index in range(count)
    ]


class _Coordinator:
    """Owns the processes, the two barriers, the result queue and the progress bar of one run."""

    def __init__(self, plans: list[WorkerPlan], options: RunOptions, workload: Workload, target: Target) -> None:
        self.plans = plans
        self.options = options
        self.workload = workload
        self.target = target
        context = multiprocessing.get_context("spawn")
        self.ready = context.Barrier(len(plans) + 1)
        self.release = context.Barrier(len(plans) + 1)
        self.results: Any = context.Queue()
        self.progress: Any = context.Array("q", len(plans), lock=False)
        self.broker_cpu_s: float | None = None
        self.broker_wait_s: float | None = None
        #: The broker's (voluntary, involuntary) context switches during the timed phase.
        self.broker_switches: tuple[int, int] | None = None
        self.processes: list[BaseProcess] = [
            context.Process(
                target=run_worker,
                args=(plan, self.ready, self.release, self.results, self.progress),
                name=f"hookmq-bench-{plan.index}",
                daemon=True,
            )
            for plan in plans
        ]

    def run(self) -> tuple[list[WorkerResult], int | None]:
        """Start the workers, run the timed phase, collect reports; always reaps the processes."""
        for process in self.processes:
            process.start()
        try:
            try:
                self.ready.wait(self.options.setup_timeout + _SPAWN_ALLOWANCE)
            except threading.BrokenBarrierError:
                return self._collect(deadline=time.monotonic() + 5.0, show=False), None
            cpu_before = _summed(read_cpu_seconds, self.target)
            wait_before = _summed(read_cpu_wait_seconds, self.target)
            switches_before = _summed_switches(self.target)
            reports = self._collect(time.monotonic() + self.options.run_timeout + _SPAWN_ALLOWANCE, True)
            cpu_after = _summed(read_cpu_seconds, self.target)
            wait_after = _summed(read_cpu_wait_seconds, self.target)
            switches_after = _summed_switches(self.target)
            if switches_before is not None and switches_after is not None:
                self.broker_switches = (switches_after[0] - switches_before[0], switches_after[1] - switches_before[1])
            if wait_before is not None and wait_after is not None:
                self.broker_wait_s = wait_after - wait_before
            rss_after = _rss_kib(self.target)
            if cpu_before is not None and cpu_after is not None:
                self.broker_cpu_s = cpu_after - cpu_before
            with contextlib.suppress(threading.BrokenBarrierError):
                self.release.wait(_TEARDOWN_TIMEOUT)
            return reports, rss_after
        finally:
            self._reap()

    def _collect(self, deadline: float, show: bool) -> list[WorkerResult]:
        reports: list[WorkerResult] = []
        with _progress_bar(self, show) as bar:
            while len(reports) < len(self.processes) and time.monotonic() < deadline:
                try:
                    reports.append(self.results.get(timeout=0.2))
                except queue.Empty:
                    if not any(p.is_alive() for p in self.processes) and self.results.empty():
                        break
                if bar is not None:
                    bar.update(sum(self.progress) - bar.n)
        missing = {p.index for p in self.plans} - {r.index for r in reports}
        reports += [WorkerResult(index, error="worker reported nothing before the deadline") for index in missing]
        return sorted(reports, key=lambda report: report.index)

    def _reap(self) -> None:
        deadline = time.monotonic() + _TEARDOWN_TIMEOUT
        for process in self.processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join(2.0)


@contextlib.contextmanager
def _progress_bar(coordinator: _Coordinator, show: bool) -> Any:
    if not (show and coordinator.options.progress):
        yield None
        return
    from tqdm import tqdm  # type: ignore[import-untyped]

    unit = "conn" if coordinator.workload.kind == "connections" else "msg"
    label = f"{coordinator.target.name}: {coordinator.workload.name}"
    with tqdm(total=coordinator.workload.progress_total, desc=label, unit=unit, file=sys.stderr, leave=False) as bar:
        yield bar
