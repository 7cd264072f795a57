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


#: A broker whose start-up waits in a plugin until that plugin is told to go on (a file appears),
#: so a signal can be sent while it is still starting.
SLOW_START = r'''
import asyncio, logging, os, sys
from hookmq import hookimpl
from hookmq.config import Config
from hookmq.engine import Broker

gate = sys.argv[1]
logging.basicConfig(level=logging.INFO, stream=sys.stdout)

class SlowStart:
    @hookimpl
    async def plugin_start(self, broker, settings):
        print("plugin starting", flush=True)
        for _ in range(600):
            if os.path.exists(gate):
                break
            await asyncio.sleep(0.05)
        print("plugin started", flush=True)

    @hookimpl
    async def plugin_stop(self, broker):
        print("plugin stopped", flush=True)

config = Config.from_mapping({"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"},
                                            {"name": "ws", "type": "ws", "address": "127.0.0.1:0"}],
                              "disabled_plugins": ["dashboard"]})
asyncio.run(Broker(config, extra_plugins={"slow-start": SlowStart()}).serve())
print("exited", flush=True)
'''


async def read_until(process: asyncio.subprocess.Process, text: str, seen: list[str]) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while not any(text in line for line in seen):
            line = (await process.stdout.readline()).decode(errors="replace")
            if not line:
                raise AssertionError(f"ended before {text!r}:\n" + "".join(seen))
            seen.append(line)


async def signalled_during_start_up(gate: str, signals: list[int], go_on: bool) -> list[str]:
    """Run `SLOW_START`, send ``signals`` once it is starting (the first, then each after the
    broker said it will stop once started), let the start go on if ``go_on``; its output lines."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", SLOW_START, gate,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    seen: list[str] = []
    try:
        await read_until(process, "plugin starting", seen)
        for signum in signals:
            process.send_signal(signum)
            await read_until(process, "stop requested during start-up", seen)
        if go_on:
            open(gate, "w").close()
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert process.stdout is not None
        seen.extend(line.decode(errors="replace") for line in (await process.stdout.read()).splitlines(True))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_during_start_up_stops_once_started(tmp_path: object, signum: int) -> None:
    seen = await signalled_during_start_up(f"{tmp_path}/go-on", [signum], go_on=True)
    output = "".join(seen)
    # Started, then stopped as a signal after start-up stops it: plugins told, no traceback.
    events = [line.strip() for line in seen
              if line.strip() in {"plugin started", "plugin stopped", "exited"} or line.strip().endswith(":stopping")]
    assert events == ["plugin started", "INFO:hookmq.broker:stopping", "plugin stopped", "exited"], output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output


async def test_a_second_signal_during_start_up_abandons_it(tmp_path: object) -> None:
    seen = await signalled_during_start_up(f"{tmp_path}/never", [signal.SIGINT, signal.SIGINT], go_on=False)
    output = "".join(seen)
    assert "plugin started" not in output and "plugin stopped" in output and "exited" in output, output
    assert "Traceback" not in output, output
