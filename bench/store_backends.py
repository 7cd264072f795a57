"""What persistence costs: hookmq's QoS 1 throughput with each store backend, as a ratio to memory.

Workload ("persistent pairs"): C MQTT 5 clients with a persistent session (Session Expiry 300 s),
each subscribed at QoS 1 to its own topic, each publishing M QoS 1 messages to that topic with
at most W unacknowledged. Every message therefore costs the store an inflight save and delete
for the subscriber side; with ``ack_after_write`` the publisher's PUBACK waits for the commit.

Each configuration runs as a fresh ``python -m hookmq`` subprocess on an empty store; the load
generator is one asyncio process with pre-encoded packets. Configurations are rotated between
rounds and the median round is reported.

    python bench/store_backends.py                      # 20 x 500, 3 rounds, Markdown table on stdout
    python bench/store_backends.py --clients 50 --messages 1000 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from hookmq.mqtt.codec import encode
from hookmq.mqtt.packets import Connect, Properties, Publish, Subscribe, Subscription, SubscriptionOptions
from hookmq.testing.redis import RedisServer

_BANNER = re.compile(rb"mqtt://127\.0\.0\.1:(\d+)")
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Backend:
    """One configuration to measure."""

    label: str
    backend: str
    durability: str = "ack_after_write"


BACKENDS = (
    Backend("memory", "memory"),
    Backend("sqlite ack_after_write", "sqlite"),
    Backend("sqlite async", "sqlite", "async"),
    Backend("redis ack_after_write", "redis"),
    Backend("redis async", "redis", "async"),
)


@dataclass
class Result:
    """Rounds of one configuration."""

    backend: Backend
    rates: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """The median messages per second over the rounds."""
        return statistics.median(self.rates) if self.rates else 0.0


# ---------------------------------------------------------------------------- the broker


def _config(workdir: Path, backend: Backend, redis_url: str | None) -> Path:
    document: dict[str, Any] = {
        "disabled_plugins": ["dashboard"],
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "storage": {"backend": backend.backend, "durability": backend.durability},
        "log": {"level": "INFO"},  # the listener banner (INFO) tells us the port
    }
    if backend.backend == "sqlite":
        document["plugins"] = {"sqlite_store": {"path": str(workdir / "state.sqlite3")}}
    elif backend.backend == "redis":
        document["plugins"] = {"redis_store": {"url": redis_url}}
    path = workdir / "hookmq.toml"
    path.write_text(tomli_w.dumps(document))
    return path


class Broker:
    """A hookmq subprocess; the port is read from its listener banner."""

    def __init__(self, config: Path) -> None:
        self.log_path = config.parent / "broker.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "hookmq", "-c", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            found = _BANNER.search(self.log_path.read_bytes())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise RuntimeError(f"hookmq exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("hookmq did not start in time")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# ---------------------------------------------------------------------------- the load


def _read_length(data: bytearray, start: int) -> tuple[int, int] | None:
    """Remaining length (variable byte integer) at ``start``: (value, bytes used), None if incomplete."""
    value = 0
    for used in range(4):
        if start + used >= len(data):
            return None
        byte = data[start + used]
        value |= (byte & 0x7F) << (7 * used)
        if not byte & 0x80:
            return value, used + 1
    raise ValueError("malformed remaining length")


class PairClient(asyncio.Protocol):
    """One persistent-session client that publishes to its own topic and acknowledges what it gets.

    Only the packets this workload produces are parsed (CONNACK, SUBACK, PUBLISH, PUBACK): the
    generator must stay much cheaper than the broker it measures.
    """

    def __init__(self, index: int, run_id: str, messages: int, window: int, payload: bytes) -> None:
        self.client_id = f"sb-{run_id}-{index}"
        self.topic = f"sb/{run_id}/{index}"
        self.messages = messages
        self.window = window
        self.payload = payload
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.finished = asyncio.Event()
        self.sent = 0
        self.acked = 0
        self.received = 0
        self.refused = 0
        self.prepared: list[bytes] = []

    def prepare(self) -> None:
        """Encode every PUBLISH before the clock starts."""
        self.prepared = [encode(Publish(self.topic, self.payload, 1, False, False, n % 65_535 + 1), 5)
                         for n in range(self.messages)]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        connect = Connect(self.client_id, 5, "MQTT", True, 60,
                          properties=Properties(session_expiry_interval=300, receive_maximum=self.window * 4))
        transport.write(encode(connect, 5))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        position = 0
        acks: list[bytes] = []
        while True:
            if len(buffer) - position < 2:
                break
            header = _read_length(buffer, position + 1)
            if header is None:
                break
            length, used = header
            body_start = position + 1 + used
            end = body_start + length
            if end > len(buffer):
                break
            kind = buffer[position] >> 4
            if kind == 3:
                topic_length = int.from_bytes(buffer[body_start:body_start + 2], "big")
                packet_id = buffer[body_start + 2 + topic_length:body_start + 4 + topic_length]
                acks.append(b"\x40\x02" + bytes(packet_id))
                self.received += 1
            elif kind == 4:
                if length > 2 and buffer[body_start + 2] >= 0x80:
                    self.refused += 1
                self.acked += 1
                self._send_more(1)
            elif kind == 2:
                self.connected.set()
            elif kind == 9:
                self.subscribed.set()
            position = end
        del buffer[:position]
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))
        if self.received >= self.messages and self.acked >= self.messages:
            self.finished.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.finished.set()

    def subscribe(self) -> None:
        """SUBSCRIBE to the client's own topic at QoS 1."""
        assert self.transport is not None
        packet = Subscribe(1, (Subscription(self.topic, SubscriptionOptions(1)),))
        self.transport.write(encode(packet, 5))

    def start(self) -> None:
        """Fill the window; every PUBACK sends the next message."""
        self._send_more(self.window)

    def _send_more(self, count: int) -> None:
        if self.transport is None:
            return
        end = min(self.sent + count, self.messages)
        if end > self.sent:
            self.transport.write(b"".join(self.prepared[self.sent:end]))
            self.sent = end


