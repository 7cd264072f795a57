"""``hookmq bench cluster``: what a cluster costs and gives, measured on real broker processes.

Every node is a hookmq process (:class:`.processes.HookmqNode`) bound and advertised on
127.0.0.1; the load is the MQTT bench's own workers (:func:`hookmq.bench.runner.run_clients`),
each connection placed on a node by its port. Five parts, each bounded in count and time:

- **throughput**: N publishers on node 1, their N subscribers on node 2 (every message crosses
  the link), QoS 0 and 1, beside the same clients all on a lone node, alternating round by round;
- **latency**: the same split at a paced rate, publish-to-receipt percentiles, beside one node;
- **scale-out**: the pairs workload (each client publishes to its own topic: local traffic)
  with its clients spread round-robin over 1, 2 and 3 nodes: aggregate msg/s;
- **join**: a node restarted with F filters in a persistent session (SQLite) joins a running
  node: seconds from its process start until a message published on the other node to its last
  filter arrives;
- **takeover**: a persistent client (v5, session expiry) reconnecting from node 1 to node 2 and
  back: CONNECT-to-CONNACK time with the session present, beside reconnects on one node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .processes import HookmqNode, wait_until

__all__ = ["PARTS", "ClusterBench", "ClusterSettings", "Nodes", "measure"]

PARTS = ("throughput", "latency", "scaleout", "join", "takeover")
#: Seconds a node may take to start, and a pair of nodes to join and bring their links up.
START_TIMEOUT = 30.0
#: Seconds after setup before a timed phase: subscriptions reach the other nodes' tries.
SETTLE = 1.0


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Sizes, counts and bounds of one run (``quick()`` for a test)."""

    clients: int = 50
    messages: int = 2000
    rate: float = 1000.0
    duration: float = 10.0
    rounds: int = 3
    qos_levels: tuple[int, ...] = (0, 1)
    scale_sizes: tuple[int, ...] = (1, 2, 3)
    scale_clients: int = 60
    scale_messages: int = 2000
    join_filters: int = 100_000
    join_trials: int = 2
    takeover_trials: int = 20
    workers: int = 2
    timeout: float = 90.0

    @classmethod
    def quick(cls, workers: int = 1) -> ClusterSettings:
        """Small sizes: the whole run in well under a minute."""
        return cls(clients=4, messages=200, rate=200.0, duration=1.0, rounds=1, scale_sizes=(1, 2),
                   scale_clients=4, scale_messages=200, join_filters=200, join_trials=1, takeover_trials=3,
                   workers=workers, timeout=30.0)


@dataclass(slots=True)
class Figure:
    """One measured row: a part, a case (``one node``/``cross-node``/``3 nodes``…), and its figures."""

    part: str
    case: str
    round: int
    figures: dict[str, float]
    complete: bool = True
    note: str = ""


@dataclass(slots=True)
class ClusterBench:
    """Everything one run measured."""

    settings: ClusterSettings
    cores: int
    rows: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, part: str, case: str, key: str) -> list[float]:
        """Every round's ``key`` of one part and case."""
        return [row.figures[key] for row in self.rows if row.part == part and row.case == case and key in row.figures]

    def median(self, part: str, case: str, key: str) -> float | None:
        """The median over the rounds, None if never measured."""
        values = self.of(part, case, key)
        return statistics.median(values) if values else None

    def ratios(self, part: str, case: str, baseline: str, key: str) -> list[float]:
        """``case`` over ``baseline``, round by round (rounds alternate, so each pair ran minutes apart at most)."""
        base = {row.round: row.figures.get(key) for row in self.rows if row.part == part and row.case == baseline}
        found = []
        for row in self.rows:
            if row.part == part and row.case == case:
                mine, other = row.figures.get(key), base.get(row.round)
                if mine and other:
                    found.append(mine / other)
        return found

    def as_json(self) -> dict[str, Any]:
        """The settings, the machine's cores and every row."""
        return {"settings": dataclasses.asdict(self.settings), "cores": self.cores, "seconds": self.seconds,
                "rows": [dataclasses.asdict(row) for row in self.rows], "errors": self.errors}


