"""Start and stop the brokers that ``hookmq bench compare`` measures, each on a free loopback port.

- hookmq: ``python -m hookmq -c FILE serve`` with one TCP listener and the dashboard disabled.
  ``hookmq@PYTHON`` is the same broker run by another interpreter (a virtual environment of
  another build or commit: its ``bin/python``, or the environment's folder), so two builds are
  measured in one alternating run; ``baseline`` is the name `--baseline-hookmq` gives one.
  ``hookmq:wN`` (also ``hookmq@PYTHON:wN``) runs it with ``[server] workers = N``
  (``hookmq --workers N``); its CPU is the parent's and the workers' together.
- ``hookmq:xN`` and ``hookmq:nN``: N hookmq cluster nodes on 127.0.0.1 (the gossip plugin's
  :mod:`hookmq.plugins.gossip.bench.compare_cluster`), the workload's clients placed on them by
  :mod:`.placement`: publishers on node 1 and subscribers on the others (``x``, cross-node), or
  the clients in turn on each node (``n``, scale-out); memory and CPU are the nodes' together.
- mosquitto: the Debian ``mosquitto`` binary with a generated configuration.
- amqtt: installed from PyPI into a virtual environment of its own under the cache directory on
  first use (its pinned dependencies must not meet ours), started by a tiny launcher that keeps
  logging at WARNING and loads only the anonymous-auth plugin.

Every queue limit that would make a broker drop messages in the benchmark is raised to the same
value (``QUEUE_LIMIT``) for hookmq and mosquitto; amqtt's queues are unbounded anyway. hookmq's
subscriptions per client are unbounded there too, as mosquitto's and amqtt's are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .placement import split_cluster
from .plan import ClientPlan
from .runner import Target

BROKERS = ("hookmq", "mosquitto", "amqtt")
#: A broker name of this form runs hookmq with the interpreter after the ``@``.
HOOKMQ_AT = "hookmq@"
#: A broker name ending so (``hookmq:w2``) runs hookmq with that many workers.
WORKERS_SUFFIX = ":w"
QUEUE_LIMIT = 1_000_000
AMQTT_VERSION = "0.12.1"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_INSTALL_TIMEOUT = 900.0

_AMQTT_LAUNCHER = """
import asyncio, logging, signal, sys
import yaml
from amqtt.broker import Broker

logging.basicConfig(level=logging.WARNING)

async def main() -> None:
    with open(sys.argv[1]) as file:
        broker = Broker(yaml.safe_load(file))
    await broker.start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await broker.shutdown()

asyncio.run(main())
"""


class Broker(Protocol):
    """What ``compare`` needs of a started broker: where to connect, how to place clients, how to stop it."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def target(self) -> Target: ...

    @property
    def settle(self) -> float:
        """Seconds between setup and the timed phase (a cluster's routes spreading)."""
        ...

    def place(self, plans: list[ClientPlan]) -> list[ClientPlan]:
        """The workload's connections, each given the port it connects to."""
        ...

    def stop(self) -> None: ...


class BrokerUnavailable(Exception):
    """A broker cannot be installed or started; the message says exactly what is missing."""


