"""Failure detection under MQTT load: the false-positive problem Lifeguard was written for.

Three hookmq processes on loopback: node A is saturated by the MQTT bench's pairs workload
(``hookmq.bench``'s own runner and workers, round after round at full speed), node B shares
one CPU with a busy-looping hog process (both pinned to it), and a third node C joins, is
killed with ``kill -9`` and replaced by a new one, again and again while the load lasts. Every
node's log is then searched for a live node suspected, refuted or declared failed, and A's and
B's reports of each kill are timed as in :mod:`.trials`. Run once per ``runner`` (membership in
the broker's loop, or in its own thread) to see where membership must run.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .processes import ChildProcess, HookmqNode, wait_until
from .trials import JOIN_TIMEOUT, STAMP_SLACK

__all__ = ["LoadRun", "LoadSettings", "run_under_load"]

HOG = "while True: pass"


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """What the load is: the pairs workload's size, how long, and whether B gets a CPU hog."""

    duration: float = 120.0
    clients: int = 100
    messages: int = 2000
    qos: int = 0
    workers: int = 1
    hog: bool = True
    settle: float = 2.0
    wait: float = 40.0
    #: Seconds of load before the first kill (the load is at full speed by then).
    warmup: float = 5.0


@dataclass(frozen=True, slots=True)
class KillReport:
    """One kill of a C node during the load: A's and B's report delays (None: not within the wait)."""

    victim: str
    killed_at: float
    delays: dict[str, float | None]


@dataclass(slots=True)
class LoadRun:
    """What one run under load measured."""

    runner: str
    settings: LoadSettings
    kills: list[KillReport] = field(default_factory=list)
    #: Live nodes declared failed: the observer and its line, one per observer and failure.
    false_failures: list[str] = field(default_factory=list)
    #: Probes of a live node that failed ("Suspect X has failed, no acks received"), all nodes.
    false_suspicions: int = 0
    #: Accusations a live node had to refute, all nodes.
    refutations: int = 0
    rounds: int = 0
    messages: int = 0
    #: Messages per second of each load round.
    rates: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def delays(self) -> list[float]:
        """Every report of every kill."""
        return [d for kill in self.kills for d in kill.delays.values() if d is not None]

    def missing(self) -> int:
        """Reports of a kill that never came within the wait."""
        return sum(1 for kill in self.kills for d in kill.delays.values() if d is None)

    def summary(self) -> dict[str, float]:
        """Detection figures (count, median, max) and the load's median rate."""
        values = sorted(self.delays())
        figures: dict[str, float] = {"kills": float(len(self.kills)), "reports": float(len(values))}
        if values:
            figures.update(median=statistics.median(values), max=values[-1])
        if self.rates:
            figures["msg_per_s"] = statistics.median(self.rates)
        return figures


def run_under_load(
    workdir: Path, runner: Literal["thread", "loop"], settings: LoadSettings | None = None, *,
    progress: Callable[[str], None] | None = None,
) -> LoadRun:
    """One run: A under MQTT load, B beside a CPU hog, C killed and replaced until the load ends."""
    settings = settings or LoadSettings()
    say = progress or (lambda _text: None)
    run = LoadRun(runner, settings)
    tag = uuid.uuid4().hex[:4]
    cluster: dict[str, str] = {"runner": runner}
    a = HookmqNode(workdir, f"A{tag}", cluster=cluster)
    nodes = [a]
    started = time.time()
    try:
        b = HookmqNode(workdir, f"B{tag}", members=[a.endpoint], cluster=cluster)
        nodes.append(b)
        if not wait_until(lambda: _sees(a, b) and _sees(b, a), JOIN_TIMEOUT):
            run.errors.append("A and B did not join each other")
            return run
        mqtt_port = a.mqtt_port()
        with _hog_beside(b, settings.hog), _mqtt_load(a, mqtt_port, settings, run) as loading:
            say(f"runner={runner}: load on {a.name}, hog beside {b.name}")
            time.sleep(settings.warmup)
            index = 0
            while loading.is_set() and time.time() - started < settings.duration:
                index += 1
                report = _kill_cycle(workdir, f"C{tag}x{index}", a, b, cluster, settings, nodes)
                if report is None:
                    run.errors.append(f"C{index} did not join")
                    continue
                run.kills.append(report)
                say(f"runner={runner}: kill {index}: " + ", ".join(f"{k} {v:.2f} s" if v is not None else f"{k} -"
                                                               for k, v in report.delays.items()))
        time.sleep(settings.settle)  # anything the load's end still shakes loose
        _judge(run, nodes)
    finally:
        for node in nodes:
            node.stop()
        run.seconds = time.time() - started
    return run


