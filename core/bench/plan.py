"""Picklable descriptions of what each worker process does, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """One connection: what it subscribes to, publishes and must receive."""

    client_id: str
    role: str
    subscriptions: tuple[str, ...] = ()
    subscribe_batch: int = 1000
    publish_topic: str | None = None
    publish_count: int = 0
    expected: int = 0
    #: Messages per second for a paced publisher (latency workload); None means "as fast as possible".
    rate: float | None = None
    #: Connect during the timed phase (connections workload) instead of during setup.
    connect_in_run: bool = False
    #: Connect, subscribe and publish all inside the timed phase, one after the other, as a
    #: device does (device workloads): the wall time then includes connecting and subscribing.
    session_in_run: bool = False
    source_ip: str | None = None
    #: Connect to this port instead of the worker's (``hookmq bench cluster``: clients spread over nodes).
    port: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """Everything one worker process needs; sent to it when it is spawned."""

    index: int
    host: str
    port: int
    level: int
    qos: int
    payload_size: int
    window: int
    clients: tuple[ClientPlan, ...]
    setup_timeout: float
    run_timeout: float
    measure_latency: bool = False
    connect_concurrency: int = 32
    #: Every packet in its own write (device workloads); otherwise answers and QoS 0 frames are batched.
    per_packet: bool = False
    #: Seconds to wait after setup before the timed phase (subscriptions reaching other cluster nodes).
    settle: float = 0.0


@dataclass(slots=True)
class ClientResult:
    """What one connection did during the timed phase. Times are ``time.monotonic()`` seconds."""

    client_id: str
    role: str
    published: int = 0
    acked: int = 0
    publish_started: float = 0.0
    publish_finished: float = 0.0
    received: int = 0
    expected: int = 0
    last_receive: float = 0.0
    connected_at: float = 0.0
    error: str | None = None
    latencies_ns: list[int] = field(default_factory=list)


@dataclass(slots=True)
class WorkerResult:
    """One worker's report: its start signal time and its clients' results."""

    index: int
    go: float = 0.0
    clients: list[ClientResult] = field(default_factory=list)
    error: str | None = None
    timed_out: bool = False
    #: CPU seconds (user + system) the worker process spent in the timed phase.
    cpu_s: float = 0.0
