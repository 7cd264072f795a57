"""``hookmq --workers N``: one parent process supervising N brokers that serve one host together.

The parent serves no client. It reserves every listener's port with SO_REUSEPORT (a bound
socket that does not listen: it resolves port 0 and keeps the port to this user while workers
restart), writes each worker a private configuration into a runtime directory of mode 0700,
starts the workers (``python -m hookmq serve -c <that file>``), restarts one that dies (with
back-off), and stops them together on SIGINT or SIGTERM.

Each worker binds every listener itself with ``reuse_port``, so the kernel spreads new
connections over the workers, and is a cluster node (``[cluster] mode``) without any gossip
configuration: its membership seeds are its siblings' gossip ports on 127.0.0.1, chosen here,
with a random key made here for this run; its data links to its siblings run over Unix sockets
in the runtime directory (no key: the directory is private). Only worker 0 runs the dashboard.
With ``[cluster] mode = true`` each worker is one member of the multi-host cluster
(docs/workers.md says why). The plan (:func:`plan_workers`) is sans-I/O; :class:`Supervisor`
runs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .config import Config
from .exits import EXIT_FAILURE, EXIT_OK, ListenerError, SetupError
from .transport.config import parse_address
from .transport.sockets import reserve_port

__all__ = ["PRIVATE_LISTENER", "Supervisor", "WorkerPlan", "plan_workers", "run_workers", "workers_unavailable"]

log = logging.getLogger("hookmq.workers")

PRIVATE_LISTENER = "worker-private"
"""The name of each worker's own listener on 127.0.0.1 (``[server] worker_listeners``)."""
SETUP_FAILURES = frozenset({2, 3, 4})
"""Worker exit statuses that a restart cannot fix (configuration, listener, store): the host stops."""
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0
"""A worker that ran this long before dying is restarted after the shortest back-off again."""
STOP_TIMEOUT = 20.0
"""Seconds workers get to stop after SIGTERM before they are killed."""
WORKER_ENV = "HOOKMQ_WORKER_INDEX"
UNIX_PATH_MAX = 107
"""Bytes of an AF_UNIX socket path on Linux (108 with its terminating zero)."""


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """What one worker runs: its index, node name, gossip port, and its configuration document."""

    index: int
    name: str
    gossip_port: int
    unix_path: str
    private_port: int | None
    document: dict[str, Any]


def _address(host: str | None, port: int) -> str:
    if host is None:
        return f":{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def plan_workers(config: Config, count: int, link_dir: Path, listener_ports: Sequence[int],
                 gossip_ports: Sequence[int], private_ports: Sequence[int] | None, *, key: str,
                 host_name: str) -> list[WorkerPlan]:
    """Every worker's configuration (sans-I/O: the ports and the key are chosen by the caller).

    ``link_dir`` holds the workers' Unix link sockets: a directory of this run alone (peers
    whose socket lies in the same directory are dialled there, so two hosts configured with
    the same ``runtime_dir`` must not share its name). ``listener_ports`` are the reserved
    ports of ``config.listeners`` in order; ``gossip_ports`` one per worker; ``private_ports``
    one per worker when ``[server] worker_listeners`` is on.
    """
    base = config.model_dump(mode="json", exclude_none=True)
    cluster = config.cluster
    plans = []
    for index in range(count):
        document = json.loads(json.dumps(base))
        listeners = []
        for position, (listener, port) in enumerate(zip(config.listeners, listener_ports, strict=True)):
            host, _ = parse_address(listener.address)
            listeners.append({**document["listeners"][position], "address": _address(host, port), "reuse_port": True})
        private = private_ports[index] if private_ports is not None else None
        if private is not None:
            listeners.append({"name": PRIVATE_LISTENER, "type": "tcp", "address": f"127.0.0.1:{private}"})
        document["listeners"] = listeners
        document["server"] = {"workers": 1}
        unix_path = str(link_dir / f"w{index}.sock")
        name = f"{host_name}-w{index}"
        section = dict(document.get("cluster", {}))
        # A host alone gossips on 127.0.0.1; in a cluster, on the configured bind when it is specific.
        specific = cluster.mode and cluster.bind not in ("0.0.0.0", "::", "")
        seed_host = cluster.bind if specific else "127.0.0.1"
        siblings = [_address(seed_host, port) for j, port in enumerate(gossip_ports) if j != index]
        if cluster.mode:
            section.update(port=gossip_ports[index], node_name=name, sibling_members=siblings)
        else:  # a cluster of this host alone: the link bounds and the runner stay as configured
            section = {key: value for key, value in section.items() if key.startswith("link_") or key == "runner"}
            section |= {
                "mode": True, "bind": "127.0.0.1", "advertise": "127.0.0.1", "port": gossip_ports[index],
                "node_name": name, "profile": "local", "key": key, "leave_timeout": 1.0,
                "sibling_members": siblings,
            }
        section["link_unix_path"] = unix_path
        document["cluster"] = section
        if index > 0:
            disabled = list(document.get("disabled_plugins", []))
            document["disabled_plugins"] = disabled + [name for name in ("dashboard",) if name not in disabled]
        if config.storage.backend == "sqlite":
            # SQLite is no shared store: each worker keeps its own file (docs/workers.md).
            store = dict(document.get("plugins", {}).get("sqlite_store", {}))
            store["path"] = f"{store.get('path', 'hookmq.sqlite3')}.w{index}"
            document.setdefault("plugins", {})["sqlite_store"] = store
        plans.append(WorkerPlan(index, name, gossip_ports[index], unix_path, private, document))
    return plans