def _sees(node: HookmqNode, other: HookmqNode) -> bool:
    return node.first(f"A node has joined: {other.name}") is not None


def _kill_cycle(
    workdir: Path, name: str, a: HookmqNode, b: HookmqNode, cluster: dict[str, str], settings: LoadSettings,
    nodes: list[HookmqNode],
) -> KillReport | None:
    """Start a C node, wait until everyone sees everyone, kill it, time A's and B's reports."""
    c = HookmqNode(workdir, name, members=[a.endpoint, b.endpoint], cluster=cluster)
    nodes.append(c)
    if not wait_until(lambda: _sees(a, c) and _sees(b, c) and _sees(c, a) and _sees(c, b), JOIN_TIMEOUT):
        c.stop()
        return None
    time.sleep(settings.settle)
    killed = c.kill()
    line = f"A node has failed: {c.name}"
    wait_until(lambda: a.first(line, killed - STAMP_SLACK) and b.first(line, killed - STAMP_SLACK), settings.wait)
    return KillReport(c.name, killed, {
        node.name: None if (stamp := node.first(line, killed - STAMP_SLACK)) is None else max(0.0, stamp - killed)
        for node in (a, b)
    })


def _judge(run: LoadRun, nodes: list[HookmqNode]) -> None:
    """Search every log for live nodes accused: failures, failed probes and refutations."""
    death = {kill.victim: kill.killed_at for kill in run.kills}
    for node in nodes:
        for stamp, message in node.records():
            prefix = "A node has failed: "
            if message.startswith(prefix) and stamp < death.get(message[len(prefix):], float("inf")) - STAMP_SLACK:
                run.false_failures.append(f"{node.name}: {message}")
            if message.startswith("Suspect "):
                accused = message.split(" ", 2)[1]
                run.false_suspicions += stamp < death.get(accused, float("inf")) - STAMP_SLACK
            run.refutations += message.startswith("Refuting")


@contextlib.contextmanager
def _hog_beside(node: HookmqNode, enabled: bool) -> Iterator[None]:
    """A busy-looping process pinned, with every thread of ``node``, to one CPU."""
    if not enabled:
        yield
        return
    cpus = sorted(os.sched_getaffinity(0))
    hog = ChildProcess([sys.executable, "-c", HOG])
    try:
        if len(cpus) > 1:
            for pid in (hog.pid, *_threads(node.pid)):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, {cpus[-1]})
        yield
    finally:
        hog.stop()


def _threads(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    return [pid]


@contextlib.contextmanager
def _mqtt_load(node: HookmqNode, port: int, settings: LoadSettings, run: LoadRun) -> Iterator[threading.Event]:
    """The bench's pairs workload against ``node``, round after round, in a thread, until the duration ends.

    The event is set while the load runs.
    """
    from hookmq.bench.runner import RunOptions, Target, run_workload
    from hookmq.bench.workloads import Workload

    workload = Workload("pairs", clients=settings.clients, messages=settings.messages, qos=settings.qos)
    target = Target(node.name, node.address, port, pid=node.pid)
    end = time.time() + settings.duration
    loading = threading.Event()
    loading.set()

    def rounds() -> None:
        try:
            while time.time() < end:
                options = RunOptions(workers=settings.workers, progress=False, run_timeout=max(10.0, end - time.time()))
                result = run_workload(workload, target, options)
                run.rounds += 1
                run.messages += result.received
                rate = result.metrics.get("msg_per_s")
                if rate:
                    run.rates.append(rate)
                if result.errors:
                    run.errors.extend(result.errors[:3])
        except Exception as error:  # reported, not raised: the measurement goes on without load
            run.errors.append(f"load: {error!r}")
        finally:
            loading.clear()

    thread = threading.Thread(target=rounds, name="mqtt-load", daemon=True)
    thread.start()
    try:
        yield loading
    finally:
        thread.join(settings.duration + 120.0)
