"""Real hookmq processes in cluster mode with their dashboards, on 127.0.0.1, for the operator-view tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKEN = "cluster-test-token-0123456789abcdef"


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy or ``timeout`` passes; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


class ClusterNode:
    """``python -m hookmq -c FILE`` in cluster mode (profile local), its dashboard on a free loopback port."""

    def __init__(self, tmp: Path, name: str, members: list[str] | None = None, **dashboard: Any) -> None:
        self.name = name
        table = {"address": "127.0.0.1:0", "token": TOKEN, "sample_interval": 0.5, **dashboard}
        lines = [
            "[cluster]", "mode = true", "port = 0", 'bind = "127.0.0.1"', 'advertise = "127.0.0.1"',
            f'node_name = "{name}"', 'profile = "local"', f"members = {json.dumps(members or [])}",
            "[[listeners]]", 'name = "tcp"', 'type = "tcp"', 'address = "127.0.0.1:0"',
            "[plugins.dashboard]", *(f"{key} = {json.dumps(value)}" for key, value in table.items()),
            "[log]", 'level = "INFO"',
        ]
        config = tmp / f"{name}.toml"
        config.write_text("\n".join(lines) + "\n")
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-m", "hookmq", "-c", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def _find(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        found = wait_for(lambda: re.search(pattern, self.text()), timeout)
        if not found:
            raise AssertionError(f"{self.name}: no {pattern!r} in its output:\n{self.text()[-3000:]}")
        return found  # type: ignore[no-any-return]

    @property
    def url(self) -> str:
        """The dashboard's URL (from its ``dashboard listening on`` line)."""
        return self._find(r"dashboard listening on (http://127\.0\.0\.1:\d+/)").group(1)

    @property
    def gossip(self) -> str:
        """``127.0.0.1:PORT`` of its gossip."""
        return self._find(r"Local member (127\.0\.0\.1:\d+)").group(1)

    def mqtt_port(self) -> int:
        """The port of its tcp listener (from /readyz)."""
        ready = wait_for(lambda: self.get("/readyz", token=False)[0] == 200, 30)
        assert ready, self.text()[-3000:]
        _, body = self.get("/readyz", token=False)
        return int(body["listeners"][0]["address"][1])

    def get(self, path: str, token: bool = True) -> tuple[int, Any]:
        """GET a path of the dashboard: (status, JSON body or text)."""
        request = urllib.request.Request(self.url.rstrip("/") + path)
        if token:
            request.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, raw = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read().decode()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def cluster(self) -> dict[str, Any]:
        status, body = self.get("/api/cluster")
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def member(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.cluster()["members"] if m["name"] == name), None)

    def kill(self) -> None:
        """SIGKILL."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (a graceful leave), then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