async def run_load(port: int, clients: int, messages: int, window: int, payload_size: int,
                   timeout: float) -> tuple[float, int]:
    """Messages per second delivered (publish start to last delivery), and PUBACKs that refused."""
    loop = asyncio.get_running_loop()
    run_id = f"{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    payload = b"x" * payload_size
    pairs = [PairClient(i, run_id, messages, window, payload) for i in range(clients)]
    for pair in pairs:
        pair.prepare()
        await loop.create_connection(lambda pair=pair: pair, "127.0.0.1", port)  # type: ignore[misc]
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(pair.connected.wait() for pair in pairs))
        for pair in pairs:
            pair.subscribe()
        await asyncio.gather(*(pair.subscribed.wait() for pair in pairs))
        started = time.perf_counter()
        for pair in pairs:
            pair.start()
        await asyncio.gather(*(pair.finished.wait() for pair in pairs))
    elapsed = time.perf_counter() - started
    delivered = sum(pair.received for pair in pairs)
    for pair in pairs:
        if pair.transport is not None:
            pair.transport.write(b"\xe0\x00")
            pair.transport.close()
    if delivered < clients * messages:
        raise RuntimeError(f"only {delivered} of {clients * messages} messages delivered")
    return delivered / elapsed, sum(pair.refused for pair in pairs)


# ---------------------------------------------------------------------------- the comparison


