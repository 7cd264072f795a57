"""Cluster nodes as real processes: hookmq brokers and HashiCorp memberlist's ``mlnode``.

Each node is one child process whose output lines a thread collects. Times come from the
node's own log stamps (hookmq's JSON log ``time``, mlnode's ``ts``), not from when the line was
read, so a busy reader cannot stretch a measurement. Every process is stopped by its own PID;
every wait is bounded.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ChildProcess", "HookmqNode", "MlNode", "wait_until"]

STOP_TIMEOUT = 10.0


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


_STAMP = re.compile(r"(?P<head>.+T\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)")


def parse_stamp(text: str) -> float:
    """An ISO 8601 time (``…Z`` or ``…+00:00``, any number of fraction digits) as a POSIX timestamp."""
    match = _STAMP.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a time stamp: {text!r}")
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat(f"{match['head']}.{fraction}{zone}").timestamp()


class ChildProcess:
    """A child process whose output lines are kept with the time they were read."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.command = list(command)
        self._lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(env) if env is not None else None, cwd=cwd, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name=f"read-{self.proc.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append((time.time(), line.rstrip("\n")))

    def lines(self) -> list[tuple[float, str]]:
        """Every line so far, with the time it was read."""
        with self._lock:
            return list(self._lines)

    def text(self, last: int = 4000) -> str:
        """The end of the output, for error messages."""
        return "\n".join(line for _, line in self.lines())[-last:]

    def alive(self) -> bool:
        """Still running."""
        return self.proc.poll() is None

    def kill(self) -> float:
        """``kill -9``; returns the time the signal was sent."""
        sent = time.time()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        return sent

    def terminate(self) -> float:
        """SIGTERM (a graceful leave); returns the time it was sent, without waiting for the exit."""
        sent = time.time()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return sent

    def stop(self, grace: float = 0.0) -> None:
        """Make sure the process is gone: wait ``grace`` seconds for it to exit, then kill it."""
        if grace > 0 and self.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        if self.alive():
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_TIMEOUT)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._reader.join(2.0)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


class HookmqNode(ChildProcess):
    """A hookmq broker in cluster mode: gossip bound and advertised on ``address`` (port 0: any free
    one, read back from its ``Local member`` line), one MQTT listener on ``address``, JSON logs.

    :param cluster: more ``[cluster]`` keys (``runner``, timing overrides, ``expect`` …).
    :param prefix: run the command under this (``["ip", "netns", "exec", NAME]``).
    :param extra: more TOML lines after the generated ones (a ``[storage]`` table …).
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        *,
        address: str = "127.0.0.1",
        members: Iterable[str] = (),
        profile: str = "local",
        cluster: Mapping[str, Any] | None = None,
        prefix: Sequence[str] = (),
        log_level: str = "INFO",
        extra: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.address = address
        settings: dict[str, Any] = {
            "mode": True, "port": 0, "bind": address, "advertise": address, "node_name": name, "profile": profile,
            "members": list(members), **(cluster or {}),
        }
        lines = ['disabled_plugins = ["dashboard"]', "[cluster]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
        lines += ["[[listeners]]", 'name = "tcp"', 'type = "tcp"', f'address = "{address}:0"',
                  "[log]", f'level = "{log_level}"', 'format = "json"', *extra]
        config = workdir / f"{name}.toml"
        config.write_text("\n".join(lines) + "\n")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        super().__init__([*prefix, sys.executable, "-m", "hookmq", "-c", str(config)], env=env, cwd=workdir)
        self._gossip_port: int | None = None

    def records(self) -> list[tuple[float, str]]:
        """Every JSON log record as (its own time, message); other lines (tracebacks) are skipped."""
        found = []
        for _, line in self.lines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
                found.append((parse_stamp(record["time"]), str(record["message"])))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def first(self, text: str, since: float = 0.0) -> float | None:
        """The time of the first record containing ``text`` stamped at or after ``since``."""
        return next((stamp for stamp, message in self.records() if stamp >= since and text in message), None)

    def count(self, text: str, since: float = 0.0) -> int:
        """How many records contain ``text`` (from ``since`` on)."""
        return sum(1 for stamp, message in self.records() if stamp >= since and text in message)

    def matching(self, text: str, since: float = 0.0) -> list[str]:
        """The messages containing ``text`` (from ``since`` on)."""
        return [message for stamp, message in self.records() if stamp >= since and text in message]

    def _port_after(self, marker: str, timeout: float) -> int:
        found: list[int] = []

        def look() -> bool:
            for _, message in self.records():
                if marker in message:
                    host_port = message.split(marker, 1)[1].split()[0]
                    digits = host_port.rpartition(":")[2].rstrip("/")
                    if digits.isdigit():
                        found.append(int(digits))
                        return True
            return not self.alive()

        if not wait_until(look, timeout) or not found:
            raise RuntimeError(f"hookmq node {self.name} did not start:\n{self.text()}")
        return found[0]

    def gossip_port(self, timeout: float = 30.0) -> int:
        """The bound gossip port (waits for the ``Local member ADDR:PORT`` line)."""
        if self._gossip_port is None:
            self._gossip_port = self._port_after("Local member ", timeout)
        return self._gossip_port

    def mqtt_port(self, timeout: float = 30.0) -> int:
        """The bound MQTT port (from the listener line of the banner)."""
        return self._port_after("mqtt://", timeout)

    @property
    def endpoint(self) -> str:
        """``ADDR:PORT`` of its gossip (waits for it)."""
        return f"{self.address}:{self.gossip_port()}"


class MlNode(ChildProcess):
    """One ``mlnode`` (HashiCorp memberlist) in JSON-lines mode, as the oracle's measure_fd.py runs it."""

    def __init__(
        self, binary: Path, name: str, *, address: str = "127.0.0.1", join: str | None = None, profile: str = "local",
        prefix: Sequence[str] = (),
    ) -> None:
        self.name = name
        command = [*prefix, str(binary), "-json", "-name", name, "-bind", address, "-port", "0", "-profile", profile]
        if join:
            command += ["-join", join]
        super().__init__(command)
        self._endpoint: str | None = None

    def events(self, kind: str) -> list[dict[str, str]]:
        """Every event of ``kind`` (``JOIN``, ``LEAVE``, ``MEMBERS`` …)."""
        found = []
        for _, line in self.lines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("ev") == kind:
                found.append({str(k): str(v) for k, v in event.items()})
        return found

    def first(self, kind: str, node: str, since: float = 0.0) -> float | None:
        """mlnode's own time of the first ``kind`` event about ``node`` at or after ``since``."""
        for event in self.events(kind):
            if event.get("node") == node:
                stamp = parse_stamp(event["ts"])
                if stamp >= since:
                    return stamp
        return None

    def members(self) -> int:
        """The member count of the latest ``MEMBERS`` line (0 before the first)."""
        latest = self.events("MEMBERS")
        return int(latest[-1].get("count", "0")) if latest else 0

    @property
    def endpoint(self) -> str:
        """``ADDR:PORT`` it bound (waits for its ``READY`` line)."""
        if self._endpoint is None:
            if not wait_until(lambda: self.events("READY") or not self.alive(), 30.0) or not self.events("READY"):
                raise RuntimeError(f"mlnode {self.name} did not start:\n{self.text()}")
            self._endpoint = self.events("READY")[0]["addr"]
        return self._endpoint
