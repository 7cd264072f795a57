"""A real ``redis-server`` for tests: started on a free 127.0.0.1 port inside a temporary directory.

Tests never assume port 6379 or a Redis that happens to run on the machine::

    def test_something(redis_server: RedisServer) -> None:
        client = redis.Redis.from_url(redis_server.url)

The fixture skips the test, with the reason, when the ``redis-server`` binary is not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import pytest

from .ports import free_port

__all__ = ["RedisServer", "RedisServerError", "free_port", "redis_server"]


class RedisServerError(RuntimeError):
    """The redis-server process could not be started or did not answer in time."""


def _answers_ping(port: int, timeout: float = 0.5) -> bool:
    """Send an inline PING; True when the server answers +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process owned by a test; the port survives ``restart()``.

    ``appendonly=True`` makes every write go to the AOF (fsync per second), so state
    survives ``kill()`` followed by ``restart()`` up to Redis' own loss window.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        appendonly: bool = False,
        directory: str | Path | None = None,
        start_timeout: float = 10.0,
        extra: Sequence[str] = (),
    ) -> None:
        """Prepare (not start) a server; ``binary`` defaults to ``redis-server`` on PATH."""
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RedisServerError("redis-server binary not found on PATH")
        self.binary = found
        self.appendonly = appendonly
        #: More ``--option value`` arguments (replication, cluster mode, durability).
        self.extra = list(extra)
        self.start_timeout = start_timeout
        self._owned_dir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._owned_dir = tempfile.TemporaryDirectory(prefix="hookmq-redis-")
            directory = self._owned_dir.name
        self.directory = Path(directory)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id (a test pauses it with SIGSTOP to stall every client's writes)."""
        if self._process is None:
            raise RedisServerError("redis-server is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--dir", str(self.directory),
            "--protected-mode", "no",
            "--loglevel", "warning",
            *self.extra,
        ]

    def start(self) -> RedisServer:
        """Start the process and wait until it answers PING."""
        if self.running:
            return self
        log = (self.directory / "redis.log").open("ab")
        self._process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisServerError(f"redis-server exited with {self._process.returncode}: {self._log_tail()}")
            if _answers_ping(self.port):
                return self
            time.sleep(0.02)
        self.kill()
        raise RedisServerError(f"redis-server did not answer PING within {self.start_timeout}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-500:] if path.exists() else ""

    def stop(self) -> None:
        """Terminate gracefully (SIGTERM) and wait for the process to exit."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would; for fault-injection tests."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def restart(self) -> RedisServer:
        """Stop (if running) and start again on the same port and directory."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its temporary directory (if this object made it)."""
        self.stop()
        if self._owned_dir is not None:
            self._owned_dir.cleanup()
            self._owned_dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server (no persistence) per test; skipped when the binary is missing."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not installed (apt-get install redis-server)")
    with RedisServer() as server:
        yield server