@dataclass(slots=True)
class RunningBroker:
    """A broker process started for a benchmark."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    version: str = "unknown"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> Target:
        """Where the load generator connects, with the PID for memory readings."""
        return Target(self.name, "127.0.0.1", self.port, self.process.pid)

    @property
    def settle(self) -> float:
        """No wait: one process has every route at once."""
        return 0.0

    def place(self, plans: list[ClientPlan]) -> list[ClientPlan]:
        """Every connection on the one port."""
        return plans

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within the stop timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_STOP_TIMEOUT)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cache_dir() -> Path:
    """Where the amqtt virtual environment lives (``$XDG_CACHE_HOME/hookmq-bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hookmq-bench"


def start_broker(name: str, workdir: Path, amqtt_version: str = AMQTT_VERSION) -> Broker:
    """Start broker ``name`` (one of :data:`BROKERS`, another hookmq build, or a cluster) and wait until it accepts connections."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = split_cluster(name)
    if cluster is not None:
        return _start_cluster(name, workdir, *cluster)
    port = free_port()
    base, workers = split_workers(name)
    if base == "hookmq":
        command, version = _hookmq_command(workdir, port, workers=workers)
    elif base in _OTHER_HOOKMQ or base.startswith(HOOKMQ_AT):
        command, version = _hookmq_command(workdir, port, hookmq_python(base), workers=workers)
    elif name == "mosquitto":
        command, version = _mosquitto_command(workdir, port)
    elif name == "amqtt":
        command, version = _amqtt_command(workdir, port, amqtt_version)
    else:
        raise BrokerUnavailable(f"unknown broker {name!r}; choose from {', '.join(BROKERS)}")
    log_path = workdir / f"{name.replace('/', '_').replace(':', '_')}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    broker = RunningBroker(name, port, process, log_path, version)
    _wait_until_listening(broker)
    if workers > 1:
        _wait_for_listeners(broker, workers)
    return broker


def _start_cluster(name: str, workdir: Path, base: str, layout: str, size: int) -> Broker:
    if base != "hookmq":
        raise BrokerUnavailable(f"{name}: a cluster runs this build's hookmq only (hookmq:{layout}{size})")
    try:
        from ..plugins.gossip.bench.compare_cluster import start_cluster
    except ImportError as error:
        raise BrokerUnavailable(f"{name}: the gossip plugin is not installed (hookmq[gossip]): {error}") from error
    from .. import __version__
    from ..buildinfo import build

    try:
        return start_cluster(name, workdir, layout, size, f"{__version__} ({build()})", QUEUE_LIMIT)
    except RuntimeError as error:
        raise BrokerUnavailable(f"{name}: {error}") from error


def split_workers(name: str) -> tuple[str, int]:
    """``hookmq:w2`` -> (``hookmq``, 2); any other name -> (name, 1)."""
    base, found, count = name.rpartition(WORKERS_SUFFIX)
    if found and count.isdigit() and int(count) >= 1 and base:
        return base, int(count)
    return name, 1


def listening_sockets(port: int) -> int:
    """How many sockets listen on TCP ``port`` (``/proc/net/tcp``): one per worker under SO_REUSEPORT."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def _wait_for_listeners(broker: RunningBroker, workers: int) -> None:
    """Every worker listens (else the kernel gives the first connections all to the first worker), then a
    second for their links to come up."""
    deadline = time.monotonic() + _START_TIMEOUT
    while listening_sockets(broker.port) < workers:
        if time.monotonic() > deadline or broker.process.poll() is not None:
            broker.stop()
            raise BrokerUnavailable(f"{broker.name}: {workers} workers did not all listen within {_START_TIMEOUT:g} s")
        time.sleep(0.05)
    time.sleep(1.0)


def _wait_until_listening(broker: RunningBroker) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            tail = broker.log_path.read_text(errors="replace")[-800:]
            raise BrokerUnavailable(f"{broker.name} exited with status {broker.process.returncode}: {tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", broker.port), timeout=1.0):
            return
        time.sleep(0.05)
    broker.stop()
    raise BrokerUnavailable(f"{broker.name} did not listen on 127.0.0.1:{broker.port} within {_START_TIMEOUT:g} s")


# -- hookmq ------------------------------------------------------------------------------------


#: Names given to other hookmq builds (``baseline`` by ``--baseline-hookmq``) → their interpreter.
_OTHER_HOOKMQ: dict[str, str] = {}


def known_broker(name: str) -> bool:
    """Whether ``name`` is a broker `start_broker` can run."""
    cluster = split_cluster(name)
    if cluster is not None:
        return cluster[0] == "hookmq"
    base, workers = split_workers(name)
    if workers > 1 or base != name:
        return base == "hookmq" or base in _OTHER_HOOKMQ or base.startswith(HOOKMQ_AT)
    return name in BROKERS or name in _OTHER_HOOKMQ or name.startswith(HOOKMQ_AT)


def add_hookmq_build(name: str, python: str) -> None:
    """Let ``name`` (e.g. ``baseline``) stand for hookmq run by the interpreter ``python``."""
    _OTHER_HOOKMQ[name] = python