def measure(backend: Backend, args: argparse.Namespace, redis: RedisServer | None) -> float:
    """One round of one configuration on a fresh broker and an empty store."""
    with tempfile.TemporaryDirectory(prefix="hookmq-storebench-") as name:
        workdir = Path(name)
        if redis is not None and backend.backend == "redis":
            _flush_redis(redis)
        broker = Broker(_config(workdir, backend, redis.url if redis else None))
        try:
            rate, refused = asyncio.run(run_load(broker.port, args.clients, args.messages, args.window,
                                                 args.payload, args.timeout))
        finally:
            broker.stop()
        if refused:
            raise RuntimeError(f"{refused} PUBACKs refused the message")
        return rate


def _flush_redis(redis: RedisServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as conn:
        conn.sendall(b"FLUSHALL\r\n")
        conn.recv(64)


def markdown(results: list[Result], args: argparse.Namespace, redis_note: str) -> str:
    """The table for docs/storage.md."""
    memory = next((r.rate for r in results if r.backend.backend == "memory"), 0.0)
    lines = [
        f"Persistent pairs: {args.clients} MQTT 5 clients (session expiry 300 s), each subscribed at QoS 1 to "
        f"its own topic, publishing {args.messages} QoS 1 messages of {args.payload} bytes, window "
        f"{args.window}; median of {args.rounds} rounds. {redis_note}",
        "",
        "| backend | durability | msg/s | ratio to memory |",
        "|---|---|---:|---:|",
    ]
    for result in results:
        backend = result.backend
        durability = "—" if backend.backend == "memory" else backend.durability
        if not result.rates:
            lines.append(f"| {backend.backend} | {durability} | failed: {result.errors[-1]} | — |")
            continue
        ratio = result.rate / memory if memory else float("nan")
        lines.append(f"| {backend.backend} | {durability} | {result.rate:,.0f} | {ratio:.2f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=500, help="QoS 1 messages per client")
    parser.add_argument("--window", type=int, default=20, help="unacknowledged publishes per client")
    parser.add_argument("--payload", type=int, default=64, help="payload bytes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one round may take")
    parser.add_argument("--redis-fsync", choices=("everysec", "always"), default="everysec",
                        help="appendfsync of the Redis that is started (appendonly is always on)")
    parser.add_argument("--only", action="append", default=[], help="measure only this label (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    return parser.parse_args(argv)


class _FsyncRedis(RedisServer):
    def __init__(self, fsync: str) -> None:
        super().__init__(appendonly=True)
        self.fsync = fsync

    def _command(self) -> list[str]:
        return [*super()._command(), "--appendfsync", self.fsync]


def main(argv: list[str] | None = None) -> int:
    """Run every configuration, print the Markdown table."""
    args = parse_args(argv)
    selected = [b for b in BACKENDS if not args.only or b.label in args.only or b.backend == "memory"]
    results = [Result(b) for b in selected]
    redis: RedisServer | None = None
    redis_note = ""
    if any(b.backend == "redis" for b in selected):
        if shutil.which("redis-server") is None:
            print("redis-server not found: the redis rows are skipped", file=sys.stderr)
            results = [r for r in results if r.backend.backend != "redis"]
        else:
            redis = _FsyncRedis(args.redis_fsync).start()
            redis_note = f"Redis: local redis-server, appendonly yes, appendfsync {args.redis_fsync}."
    try:
        for round_index in range(args.rounds):
            shift = round_index % len(results)
            for result in results[shift:] + results[:shift]:
                try:
                    rate = measure(result.backend, args, redis)
                except Exception as exc:  # one failed round must not lose the others
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    print(f"round {round_index + 1} {result.backend.label}: {exc}", file=sys.stderr)
                    continue
                result.rates.append(rate)
                print(f"round {round_index + 1} {result.backend.label}: {rate:,.0f} msg/s", file=sys.stderr)
    finally:
        if redis is not None:
            redis.close()
    print(markdown(results, args, redis_note))
    if args.json is not None:
        args.json.write_text(json.dumps([{"label": r.backend.label, "rates": r.rates, "errors": r.errors}
                                         for r in results], indent=2))
    return 0 if all(r.rates for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
