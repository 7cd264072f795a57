"""The workloads: which clients a run needs, and the figures computed from what they report.

- ``pairs``: N clients, each subscribed to its own topic, publish M messages to it (the
  mqtt-stresser workload), as fast as the broker takes them: QoS 0 frames batched, QoS 1/2
  with a window of messages in flight; the clock starts once everyone is subscribed.
- ``device``: the same clients behaving as devices do: each connects, subscribes and publishes
  inside the timed phase, writes every packet on its own, and a QoS 1/2 publisher waits for
  each acknowledgement (PUBACK, or PUBREC -> PUBREL -> PUBCOMP) before the next message. The
  figure is the whole run's wall time, connects included.
- ``fanout``: one publisher, N subscribers of its topic, M messages: N x M deliveries.
- ``fanin``: N publishers of M messages each, one subscriber of their common topic.
- ``filters``: ``pairs`` while another client holds F unrelated subscriptions.
- ``connections``: open C idle connections as fast as the broker accepts them; the broker's
  resident memory per connection is measured while they are all open.
- ``latency``: publishers paced at a fixed total rate; publish-to-receipt time percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from .plan import ClientPlan, ClientResult, WorkerResult

KINDS = ("pairs", "device", "fanout", "fanin", "filters", "connections", "latency")
#: Unrelated filters go to the broker in SUBSCRIBE packets of this many.
FILTER_BATCH = 1000
#: Connections are spread over this many loopback source addresses so that ephemeral ports
#: (about 28 000 per source address) never run out, even with sockets left in TIME_WAIT.
SOURCE_ADDRESSES = 16


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload at one size."""

    kind: str
    clients: int = 100
    messages: int = 1000
    qos: int = 0
    filters: int = 0
    rate: float = 1000.0
    duration: float = 5.0
    #: How often ``compare`` runs it against each broker (alternating); medians and ranges are
    #: reported. Not part of the workload's identity: the same workload in fewer rounds is equal.
    rounds: int = field(default=1, compare=False)

    @property
    def per_packet(self) -> bool:
        """Whether clients write each packet on its own and wait for each acknowledgement."""
        return self.kind == "device"

    @property
    def name(self) -> str:
        """A short, stable label used in tables and JSON."""
        if self.kind == "pairs":
            return f"pairs q{self.qos} {self.clients}x{self.messages}"
        if self.kind == "device":
            return f"device q{self.qos} {self.clients}x{self.messages}"
        if self.kind == "filters":
            return f"filters {self.filters} q{self.qos} {self.clients}x{self.messages}"
        if self.kind == "fanout":
            return f"fanout q{self.qos} 1->{self.clients} x{self.messages}"
        if self.kind == "fanin":
            return f"fanin q{self.qos} {self.clients}->1 x{self.messages}"
        if self.kind == "connections":
            return f"connections {self.clients}"
        return f"latency q{self.qos} {self.rate:g}/s {self.duration:g}s"

    @property
    def latency_count(self) -> int:
        """Messages each latency publisher sends."""
        return max(1, round(self.rate * self.duration / self.clients))

    def client_plans(self, run_id: str, host: str) -> list[ClientPlan]:
        """The connections this workload opens; topics are unique to ``run_id``."""
        prefix = f"hb/{run_id}"
        if self.kind in ("pairs", "filters"):
            return self._holder(run_id) + _pairs(prefix, self.clients, self.messages)
        if self.kind == "device":
            return _pairs(prefix, self.clients, self.messages, session_in_run=True)
        if self.kind == "fanout":
            return _fanout(prefix, self.clients, self.messages)
        if self.kind == "fanin":
            return _fanin(prefix, self.clients, self.messages)
        if self.kind == "connections":
            return _idle(prefix, self.clients, host)
        return _pairs(prefix, self.clients, self.latency_count, rate=self.rate / self.clients)

    def _holder(self, run_id: str) -> list[ClientPlan]:
        if not self.filters:
            return []
        filters = tuple(f"other/{run_id}/{index}/+" for index in range(self.filters))
        return [ClientPlan(f"hb-{run_id}-holder", "holder", filters, subscribe_batch=FILTER_BATCH)]

    @property
    def progress_total(self) -> int:
        """What the progress bar counts to: messages received, or connections opened."""
        if self.kind == "connections":
            return self.clients
        if self.kind == "latency":
            return self.latency_count * self.clients
        return self.clients * self.messages


def _client_id(prefix: str, role: str, index: int) -> str:
    return f"{prefix.replace('/', '-')}-{role}{index}"


def _pairs(
    prefix: str, count: int, messages: int, rate: float | None = None, session_in_run: bool = False
) -> list[ClientPlan]:
    return [
        ClientPlan(
            _client_id(prefix, "p", index),
            "pair",
            subscriptions=(f"{prefix}/{index}",),
            publish_topic=f"{prefix}/{index}",
            publish_count=messages,
            expected=messages,
            rate=rate,
            session_in_run=session_in_run,
        )
        for index in range(count)
    ]