def hookmq_python(name: str) -> str:
    """The interpreter of a ``hookmq@PATH`` (or named) build: PATH itself, or PATH/bin/python for a folder."""
    path = Path(_OTHER_HOOKMQ.get(name) or name.removeprefix(HOOKMQ_AT)).expanduser()
    if path.is_dir():
        path = path / "bin" / "python"
    if not path.exists():
        raise BrokerUnavailable(f"{name}: no Python interpreter at {path}")
    return str(path)


_DESCRIBE_BUILD = (
    "import hookmq\n"
    "try:\n    from hookmq.buildinfo import build\n    b = build()\n"
    "except ImportError:\n    b = 'pure Python'\n"
    "print(hookmq.__version__, '(' + b + ')')"
)


def _describe_build(python: str) -> str:
    try:
        done = subprocess.run([python, "-c", _DESCRIBE_BUILD], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BrokerUnavailable(f"{python} cannot run: {error}") from error
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise BrokerUnavailable(f"{python} cannot import hookmq: {' '.join(tail)}")
    return done.stdout.strip()


def _hookmq_command(workdir: Path, port: int, python: str | None = None, *, workers: int = 1) -> tuple[list[str], str]:
    if python is None:
        from .. import __version__
        from ..buildinfo import build

        python, version = sys.executable, f"{__version__} ({build()})"
    else:
        version = _describe_build(python)
    config = workdir / f"hookmq-{port}.toml"
    config.write_text(
        'disabled_plugins = ["dashboard"]\n\n'
        # mosquitto bounds neither: the many-filters workloads hold thousands per client.
        f"[mqtt]\nmax_queued_messages = {QUEUE_LIMIT}\nmax_subscriptions_per_client = 0\n\n"
        f'[[listeners]]\nname = "tcp"\ntype = "tcp"\naddress = "127.0.0.1:{port}"\n\n'
        '[log]\nlevel = "WARNING"\n'
        + (f"\n[server]\nworkers = {workers}\n" if workers > 1 else "")
    )
    return [python, "-m", "hookmq", "-c", str(config), "serve"], version


# -- mosquitto ---------------------------------------------------------------------------------


def _mosquitto_command(workdir: Path, port: int) -> tuple[list[str], str]:
    binary = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if binary is None:
        raise BrokerUnavailable("mosquitto is not installed: apt-get install mosquitto")
    config = workdir / f"mosquitto-{port}.conf"
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        f"max_queued_messages {QUEUE_LIMIT}",
        "persistence false",
        "log_type error",
        "log_type warning",
        "log_dest stdout",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # otherwise it switches to the "mosquitto" user and cannot read our files
    config.write_text("\n".join(lines) + "\n")
    return [binary, "-c", str(config)], _mosquitto_version(binary)


def _mosquitto_version(binary: str) -> str:
    try:
        shown = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = shown.splitlines()[0] if shown else ""
    return first.removeprefix("mosquitto version ").strip() or "unknown"


# -- amqtt -------------------------------------------------------------------------------------


def amqtt_python(version: str = AMQTT_VERSION) -> Path:
    """The interpreter of a virtual environment holding amqtt ``version``; created on first use."""
    venv = cache_dir() / f"amqtt-{version}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and python.exists():
        return python
    print(f"hookmq bench: installing amqtt=={version} into {venv} (first use)", file=sys.stderr)
    _run_step([sys.executable, "-m", "venv", "--clear", str(venv)], f"creating the virtual environment {venv}")
    _run_step(
        [str(python), "-m", "pip", "install", "--quiet", f"amqtt=={version}"],
        f"pip install amqtt=={version} into {venv}",
    )
    marker.write_text(version)
    return python


def _run_step(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BrokerUnavailable(f"amqtt: {what} failed: {error}") from error
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BrokerUnavailable(f"amqtt: {what} failed (status {done.returncode}): {' | '.join(tail)}")


def _amqtt_command(workdir: Path, port: int, version: str) -> tuple[list[str], str]:
    python = amqtt_python(version)
    config = workdir / f"amqtt-{port}.yaml"
    config.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    return [str(python), "-c", _AMQTT_LAUNCHER, str(config)], version