def _free_gossip_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host`` now (membership needs the same number for both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no port free for both TCP and UDP on {host}")


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: receive SIGTERM when the parent dies (Linux), so no worker is orphaned."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def worker_environment(environ: Mapping[str, str], index: int) -> dict[str, str]:
    """The parent's environment without its configuration variables (the worker's file holds them merged)."""
    env = {name: value for name, value in environ.items()
           if not (name.startswith("HOOKMQ_") and "__" in name) and name != "HOOKMQ_CONFIG"}
    env[WORKER_ENV] = str(index)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(eq=False)
class _Worker:
    plan: WorkerPlan
    config_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0
    waiter: asyncio.Task[int] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class Supervisor:
    """Runs the workers of one host: start, restart with back-off, stop together, the exit status."""

    def __init__(self, config: Config, count: int) -> None:
        self.config = config
        self.count = count
        self._reserved: list[socket.socket] = []
        self._workers: list[_Worker] = []
        self._stopping = asyncio.Event()
        self._owns_dir = config.server.runtime_dir is None
        self.runtime_dir = Path(config.server.runtime_dir or tempfile.mkdtemp(prefix="hookmq-"))
        self._status = EXIT_OK
        self._restarts: set[asyncio.Future[None]] = set()
        self._link_dir: Path | None = None

    # ------------------------------------------------------------------ preparing

    def prepare(self) -> list[WorkerPlan]:
        """Make the runtime directory, reserve the ports, write each worker's configuration."""
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        ports = []
        for listener in self.config.listeners:
            host, port = parse_address(listener.address)
            try:
                sock = reserve_port(host, port)
            except OSError as error:
                raise ListenerError(
                    f"listener {listener.name!r} ({listener.type}) cannot listen on {listener.address!r}: "
                    f"{error.strerror or error}", error.errno) from error
            self._reserved.append(sock)
            ports.append(int(sock.getsockname()[1]))
        cluster = self.config.cluster
        if cluster.mode and cluster.port != 0:
            gossip = [cluster.port + index for index in range(self.count)]
        else:
            host = cluster.bind if cluster.mode and cluster.bind not in ("0.0.0.0", "::") else "127.0.0.1"
            gossip = [_free_gossip_port(host) for _ in range(self.count)]
        private = [_free_tcp_port() for _ in range(self.count)] if self.config.server.worker_listeners else None
        key = base64.b64encode(os.urandom(32)).decode()
        token = uuid.uuid4().hex[:8]
        host_name = cluster.node_name or f"{socket.gethostname()}-{token}"
        # This run's own directory: another host configured with the same runtime_dir has another one.
        link_dir = self.runtime_dir / f"links-{token}"
        if len(os.fsencode(link_dir / f"w{self.count}.sock")) > UNIX_PATH_MAX:
            raise SetupError(f"[server] runtime_dir {self.runtime_dir} is too long for Unix sockets "
                             f"(at most about {UNIX_PATH_MAX - 30} bytes)")
        link_dir.mkdir(mode=0o700)
        self._link_dir = link_dir
        plans = plan_workers(self.config, self.count, link_dir, ports, gossip, private, key=key, host_name=host_name)
        for plan in plans:
            path = self.runtime_dir / f"w{plan.index}.toml"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(tomli_w.dumps(plan.document))
            self._workers.append(_Worker(plan, path))
        return plans

    # ------------------------------------------------------------------ running

    async def run(self) -> int:
        """Start every worker and supervise them until SIGINT/SIGTERM; the exit status."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._signalled, signum)
        log.info("Supervising %d workers (runtime directory %s)", self.count, self.runtime_dir)
        try:
            for worker in self._workers:
                await self._spawn(worker)
            self._write_state()
            await self._supervise()
        finally:
            await self._stop_all()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            self.close()
        return self._status

    def _signalled(self, signum: int) -> None:
        if self._stopping.is_set():  # a second signal: no more waiting
            for worker in self._workers:
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.kill()
            return
        log.info("%s: stopping %d workers", signal.Signals(signum).name, self.count)
        self._stopping.set()

    async def _spawn(self, worker: _Worker) -> None:
        worker.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hookmq", "serve", "-c", str(worker.config_path),
            stdin=asyncio.subprocess.DEVNULL, env=worker_environment(os.environ, worker.plan.index),
            preexec_fn=_die_with_parent,
        )
        worker.started_at = time.monotonic()
        worker.waiter = asyncio.ensure_future(worker.process.wait())
        log.info("Worker %d started (pid %d, node %s)", worker.plan.index, worker.process.pid, worker.plan.name)

    async def _supervise(self) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                waiters: dict[asyncio.Future[Any], _Worker] = {
                    worker.waiter: worker for worker in self._workers if worker.waiter is not None}
                pending: list[asyncio.Future[Any]] = [stop, *waiters, *self._restarts]
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    worker = waiters.get(task)
                    if worker is not None and not self._stopping.is_set():
                        worker.waiter = None
                        # a restart waits out its back-off in a task of its own: another worker's death meanwhile is seen
                        restart: asyncio.Future[None] = asyncio.ensure_future(self._died(worker, task.result()))
                        self._restarts.add(restart)
                        restart.add_done_callback(self._restarts.discard)
        finally:
            stop.cancel()
            for restart in list(self._restarts):
                restart.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await restart

    async def _died(self, worker: _Worker, status: int) -> None:
        index = worker.plan.index
        worker.waiter = None
        lived = time.monotonic() - worker.started_at
        how = f"signal {signal.Signals(-status).name}" if status < 0 else f"status {status}"
        if status in SETUP_FAILURES and worker.restarts == 0:
            log.error("Worker %d could not start (%s): stopping every worker", index, how)
            self._status = status
            self._stopping.set()
            return
        worker.failures = 0 if lived >= STABLE_AFTER else worker.failures + 1
        delay = min(BACKOFF_MAX, BACKOFF_MIN * 2 ** max(0, worker.failures - 1)) if worker.failures else BACKOFF_MIN
        log.warning("Worker %d (pid %s) exited with %s after %.1f s; restarting in %.1f s",
                    index, worker.process.pid if worker.process else "?", how, lived, delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        if self._stopping.is_set():
            return
        worker.restarts += 1
        try:
            await self._spawn(worker)
        except OSError as error:
            log.error("Worker %d cannot be started again (%s): stopping every worker", index, error)
            self._status = EXIT_FAILURE
            self._stopping.set()
            return
        self._write_state()

    async def _stop_all(self) -> None:
        live = [worker for worker in self._workers if worker.process is not None and worker.process.returncode is None]
        for worker in live:
            assert worker.process is not None
            with contextlib.suppress(ProcessLookupError):
                worker.process.terminate()
        for worker in live:
            assert worker.process is not None
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await worker.process.wait()
            except TimeoutError:
                log.warning("Worker %d did not stop within %.0f s: killed", worker.plan.index, STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        for worker in self._workers:
            if worker.waiter is not None:
                worker.waiter.cancel()

    def _write_state(self) -> None:
        """``workers.json``: every worker's pid, node name, ports and restarts (for operators and tests)."""
        state = {
            "parent": os.getpid(),
            "listeners": [{"name": listener.name, "port": sock.getsockname()[1]}
                          for listener, sock in zip(self.config.listeners, self._reserved, strict=True)],
            "workers": [{"index": worker.plan.index, "name": worker.plan.name,
                         "pid": worker.process.pid if worker.process is not None else None,
                         "gossip_port": worker.plan.gossip_port, "unix": worker.plan.unix_path,
                         "private_port": worker.plan.private_port, "restarts": worker.restarts}
                        for worker in self._workers],
        }
        temporary = self.runtime_dir / "workers.json.tmp"
        temporary.write_text(json.dumps(state, indent=1))
        temporary.replace(self.runtime_dir / "workers.json")

    def close(self) -> None:
        """Release the reserved ports; remove the runtime directory when it was made here."""
        for sock in self._reserved:
            sock.close()
        self._reserved.clear()
        if self._owns_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            return
        # a configured directory keeps workers.json; the sockets and the configurations (they hold the key) go
        if self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.config_path.unlink()


def workers_unavailable(config: Config) -> str | None:
    """Why this configuration cannot run workers (one line), or None: they are gossip cluster nodes."""
    if "gossip" in config.disabled_plugins:
        return "[server] workers needs the gossip plugin, which disabled_plugins disables"
    missing = [name for name in ("msgpack", "cryptography") if importlib.util.find_spec(name) is None]
    if missing:
        return f"[server] workers needs {', '.join(missing)}: pip install 'hookmq[gossip]'"
    if not hasattr(socket, "SO_REUSEPORT"):
        return "[server] workers needs SO_REUSEPORT, which this system does not have"
    return None


def run_workers(config: Config, count: int) -> int:
    """Run ``count`` workers for ``config`` until SIGINT/SIGTERM (``hookmq serve`` with ``[server] workers``).

    :raises SetupError: the workers cannot run here (the gossip extra is missing), or a listener's port is taken.
    """
    problem = workers_unavailable(config)
    if problem is not None:
        raise SetupError(problem)
    supervisor = Supervisor(config, count)
    try:
        supervisor.prepare()
    except BaseException:
        supervisor.close()
        raise
    return asyncio.run(supervisor.run())