def _fanout(prefix: str, subscribers: int, messages: int) -> list[ClientPlan]:
    topic = f"{prefix}/fan"
    publisher = ClientPlan(_client_id(prefix, "pub", 0), "publisher", publish_topic=topic, publish_count=messages)
    return [publisher] + [
        ClientPlan(_client_id(prefix, "sub", index), "subscriber", (topic,), expected=messages)
        for index in range(subscribers)
    ]


def _fanin(prefix: str, publishers: int, messages: int) -> list[ClientPlan]:
    topic = f"{prefix}/in"
    subscriber = ClientPlan(_client_id(prefix, "sub", 0), "subscriber", (topic,), expected=publishers * messages)
    return [subscriber] + [
        ClientPlan(_client_id(prefix, "pub", index), "publisher", publish_topic=topic, publish_count=messages)
        for index in range(publishers)
    ]


def _idle(prefix: str, count: int, host: str) -> list[ClientPlan]:
    loopback = host.startswith("127.")
    return [
        ClientPlan(
            _client_id(prefix, "c", index),
            "idle",
            connect_in_run=True,
            source_ip=f"127.0.0.{index % SOURCE_ADDRESSES + 1}" if loopback else None,
        )
        for index in range(count)
    ]


@dataclass(slots=True)
class WorkloadResult:
    """The figures of one workload against one broker."""

    workload: str
    kind: str
    broker: str
    complete: bool
    expected: int
    received: int
    wall_s: float
    metrics: dict[str, float | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: Which round of a repeated comparison this is (0 for the first or only one).
    round: int = 0


def summarise(
    workload: Workload,
    broker: str,
    workers: list[WorkerResult],
    rss_before_kib: int | None,
    rss_after_kib: int | None,
) -> WorkloadResult:
    """Turn the workers' raw reports into the workload's figures."""
    clients = [client for worker in workers for client in worker.clients]
    errors = [w.error for w in workers if w.error] + _client_errors(clients)
    starts = [w.go for w in workers if w.go]
    go = min(starts) if starts else 0.0
    expected = sum(c.expected for c in clients)
    received = sum(c.received for c in clients)
    if workload.kind == "connections":
        return _connections_result(workload, broker, workers, go, rss_before_kib, rss_after_kib, errors)
    ends = [c.last_receive for c in clients if c.received] + [c.publish_finished for c in clients if c.acked]
    wall = max(ends) - go if ends and go else 0.0
    complete = not errors and not any(w.timed_out for w in workers) and received == expected > 0
    result = WorkloadResult(workload.name, workload.kind, broker, complete, expected, received, wall, errors=errors)
    result.metrics["msg_per_s"] = received / wall if wall > 0 else None
    result.metrics["wall_s"] = wall if wall > 0 else None
    result.metrics.update(_rates(clients, go))
    if workload.kind == "latency":
        result.metrics.update(_latency_percentiles([n for c in clients for n in c.latencies_ns]))
    return result


def _client_errors(clients: list[ClientResult]) -> list[str]:
    failed = [c for c in clients if c.error]
    if not failed:
        return []
    first = failed[0]
    return [f"{len(failed)} client(s) failed, e.g. {first.client_id}: {first.error}"]


def _rates(clients: list[ClientResult], go: float) -> dict[str, float | None]:
    publish = [c.acked / (c.publish_finished - go) for c in clients if c.acked and c.publish_finished > go]
    receive = [c.received / (c.last_receive - go) for c in clients if c.received and c.last_receive > go]
    figures: dict[str, float | None] = {}
    for label, rates in (("publish", publish), ("receive", receive)):
        figures[f"{label}_fastest"] = max(rates) if rates else None
        figures[f"{label}_median"] = median(rates) if rates else None
        figures[f"{label}_slowest"] = min(rates) if rates else None
    return figures


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (``fraction`` in 0..1)."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


def _latency_percentiles(latencies_ns: list[int]) -> dict[str, float | None]:
    if not latencies_ns:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None}
    ordered = sorted(latencies_ns)
    return {
        "p50_ms": percentile(ordered, 0.50) / 1e6,
        "p99_ms": percentile(ordered, 0.99) / 1e6,
        "p999_ms": percentile(ordered, 0.999) / 1e6,
    }


def _connections_result(
    workload: Workload,
    broker: str,
    workers: list[WorkerResult],
    go: float,
    rss_before_kib: int | None,
    rss_after_kib: int | None,
    errors: list[str],
) -> WorkloadResult:
    connected = [c.connected_at for w in workers for c in w.clients if c.connected_at]
    wall = max(connected) - go if connected and go else 0.0
    complete = not errors and len(connected) == workload.clients
    result = WorkloadResult(
        workload.name, workload.kind, broker, complete, workload.clients, len(connected), wall, errors=errors
    )
    result.metrics["connect_per_s"] = len(connected) / wall if wall > 0 else None
    result.metrics["wall_s"] = wall if wall > 0 else None
    grown = None
    if rss_before_kib is not None and rss_after_kib is not None and connected:
        grown = (rss_after_kib - rss_before_kib) / len(connected)
    result.metrics["rss_per_conn_kib"] = grown
    result.metrics["rss_after_mib"] = rss_after_kib / 1024 if rss_after_kib is not None else None
    return result
