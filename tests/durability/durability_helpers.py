"""Real broker processes, configurations and MQTT load for the durability tests.

Everything here talks to a ``python -m hookmq`` subprocess over 127.0.0.1 sockets: the point
of these tests is what survives a real ``SIGKILL``, so nothing runs in the test's own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from hookmq.mqtt.packets import Properties, Puback, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer

#: Seconds a broker process may take to print its listener banner.
START_TIMEOUT = 20.0

_BANNER = re.compile(rb"mqtt://127\.0\.0\.1:(\d+)")


class DurableRedis(RedisServer):
    """A redis-server that fsyncs its append-only file on every write (``appendfsync always``).

    `RedisServer` has no option for the fsync policy, and its default (every second) could lose
    a write Redis already acknowledged, which would make a broker-crash test flaky for the
    wrong reason.
    """

    def __init__(self) -> None:
        super().__init__(appendonly=True)

    def _command(self) -> list[str]:
        return [*super()._command(), "--appendfsync", "always"]


def write_config(path: Path, backend: str, *, durability: str = "ack_after_write",
                 plugin: dict[str, Any] | None = None, mqtt: dict[str, Any] | None = None) -> Path:
    """A broker configuration with one TCP listener on a free port and the given store."""
    document: dict[str, Any] = {
        "disabled_plugins": ["dashboard"],
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "storage": {"backend": backend, "durability": durability},
        "mqtt": {"sys_interval": 1, **(mqtt or {})},
        "log": {"level": "INFO"},
    }
    if plugin is not None:
        document["plugins"] = {f"{backend}_store": plugin}
    path.write_text(tomli_w.dumps(document))
    return path


def sqlite_config(tmp_path: Path, name: str = "broker", **options: Any) -> Path:
    """A configuration whose store is the SQLite file ``<tmp_path>/<name>.sqlite3``."""
    plugin = {"path": str(tmp_path / f"{name}.sqlite3")}
    return write_config(tmp_path / f"{name}.toml", "sqlite", plugin=plugin, **options)


def redis_config(tmp_path: Path, redis: RedisServer, name: str = "broker", **options: Any) -> Path:
    """A configuration whose store is ``redis``; short back-off so recovery tests stay quick."""
    plugin = {"url": redis.url, "max_backoff": 0.5, "timeout": 2.0, "connect_timeout": 1.0}
    return write_config(tmp_path / f"{name}.toml", "redis", plugin=plugin, **options)


def check_config(path: Path) -> None:
    """``hookmq config check`` must accept the file before a broker is started with it."""
    result = subprocess.run([sys.executable, "-m", "hookmq", "config", "check", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"config check failed: {result.stdout}{result.stderr}"


class BrokerProcess:
    """One ``python -m hookmq -c FILE`` subprocess; its log goes to a file next to the config."""

    def __init__(self, config: Path, name: str = "broker") -> None:
        self.config = config
        self.log_path = config.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log_offset = 0

    def start(self) -> BrokerProcess:
        """Start the broker and wait until its TCP listener is bound."""
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            self.process = subprocess.Popen([sys.executable, "-m", "hookmq", "-c", str(self.config)],
                                            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = _BANNER.search(self.log_path.read_bytes()[self._log_offset:])
            if match:
                self.port = int(match.group(1))
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker did not start within {START_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        """Everything this process (and earlier runs with the same log) wrote."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the broker gets no chance to flush anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM (a clean shutdown) and the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def restart(self) -> BrokerProcess:
        """Start again with the same configuration (the port changes)."""
        self.kill()
        return self.start()


#: The ``brokers`` fixture: ``brokers(config_path, name="a")`` starts a checked broker process.
BrokerFactory = Callable[..., BrokerProcess]


def v5(expiry: int = 0, receive_maximum: int | None = None) -> Properties:
    """CONNECT properties of an MQTT 5 client."""
    return Properties(session_expiry_interval=expiry or None, receive_maximum=receive_maximum)


async def connect(port: int, client_id: str, *, level: int = 5, clean: bool = True, expiry: int = 0,
                  receive_maximum: int | None = None) -> tuple[RawClient, bool]:
    """A connected client and the session-present flag; the CONNACK must accept it."""
    props = v5(expiry, receive_maximum) if level == 5 else Properties()
    client, connack = await RawClient.connect("127.0.0.1", port, client_id, level=level, clean_start=clean,
                                              properties=props)
    assert connack.reason_code == 0, f"{client_id} refused: {connack!r}"
    return client, connack.session_present


