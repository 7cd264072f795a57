"""Real processes for the gossip tests: mlnode (HashiCorp memberlist) and hookmq, on loopback.

Every process is started with explicit 127.0.0.1 bind/advertise addresses and stopped by
its own PID; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from hookmq.testing.ports import free_port as free_loopback_port

ROOT = Path(__file__).resolve().parents[3]
MLNODE = ROOT / "build" / "oracles" / "mlnode"


def mlnode_binary() -> Path:
    """The built oracle; skips (fails under CI=true) when it is missing."""
    if MLNODE.exists():
        return MLNODE
    message = f"{MLNODE} is missing: bash tests/oracles/mlnode/build.sh build/oracles/mlnode"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (below the ephemeral range: :mod:`hookmq.testing.ports`)."""
    return free_loopback_port(udp=True)


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Process:
    """A child process whose output lines are collected by a thread, with their arrival time."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.command = command
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    def output(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.lines)

    def text(self) -> str:
        return "\n".join(line for _, line in self.output())

    def kill(self) -> float:
        """kill -9; returns the time it was sent."""
        sent = time.time()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        return sent

    def terminate(self, timeout: float = 10) -> None:
        """SIGTERM (a graceful leave for both programs), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class MlNode(Process):
    """One mlnode (memberlist 0.2.2) in JSON-lines mode."""

    def __init__(self, name: str, port: int, join: str | None = None, *extra: str) -> None:
        self.name, self.port = name, port
        command = [str(mlnode_binary()), "-json", "-name", name, "-bind", "127.0.0.1", "-port", str(port), "-profile", "local",
                   "-members-every", "200ms", *extra]
        if join:
            command += ["-join", join]
        super().__init__(command)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def events(self, kind: str | None = None) -> list[dict[str, str]]:
        found = []
        for arrived, line in self.output():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            event["arrived"] = arrived
            if kind is None or event.get("ev") == kind:
                found.append(event)
        return found

    def members(self) -> set[str]:
        latest = self.events("MEMBERS")
        if not latest:
            return set()
        listed = latest[-1]["list"]
        return {entry.split("@")[0] for entry in listed.split(",") if entry}

    def first(self, kind: str, node: str, since: float = 0.0) -> float | None:
        """Event time (mlnode's own UTC stamp) of the first ``kind`` about ``node`` after ``since``."""
        for event in self.events(kind):
            if event.get("node") == node:
                stamp = _timestamp(event["ts"])
                if stamp >= since:
                    return stamp
        return None

    def command_line(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()


def _timestamp(text: str) -> float:
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6]}+00:00").timestamp()


class HookmqNode(Process):
    """A hookmq broker process in cluster mode (profile local, dashboard off).

    ``port`` 0 (the default) lets the node bind a free port itself, which :meth:`gossip_port`
    reads back from its ``Local member`` line: ports chosen in advance can be taken meanwhile.
    """

    def __init__(self, tmp: Path, name: str, port: int = 0, members: list[str] | None = None, *, key: str | None = None) -> None:
        self.name, self.port = name, port
        members = members or []
        lines = [
            "disabled_plugins = [\"dashboard\"]",
            "[cluster]",
            "mode = true",
            f"port = {port}",
            'bind = "127.0.0.1"',
            'advertise = "127.0.0.1"',
            f'node_name = "{name}"',
            'profile = "local"',
            f"members = {json.dumps(members)}",
        ]
        if key:
            lines.append(f'key = "{key}"')
        lines += ["[[listeners]]", 'name = "tcp"', 'type = "tcp"', 'address = "127.0.0.1:0"', "[log]", 'level = "DEBUG"']
        config = tmp / f"{name}.toml"
        config.write_text("\n".join(lines) + "\n")
        super().__init__([sys.executable, "-m", "hookmq", "-c", str(config)], env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def logged(self, text: str) -> float | None:
        """Arrival time of the first output line containing ``text``."""
        return next((arrived for arrived, line in self.output() if text in line), None)

    def gossip_port(self, timeout: float = 20.0) -> int:
        """The bound gossip port, from the ``Local member 127.0.0.1:PORT`` line (waits for it)."""
        found: list[int] = []

        def local_member() -> bool:
            for _, line in self.output():
                if "Local member 127.0.0.1:" in line:
                    found.append(int(line.rsplit(":", 1)[1]))
                    return True
            return False

        if not wait_for(local_member, timeout):
            raise AssertionError(f"{self.name} did not start:\n{self.text()[-3000:]}")
        self.port = found[0]
        return self.port

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of its gossip."""
        return f"127.0.0.1:{self.gossip_port()}"
