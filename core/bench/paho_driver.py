"""The device workloads driven by paho-mqtt, an independent client library, as a cross-check.

The figures of ``hookmq bench`` must not rest on its own client alone. Here every device is
a paho-mqtt ``Client`` as an application would use it: ``connect``, ``loop_start`` (paho's
network thread), ``subscribe``, then ``publish`` in a loop, waiting at QoS 1/2 for each
message's ``wait_for_publish`` (PUBACK, or PUBREC -> PUBREL -> PUBCOMP) before the next one.
paho writes every packet with its own ``send()`` and answers incoming QoS 1/2 messages itself.

A few clients share a process (``clients_per_process``), each in a thread of its own, so the
GIL of one process does not serialise a hundred devices. The processes wait at one barrier,
then every client connects, subscribes and publishes inside the timed phase: the wall time
runs from that start signal until the last client has received all its messages.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import resource
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from .plan import ClientResult, WorkerResult
from .runner import RunOptions, Target, add_cpu_figures
from .sysinfo import read_cpu_seconds
from .workloads import Workload, WorkloadResult, summarise

#: Clients per load process; with one thread each plus paho's network thread.
CLIENTS_PER_PROCESS = 5
_SPAWN_ALLOWANCE = 60.0


@dataclass(frozen=True, slots=True)
class PahoDevice:
    """One device: its client id and topic (it subscribes to and publishes on the same one)."""

    client_id: str
    topic: str


@dataclass(frozen=True, slots=True)
class PahoPlan:
    """What one paho load process runs."""

    index: int
    host: str
    port: int
    qos: int
    messages: int
    payload_size: int
    devices: tuple[PahoDevice, ...]
    run_timeout: float
    setup_timeout: float
    #: Disable Nagle's algorithm on the client socket. paho-mqtt leaves it on (its default);
    #: asyncio, uvloop and Go clients turn it off.
    nodelay: bool = False


@dataclass(slots=True)
class _Device:
    """The state of one paho device while it runs (one thread)."""

    spec: PahoDevice
    plan: PahoPlan
    result: ClientResult
    all_received: threading.Event = field(default_factory=threading.Event)

    def run(self, go: float) -> None:
        try:
            self._session(go + self.plan.run_timeout)
        except Exception as exc:  # reported with the client, never lost in a thread
            self.result.error = f"{type(exc).__name__}: {exc}"

    def _session(self, deadline: float) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        plan, result = self.plan, self.result
        connected, subscribed = threading.Event(), threading.Event()
        refused: list[str] = []

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if reason.is_failure:
                refused.append(f"CONNACK {reason}")
            connected.set()

        def on_subscribe(client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
            if any(code.is_failure for code in reasons):
                refused.append(f"SUBACK {reasons}")
            subscribed.set()

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            result.received += 1
            result.last_receive = time.monotonic()
            if result.received >= result.expected:
                self.all_received.set()

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.spec.client_id, protocol=MQTTProtocolVersion.MQTTv311
        )
        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        client.connect(plan.host, plan.port, keepalive=60)
        sock = client.socket()
        if plan.nodelay and isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.loop_start()
        try:
            _wait(connected, deadline, "CONNACK")
            result.connected_at = time.monotonic()
            if refused:
                raise RuntimeError(refused[0])
            client.subscribe(self.spec.topic, plan.qos)
            _wait(subscribed, deadline, "SUBACK")
            if refused:
                raise RuntimeError(refused[0])
            payload = bytes(plan.payload_size)
            result.publish_started = time.monotonic()
            for _ in range(plan.messages):
                info = client.publish(self.spec.topic, payload, plan.qos)
                if plan.qos:
                    info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                    if not info.is_published():
                        raise TimeoutError(f"no acknowledgement for message {result.published + 1}")
                result.published += 1
            result.acked = result.published
            result.publish_finished = time.monotonic()
            _wait(self.all_received, deadline, f"all {result.expected} messages")
        finally:
            # After the clock: paho's loop_stop can race its own thread's exit after a
            # disconnect (AttributeError on a thread already gone), which is no failure of
            # the session measured.
            with contextlib.suppress(Exception):
                client.disconnect()
            with contextlib.suppress(Exception):
                client.loop_stop()


def _wait(event: threading.Event, deadline: float, what: str) -> None:
    if not event.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"timed out waiting for {what}")


def run_paho_process(plan: PahoPlan, ready: threading.Barrier, results: Queue[WorkerResult]) -> None:
    """Process entry point: wait for the start signal, run every device in a thread, report."""
    devices = [
        _Device(spec, plan, ClientResult(spec.client_id, "pair", expected=plan.messages)) for spec in plan.devices
    ]
    report = WorkerResult(index=plan.index)
    try:
        import paho.mqtt.client  # noqa: F401  (imported before the start signal, not inside the clock)

        ready.wait(plan.setup_timeout)
    except (ImportError, threading.BrokenBarrierError) as error:
        report.error = f"setup failed: {error}"
        results.put(report)
        return
    report.go = time.monotonic()
    cpu_before = _cpu_seconds()
    threads = [threading.Thread(target=device.run, args=(report.go,), daemon=True) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(plan.run_timeout + 10)
    report.cpu_s = _cpu_seconds() - cpu_before
    report.timed_out = any(thread.is_alive() for thread in threads)
    report.clients = [device.result for device in devices]
    results.put(report)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def paho_plans(
    workload: Workload, target: Target, options: RunOptions, per_process: int, nodelay: bool = False
) -> list[PahoPlan]:
    """Split a device workload's clients into processes of ``per_process`` clients."""
    run_id = secrets.token_hex(3)
    devices = [PahoDevice(f"hb-{run_id}-paho{i}", f"hb/{run_id}/{i}") for i in range(workload.clients)]
    return [
        PahoPlan(
            index=index,
            host=target.host,
            port=target.port,
            qos=workload.qos,
            messages=workload.messages,
            payload_size=options.payload,
            devices=tuple(devices[first : first + per_process]),
            run_timeout=options.run_timeout,
            setup_timeout=options.setup_timeout + _SPAWN_ALLOWANCE,
            nodelay=nodelay,
        )
        for index, first in enumerate(range(0, len(devices), per_process))
    ]