async def settle(client: RawClient) -> None:
    """Wait until everything the broker recorded so far is durable (``ack_after_write``).

    A QoS 1 acknowledgement waits for the store only when the message itself changed stored
    state, and then for every earlier write as well. Setting and clearing a retained message
    always changes stored state, so its PUBACK means "all earlier writes are committed".
    """
    topic = f"settle/{client.writer.get_extra_info('sockname')[1]}"
    for body in (b"settle", b""):
        ack = await client.publish(topic, body, qos=1, retain=True)
        assert ack is not None and getattr(ack, "reason_code", 0) < 0x80, ack


def payload(index: int) -> bytes:
    """The payload that names message ``index``."""
    return f"m{index:06d}".encode()


def index_of(publish: Publish) -> int:
    """The index a `payload` encodes."""
    return int(publish.payload[1:])


@dataclass
class PublishRun:
    """What a pipelined publisher learnt: which indexes the broker acknowledged, and how."""

    sent: int = 0
    acked: set[int] = field(default_factory=set)
    refused: dict[int, int] = field(default_factory=dict)
    error: str | None = None


async def publish_pipelined(client: RawClient, topic: str, count: int, qos: int = 1, window: int = 200,
                            run: PublishRun | None = None) -> PublishRun:
    """Publish ``count`` messages as fast as the window allows; stops quietly if the broker dies.

    Packet id ``i + 1`` carries index ``i``, so ``count`` must stay below 65 535. QoS 2 flows
    are completed (PUBREL) and counted as acknowledged on PUBREC, when the broker took charge.
    """
    assert count < 65_535
    run = run or PublishRun()
    slots = asyncio.Semaphore(window)
    done = asyncio.Event()

    async def read_acks() -> None:
        while len(run.acked) + len(run.refused) < count:
            packet = await client.recv(timeout=30)
            if isinstance(packet, (Puback, Pubrec)):
                index = packet.packet_id - 1
                if packet.reason_code >= 0x80:
                    run.refused[index] = packet.reason_code
                else:
                    run.acked.add(index)
                    if isinstance(packet, Pubrec):
                        await client.send(Pubrel(packet.packet_id))
                        continue
                slots.release()
            elif isinstance(packet, Pubcomp):
                slots.release()  # the end of a QoS 2 flow frees its slot
        done.set()

    reader = asyncio.create_task(read_acks())
    try:
        for index in range(count):
            await _first(slots.acquire(), reader)
            await client.send(Publish(topic.format(index), payload(index), qos, False, False, index + 1))
            run.sent += 1
        await _first(done.wait(), reader)
    except (ConnectionError, OSError, EOFError, TimeoutError) as exc:
        run.error = repr(exc)
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
    return run


async def _first(awaitable: Any, reader: asyncio.Task[None]) -> None:
    """Await ``awaitable`` unless the ack reader dies first (then re-raise its error)."""
    waiter = asyncio.ensure_future(awaitable)
    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        waiter.cancel()
        error = reader.exception() if not reader.cancelled() else None
        raise error if isinstance(error, (ConnectionError, OSError, EOFError, TimeoutError)) else EOFError(
            f"ack reader ended: {error!r}")


async def collect_until(client: RawClient, marker: bytes, *, timeout: float = 60.0) -> list[Publish]:
    """Every PUBLISH up to and including the one whose payload is ``marker``, acknowledged.

    QoS 2 flows are answered packet by packet (PUBREC, then PUBCOMP when PUBREL comes), so
    messages interleaved with the flows are fine.
    """
    received: list[Publish] = []
    async with asyncio.timeout(timeout):
        while True:
            packet = await client.recv(timeout=timeout)
            if isinstance(packet, Pubrel):
                await client.send(Pubcomp(packet.packet_id))
                continue
            assert isinstance(packet, Publish), f"unexpected {packet!r}"
            received.append(packet)
            if packet.qos == 1:
                await client.send(Puback(packet.packet_id))
            elif packet.qos == 2:
                await client.send(Pubrec(packet.packet_id))
            if packet.payload == marker:
                return received


async def take(client: RawClient, count: int, timeout: float = 30.0) -> list[Publish]:
    """Exactly ``count`` messages, not acknowledged."""
    return [await client.receive_message(timeout=timeout, ack=False) for _ in range(count)]


def indexes(messages: Iterable[Publish]) -> list[int]:
    """The load indexes among ``messages`` (markers and other payloads skipped)."""
    return [index_of(m) for m in messages if m.payload.startswith(b"m")]


def duplicates_without_dup(messages: Iterable[Publish]) -> list[int]:
    """Indexes delivered again with DUP = 0 after an earlier delivery in the same list."""
    seen: set[int] = set()
    bad: list[int] = []
    for message in messages:
        if not message.payload.startswith(b"m"):
            continue
        index = index_of(message)
        if index in seen and not message.dup:
            bad.append(index)
        seen.add(index)
    return bad
