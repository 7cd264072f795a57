"""The broker as a process: the start-up banner, SIGTERM handling and the default listeners."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from engine_helpers import disconnect_reason, port_is_free

from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.testing.raw import RawClient

URL = re.compile(r"\b(mqtt|ws)://([0-9.]+|\[[^\]]+\]|[\w.-]*):(\d+)")


class BrokerProcess:
    """A `hookmq` subprocess and the listener URLs its banner announced."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output: list[str] = []
        self.ports: dict[str, int] = {}

    async def read_banner(self, timeout: float = 15.0) -> None:
        """Read the merged output until both listeners were announced."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while not {"mqtt", "ws"} <= self.ports.keys():
                line = (await self.process.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("broker exited during start-up:\n" + "".join(self.output))
                self.output.append(line)
                for scheme, _host, port in URL.findall(line):
                    self.ports.setdefault(scheme, int(port))

    async def stop(self) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 10)


@contextlib.asynccontextmanager
async def broker_process(*argv: str) -> AsyncIterator[BrokerProcess]:
    """Run the broker command with output merged into one pipe; killed if the test leaves it running."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    running = BrokerProcess(process)
    try:
        await running.read_banner()
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_subprocess_banner_and_sigterm() -> None:
    argv = (sys.executable, "-m", "hookmq", "--tcp=127.0.0.1:0", "--ws=127.0.0.1:0", "--disable-plugin", "dashboard")
    async with broker_process(*argv) as proc:
        banner = "".join(proc.output)
        assert "mqtt://127.0.0.1:" in banner and "ws://127.0.0.1:" in banner
        port = proc.ports["mqtt"]
        v5, connack = await RawClient.connect("127.0.0.1", port, "v5-shutdown", level=5)
        assert connack.reason_code == 0
        v4, _ = await RawClient.connect("127.0.0.1", port, "v4-shutdown", level=4)
        status = await proc.stop()
        assert await disconnect_reason(v5, 5) == ReasonCode.SERVER_SHUTTING_DOWN
        assert await disconnect_reason(v4, 5) is None  # v3.1.1 has no server DISCONNECT: just closed
        assert status == 0


async def test_default_listeners_without_arguments() -> None:
    command = shutil.which("hookmq")
    if command is None:
        pytest.skip("the hookmq console script is not installed")
    busy = [port for port in (1883, 1882, 8080) if not port_is_free(port)]
    if busy:
        pytest.skip(f"default ports in use here: {busy}")
    async with broker_process(command) as proc:
        assert proc.ports == {"mqtt": 1883, "ws": 1882}
        client, connack = await RawClient.connect("127.0.0.1", 1883, "defaults", level=5)
        assert connack.reason_code == 0
        assert await proc.stop() == 0
        await client.close()