def measure(workdir: Path, settings: ClusterSettings, parts: Sequence[str] = PARTS,
            progress: Callable[[str], None] | None = None) -> ClusterBench:
    """Run the chosen parts; every node started is stopped before this returns."""
    import os

    say = progress or (lambda _text: None)
    bench = ClusterBench(settings, len(os.sched_getaffinity(0)))
    started = time.monotonic()
    with Nodes(workdir) as nodes:
        if "throughput" in parts or "latency" in parts or "takeover" in parts or "join" in parts:
            single = nodes.cluster("S", 1)[0]
            pair = nodes.cluster("P", 2)
            if "throughput" in parts:
                _throughput(bench, single, pair, say)
            if "latency" in parts:
                _latency(bench, single, pair, say)
            if "takeover" in parts:
                _takeover(bench, single, pair, say)
            if "join" in parts:
                _join(bench, nodes, pair[0], say)
            nodes.stop_all()
        if "scaleout" in parts:
            _scaleout(bench, nodes, say)
    bench.seconds = time.monotonic() - started
    return bench


class Nodes:
    """The node processes of a run: started here, every one stopped on the way out."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tag = uuid.uuid4().hex[:4]
        self.running: list[HookmqNode] = []

    def __enter__(self) -> Nodes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        """SIGTERM to every node, then wait for each (killing what outlives the grace)."""
        for node in self.running:
            node.terminate()
        for node in self.running:
            node.stop(grace=5.0)
        self.running.clear()

    def start(self, name: str, members: Sequence[str] = (), extra: Sequence[str] = ()) -> HookmqNode:
        """One node named ``name`` + the run's tag, joined to ``members``; returns once it listens for MQTT."""
        node = HookmqNode(self.workdir, f"{name}{self.tag}", members=members, cluster={"runner": "thread"},
                          log_level="INFO", extra=extra)
        self.running.append(node)
        node.mqtt_port(START_TIMEOUT)
        return node

    def cluster(self, prefix: str, size: int, extra: Sequence[str] = ()) -> list[HookmqNode]:
        """``size`` nodes, each joined to the first, links up between every two; ``extra``: more TOML lines for each."""
        first = self.start(f"{prefix}1", extra=extra)
        nodes = [first] + [self.start(f"{prefix}{index}", [first.endpoint], extra)
                           for index in range(2, size + 1)]
        if not wait_until(lambda: all(linked(a, b) for a in nodes for b in nodes if a is not b), START_TIMEOUT):
            raise RuntimeError(f"cluster {prefix}: the links did not come up:\n{nodes[-1].text()}")
        return nodes

    def remove(self, node: HookmqNode) -> None:
        node.terminate()
        node.stop(grace=5.0)
        with contextlib.suppress(ValueError):
            self.running.remove(node)


def linked(node: HookmqNode, other: HookmqNode) -> bool:
    """``node`` logged its data link to ``other`` up."""
    return node.first(f"Link up: {other.name}") is not None


# ---------------------------------------------------------------------------------------- MQTT load


def _options(settings: ClusterSettings, settle: float = SETTLE) -> Any:
    from hookmq.bench.runner import RunOptions

    return RunOptions(workers=settings.workers, progress=False, run_timeout=settings.timeout,
                      setup_timeout=settings.timeout, settle=settle)


def split_plans(run_id: str, count: int, messages: int, publish_port: int, subscribe_port: int,
                rate: float | None = None) -> list[Any]:
    """``count`` publisher/subscriber couples, one topic each: publishers on one port, subscribers on another."""
    from hookmq.bench.plan import ClientPlan

    prefix = f"hc/{run_id}"
    plans = []
    for index in range(count):
        topic = f"{prefix}/{index}"
        plans.append(ClientPlan(f"hc-{run_id}-s{index}", "subscriber", (topic,), expected=messages,
                                port=subscribe_port))
        plans.append(ClientPlan(f"hc-{run_id}-p{index}", "publisher", publish_topic=topic, publish_count=messages,
                                rate=rate, port=publish_port))
    return plans


