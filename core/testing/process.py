"""A real broker in its own process, for tests that measure what the process costs.

::

    async with BrokerProcess(tmp_path, config_toml, open_files=256) as broker:
        client, _ = await RawClient.connect("127.0.0.1", broker.mqtt_port, "c")
        assert broker.rss_kib() < 200_000

The configuration's listeners must bind 127.0.0.1 with port 0; the process's log tells the
bound ports (the `mqtt://` and `http://` addresses it prints). ``open_files`` lowers the
process's RLIMIT_NOFILE before it starts, so descriptor exhaustion can be provoked with a few
hundred sockets.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerProcess", "rss_kib"]


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB, from /proc."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    if match is None:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return int(match.group(1))


class BrokerProcess:
    """`python -m hookmq -c <config>` started and stopped around an `async with` block."""

    def __init__(self, directory: Path, config: str, *, open_files: int | None = None,
                 start_timeout: float = 20.0, expect_dashboard: bool = False) -> None:
        self.directory = directory
        self.config = config
        self.open_files = open_files
        self.start_timeout = start_timeout
        self.expect_dashboard = expect_dashboard
        self.log_path = directory / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.mqtt_port = 0
        self.dashboard_port = 0

    def _limit_files(self) -> None:
        assert self.open_files is not None
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, hard))

    async def __aenter__(self) -> BrokerProcess:
        config_path = self.directory / "broker.toml"
        config_path.write_text(self.config)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hookmq", "-c", str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=self._limit_files if self.open_files else None,
            )
        try:
            await self._wait_for_ports()
        except BaseException:
            self._kill()
            raise
        return self

    async def _wait_for_ports(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while loop.time() < deadline:
            text = self.log()
            mqtt = re.search(r"mqtt://127\.0\.0\.1:(\d+)", text)
            http = re.search(r"http://127\.0\.0\.1:(\d+)", text)
            if mqtt and (http or not self.expect_dashboard):
                self.mqtt_port = int(mqtt.group(1))
                self.dashboard_port = int(http.group(1)) if http else 0
                return
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with {self.process.returncode}:\n{text}")
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the broker did not print its ports within {self.start_timeout} s:\n{self.log()}")

    def log(self) -> str:
        """What the broker has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_kib(self) -> int:
        """The broker's resident memory now, in KiB."""
        assert self.process is not None
        return rss_kib(self.process.pid)

    @property
    def pid(self) -> int:
        """The broker's process id."""
        assert self.process is not None
        return self.process.pid

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            self._kill()