def run_paho_workload(
    workload: Workload,
    target: Target,
    options: RunOptions,
    per_process: int = CLIENTS_PER_PROCESS,
    nodelay: bool = False,
) -> WorkloadResult:
    """Run a device workload with paho-mqtt clients; the same figures as :func:`run_workload`."""
    if workload.kind != "device":
        raise ValueError(f"the paho-mqtt cross-check drives device workloads only, not {workload.kind}")
    plans = paho_plans(workload, target, options, max(1, per_process), nodelay)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(plans) + 1)
    results: Any = context.Queue()
    processes: list[BaseProcess] = [
        context.Process(target=run_paho_process, args=(plan, ready, results), name=f"hookmq-paho-{plan.index}")
        for plan in plans
    ]
    for process in processes:
        process.daemon = True
        process.start()
    reports: list[WorkerResult] = []
    broker_cpu: float | None = None
    try:
        try:
            ready.wait(options.setup_timeout + _SPAWN_ALLOWANCE)
        except threading.BrokenBarrierError:
            reports.append(WorkerResult(0, error="the paho processes did not all start in time"))
        else:
            cpu_before = read_cpu_seconds(target.pid)
            reports = _collect(results, processes, time.monotonic() + options.run_timeout + 30)
            cpu_after = read_cpu_seconds(target.pid)
            if cpu_before is not None and cpu_after is not None:
                broker_cpu = cpu_after - cpu_before
    finally:
        _reap(processes)
    missing = {plan.index for plan in plans} - {report.index for report in reports}
    reports += [WorkerResult(index, error="paho process reported nothing before the deadline") for index in missing]
    result = summarise(workload, target.name, reports, None, None)
    add_cpu_figures(result, broker_cpu, sum(report.cpu_s for report in reports))
    return result


def _collect(results: Any, processes: list[BaseProcess], deadline: float) -> list[WorkerResult]:
    reports: list[WorkerResult] = []
    while len(reports) < len(processes) and time.monotonic() < deadline:
        try:
            reports.append(results.get(timeout=0.2))
        except queue.Empty:
            if not any(p.is_alive() for p in processes) and results.empty():
                break
    return reports


def _reap(processes: list[BaseProcess]) -> None:
    deadline = time.monotonic() + 15.0
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            with contextlib.suppress(Exception):
                process.terminate()
            process.join(2.0)
        if process.is_alive():
            process.kill()
            process.join(2.0)