def _split_run(workload: Any, settings: ClusterSettings, publish: HookmqNode, subscribe: HookmqNode,
               rate: float | None = None) -> Any:
    from hookmq.bench.runner import Target, run_clients

    run_id = uuid.uuid4().hex[:6]
    count = workload.latency_count if workload.kind == "latency" else workload.messages
    plans = split_plans(run_id, workload.clients, count, publish.mqtt_port(), subscribe.mqtt_port(), rate)
    return run_clients(workload, plans, Target(publish.name, publish.address, publish.mqtt_port()),
                       _options(settings))


def _record(bench: ClusterBench, part: str, case: str, index: int, result: Any, keys: Sequence[str]) -> Figure:
    figures = {key: float(value) for key in keys if (value := result.metrics.get(key)) is not None}
    figures["received"] = float(result.received)
    figures["expected"] = float(result.expected)
    note = "" if result.complete else (result.errors[0] if result.errors else "timed out")
    row = Figure(part, case, index, figures, result.complete, note[:200])
    bench.rows.append(row)
    return row


def _alternating(index: int) -> tuple[str, str]:
    return ("one node", "cross-node") if index % 2 == 0 else ("cross-node", "one node")


def _throughput(bench: ClusterBench, single: HookmqNode, pair: list[HookmqNode], say: Callable[[str], None]) -> None:
    from hookmq.bench.workloads import Workload

    settings = bench.settings
    for qos in settings.qos_levels:
        workload = Workload("pairs", clients=settings.clients, messages=settings.messages, qos=qos)
        for index in range(settings.rounds):
            for case in _alternating(index):
                publish, subscribe = (single, single) if case == "one node" else (pair[0], pair[1])
                result = _split_run(workload, settings, publish, subscribe)
                row = _record(bench, f"throughput q{qos}", case, index, result, ("msg_per_s", "wall_s"))
                say(f"throughput q{qos} {case} round {index + 1}: {row.figures.get('msg_per_s', 0):,.0f} msg/s "
                    f"({result.received}/{result.expected})")


def _latency(bench: ClusterBench, single: HookmqNode, pair: list[HookmqNode], say: Callable[[str], None]) -> None:
    from hookmq.bench.workloads import Workload

    settings = bench.settings
    for qos in settings.qos_levels:
        workload = Workload("latency", clients=settings.clients, qos=qos, rate=settings.rate,
                            duration=settings.duration)
        for index in range(settings.rounds):
            for case in _alternating(index):
                publish, subscribe = (single, single) if case == "one node" else (pair[0], pair[1])
                result = _split_run(workload, settings, publish, subscribe, rate=settings.rate / settings.clients)
                row = _record(bench, f"latency q{qos}", case, index, result, ("p50_ms", "p99_ms", "p999_ms"))
                say(f"latency q{qos} {case} round {index + 1}: p50 {row.figures.get('p50_ms', 0):.2f} ms, "
                    f"p99 {row.figures.get('p99_ms', 0):.2f} ms ({result.received}/{result.expected})")


def _scaleout(bench: ClusterBench, nodes: Nodes, say: Callable[[str], None]) -> None:
    from hookmq.bench.placement import spread
    from hookmq.bench.runner import Target, run_clients
    from hookmq.bench.workloads import Workload

    settings = bench.settings
    workload = Workload("pairs", clients=settings.scale_clients, messages=settings.scale_messages, qos=0)
    clusters = {size: nodes.cluster(f"N{size}x", size) for size in settings.scale_sizes}
    for index in range(settings.rounds):
        order = list(settings.scale_sizes)
        shift = index % len(order)
        for size in order[shift:] + order[:shift]:
            members = clusters[size]
            ports = [node.mqtt_port() for node in members]
            placed = spread(workload.client_plans(uuid.uuid4().hex[:6], members[0].address), ports)
            result = run_clients(workload, placed, Target(members[0].name, members[0].address, ports[0]),
                                 _options(settings))
            row = _record(bench, "scale-out", f"{size} node{'s' if size > 1 else ''}", index, result,
                          ("msg_per_s", "wall_s"))
            say(f"scale-out {size} node(s) round {index + 1}: {row.figures.get('msg_per_s', 0):,.0f} msg/s")


