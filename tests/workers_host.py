"""A real ``hookmq --workers N`` host for tests: the parent process, its workers, and a way to reach each one.

Each worker gets a private listener (``[server] worker_listeners``) so a test can put a client
on a chosen worker; the shared listener is spread by the kernel (SO_REUSEPORT).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from hookmq.mqtt.packets import Disconnect, Puback, Publish
from hookmq.testing.raw import RawClient

__all__ = ["WorkerHost", "bounded", "disconnect_reason", "messages", "until"]

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], timeout: float = 10.0) -> T:
    """Await with an upper bound, so a hang fails the test instead of stalling it."""
    return await asyncio.wait_for(awaitable, timeout)


async def until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


async def messages(client: RawClient, count: int, timeout: float = 10.0, ack: bool = True) -> list[Publish]:
    """The next ``count`` PUBLISH packets (QoS 1 ones acknowledged unless ``ack`` is False)."""
    received = []
    while len(received) < count:
        packet = await client.recv(timeout)
        if isinstance(packet, Publish):
            received.append(packet)
            if ack and packet.qos == 1:
                await client.send(Puback(packet.packet_id))
    return received


async def disconnect_reason(client: RawClient, timeout: float = 10.0) -> int | None:
    """Wait for the broker to close; the reason code of its DISCONNECT, None when it sent none."""
    received = await client.closed_within(timeout)
    codes = [p.reason_code for p in received if isinstance(p, Disconnect)]
    return codes[-1] if codes else None


class WorkerHost:
    """``python -m hookmq --workers N`` with a TOML body; ``await host.start()``, then ``host.stop()``."""

    def __init__(self, directory: Path, workers: int, extra: str = "", redis_url: str | None = None,
                 dashboard_token: str | None = None) -> None:
        self.directory = directory
        self.workers = workers
        # AF_UNIX paths are at most 107 bytes: a short directory of its own, not pytest's tmp_path.
        self.runtime = Path(tempfile.mkdtemp(prefix="hq-w-")) / "run"
        lines = [
            'disabled_plugins = ["dashboard"]' if dashboard_token is None else "",
            "[server]",
            f"workers = {workers}",
            "worker_listeners = true",
            f'runtime_dir = "{self.runtime}"',
            "[mqtt]",
            "sys_interval = 1",
            "[[listeners]]",
            'name = "tcp"',
            'type = "tcp"',
            'address = "127.0.0.1:0"',
        ]
        if dashboard_token is not None:
            lines += ["[plugins.dashboard]", 'address = "127.0.0.1:0"', f'token = "{dashboard_token}"']
        if redis_url is not None:
            lines += ["[storage]", 'backend = "redis"', 'durability = "ack_after_write"',
                      "[plugins.redis_store]", f'url = "{redis_url}"']
        self.config = directory / "host.toml"
        self.config.write_text("\n".join(lines) + "\n" + extra)
        self.log_path = directory / "host.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 40.0) -> WorkerHost:
        """Start the parent; return once every worker serves and every pair of workers has its link up."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "hookmq", "-c", str(self.config)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        pairs = self.workers * (self.workers - 1)
        # the links between siblings, over their Unix sockets (links to other hosts are encrypted)
        ready = lambda: self.state() is not None and self.log().count("(not encrypted)") >= pairs  # noqa: E731
        if not await until(ready, timeout):
            self.stop()
            raise AssertionError(f"the host did not start:\n{self.log()[-4000:]}")
        for index in range(self.workers):
            await self.serving(index, timeout)
        return self

    def state(self) -> dict[str, Any] | None:
        """``workers.json`` as the parent last wrote it, or None before it exists."""
        try:
            state: dict[str, Any] = json.loads((self.runtime / "workers.json").read_text())
        except (OSError, ValueError):
            return None
        return state

    def worker(self, index: int) -> dict[str, Any]:
        state = self.state()
        assert state is not None
        worker: dict[str, Any] = state["workers"][index]
        return worker

    def port(self, index: int) -> int:
        """The private MQTT port of worker ``index``."""
        return int(self.worker(index)["private_port"])

    @property
    def shared_port(self) -> int:
        state = self.state()
        assert state is not None
        return int(state["listeners"][0]["port"])

    def name(self, index: int) -> str:
        return str(self.worker(index)["name"])

    async def serving(self, index: int, timeout: float = 30.0) -> None:
        """Wait until worker ``index`` accepts MQTT connections on its private port."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port(index))
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise AssertionError(f"worker {index} does not serve:\n{self.log()[-4000:]}")

    async def connect(self, index: int, client_id: str, level: int = 5, **kwargs: Any) -> tuple[RawClient, Any]:
        """A client on worker ``index`` (its private listener)."""
        return await bounded(RawClient.connect("127.0.0.1", self.port(index), client_id, level, **kwargs))

    def dashboard_urls(self) -> list[str]:
        """Every dashboard address the workers logged (``http://127.0.0.1:PORT``)."""
        return sorted(set(re.findall(r"http://127\.0\.0\.1:\d+", self.log())))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill_worker(self, index: int) -> int:
        """SIGKILL worker ``index``; its pid."""
        pid = int(self.worker(index)["pid"])
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM to the parent; its exit status (killed after ``timeout``)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(self.runtime.parent, ignore_errors=True)  # once nothing writes there any more
        return process.returncode