# ---------------------------------------------------------------------------------------- join and takeover


def _join(bench: ClusterBench, nodes: Nodes, anchor: HookmqNode, say: Callable[[str], None]) -> None:
    settings = bench.settings
    for index in range(settings.join_trials):
        database = nodes.workdir / f"join-{nodes.tag}-{index}.sqlite3"
        # No per-client subscription limit (the default, 1000, would refuse the rest in the SUBACK).
        storage = ["[storage]", 'backend = "sqlite"', "[plugins.sqlite_store]", f'path = "{database}"',
                   "[mqtt]", "max_subscriptions_per_client = 0"]
        name = f"J{index}"
        alone = nodes.start(name, extra=storage)
        client_id = f"hc-join-{nodes.tag}-{index}"
        prepared = time.monotonic()
        try:
            asyncio.run(_subscribe_filters(alone.mqtt_port(), client_id, settings.join_filters, settings.timeout))
        except (OSError, EOFError, TimeoutError, RuntimeError, AssertionError) as error:
            bench.errors.append(f"join {index + 1}: subscribing the filters failed: {error!r}")
            nodes.remove(alone)
            continue
        say(f"join {index + 1}: {settings.join_filters} filters subscribed in {time.monotonic() - prepared:.1f} s")
        nodes.remove(alone)
        figures, note = asyncio.run(_time_join(nodes, name, storage, anchor, client_id, settings))
        complete = "routable_s" in figures
        bench.rows.append(Figure("join", f"{settings.join_filters} filters", index, figures, complete, note))
        say(f"join {index + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()) + (f" ({note})" if note else ""))


async def _subscribe_filters(port: int, client_id: str, count: int, timeout: float) -> None:
    """A persistent v3.1.1 session holding ``count`` filters ``hcj/<n>`` (QoS 1), then a clean disconnect."""
    from hookmq.mqtt.packets import Suback, Subscribe, Subscription, SubscriptionOptions
    from hookmq.testing.raw import RawClient

    client, _ = await asyncio.wait_for(RawClient.connect("127.0.0.1", port, client_id, 4, clean_start=False), 10)
    try:
        for start in range(0, count, 1000):
            batch = tuple(Subscription(f"hcj/{n}", SubscriptionOptions(1)) for n in range(start, min(count, start + 1000)))
            await client.send(Subscribe(client.packet_id(), batch))
            suback = await client.expect(Suback, timeout)
            refused = [code for code in suback.reason_codes if code >= 0x80]
            if refused:
                raise RuntimeError(f"{len(refused)} of {len(batch)} filters refused (reason {refused[0]:#x})")
    finally:
        await client.disconnect()


async def _time_join(nodes: Nodes, name: str, storage: list[str], anchor: HookmqNode, client_id: str,
                     settings: ClusterSettings) -> tuple[dict[str, float], str]:
    """Restart the node with its filters, joined to ``anchor``; publish on the anchor until a message arrives."""
    from hookmq.testing.raw import RawClient

    last = f"hcj/{settings.join_filters - 1}"
    stop = asyncio.Event()
    failures: list[str] = []

    async def publish() -> None:
        # QoS 1, one message in flight: a PUBACK slower than the bound (the anchor busy taking
        # 100 000 routes) or a dropped connection costs a reconnection, never the measurement.
        publisher: RawClient | None = None
        try:
            while not stop.is_set():
                try:
                    if publisher is None:
                        connected, _ = await asyncio.wait_for(
                            RawClient.connect("127.0.0.1", anchor.mqtt_port(), f"{client_id}-pub"), 10)
                        publisher = connected
                    await asyncio.wait_for(publisher.publish(last, struct.pack(">d", time.time()), qos=1), 10)
                except (OSError, EOFError, TimeoutError, AssertionError) as error:
                    failures.append(repr(error))
                    if publisher is not None:
                        await publisher.close()
                    publisher = None
                await asyncio.sleep(0.01)
        finally:
            if publisher is not None:
                await publisher.close()

    figures: dict[str, float] = {}
    note = ""
    publishing = asyncio.create_task(publish())
    started = time.time()
    try:
        node = await asyncio.to_thread(nodes.start, name, [anchor.endpoint], storage)
        figures["mqtt_listening_s"] = time.time() - started
        holder, connack = await asyncio.wait_for(RawClient.connect("127.0.0.1", node.mqtt_port(), client_id, 4,
                                                                   clean_start=False), 10)
        try:
            message = await holder.receive_message(settings.timeout)
            figures["routable_s"] = struct.unpack(">d", message.payload[:8])[0] - started
        except TimeoutError:
            note = f"no message within {settings.timeout:.0f} s"
        finally:
            await holder.close()
        joined = anchor.first(f"A node has joined: {node.name}", started)
        if joined is not None:
            figures["joined_s"] = joined - started
        if not connack.session_present:
            note = note or "the restarted node did not restore the session"
        nodes.remove(node)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(publishing, 15)
    if failures:
        figures["publisher_reconnects"] = float(len(failures))
        note = (note + "; " if note else "") + f"publisher: {failures[0]}"
    return figures, note


def _takeover(bench: ClusterBench, single: HookmqNode, pair: list[HookmqNode], say: Callable[[str], None]) -> None:
    settings = bench.settings
    for index in range(settings.rounds):
        for case in _alternating(index):
            ports = [single.mqtt_port()] * 2 if case == "one node" else [node.mqtt_port() for node in pair]
            times, present = asyncio.run(_reconnects(ports, f"hc-take-{uuid.uuid4().hex[:6]}", settings.takeover_trials))
            ordered = sorted(times)
            figures = {"median_ms": statistics.median(ordered) * 1e3, "max_ms": ordered[-1] * 1e3,
                       "trials": float(len(ordered)), "session_present": float(present)}
            complete = present == len(ordered) == settings.takeover_trials
            bench.rows.append(Figure("takeover", case, index, figures, complete,
                                     "" if complete else f"session present {present} of {len(ordered)}"))
            say(f"takeover {case} round {index + 1}: median {figures['median_ms']:.1f} ms, max {figures['max_ms']:.1f} ms, "
                f"session present {present}/{len(ordered)}")


async def _reconnects(ports: Sequence[int], client_id: str, trials: int) -> tuple[list[float], int]:
    """Connect a persistent v5 client on ``ports[0]``, then alternately on each port: CONNECT to CONNACK times."""
    from hookmq.mqtt.packets import Properties
    from hookmq.testing.raw import RawClient

    persistent = Properties(session_expiry_interval=600)
    client, _ = await asyncio.wait_for(RawClient.connect("127.0.0.1", ports[0], client_id, 5, clean_start=False,
                                                         properties=persistent), 10)
    await client.subscribe(f"hct/{client_id}", 1)
    clients = [client]
    times: list[float] = []
    present = 0
    try:
        for trial in range(trials):
            port = ports[(trial + 1) % len(ports)]
            began = time.perf_counter()
            client, connack = await asyncio.wait_for(RawClient.connect("127.0.0.1", port, client_id, 5,
                                                                       clean_start=False, properties=persistent), 15)
            times.append(time.perf_counter() - began)
            present += connack.reason_code == 0 and connack.session_present
            clients.append(client)
    finally:
        for each in clients:
            with contextlib.suppress(Exception):
                await each.close()
    return times, present


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for the nodes' configuration files and databases."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hookmq-bench-cluster-") as folder:
        yield Path(folder)


def main_say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
