"""Real Redis Sentinel and Redis Cluster deployments for tests, on free 127.0.0.1 ports.

::

    with SentinelSetup() as setup:          # one primary, one replica, three sentinels
        settings = RedisStoreSettings(sentinels=setup.sentinel_addresses, service_name=setup.service)
        setup.failover()                    # SENTINEL FAILOVER, returns once the replica leads

    with ClusterSetup(primaries=3, replicas_each=1) as cluster:
        settings = RedisStoreSettings(url=cluster.url, cluster=True)

Every server runs with ``appendfsync always`` when ``durable`` (the default), and with
``min-replicas-to-write 1`` where it has a replica; waits are bounded, and ``close`` (or
leaving the ``with``) stops every process it started.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from .redis import RedisServer, RedisServerError, free_port

__all__ = ["ClusterSetup", "SentinelSetup", "durable_options"]

#: Longest a setup waits for any one state (replication up, failover done, cluster ok).
SETTLE_TIMEOUT = 30.0


def durable_options(with_replica: bool) -> list[str]:
    """Every write to the AOF before the reply; with a replica, refuse writes while it is away."""
    options = ["--appendonly", "yes", "--appendfsync", "always"]
    if with_replica:
        options += ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "5"]
    return options


def _until(what: str, check: Callable[[], bool], timeout: float = SETTLE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RedisServerError(f"timed out after {timeout}s waiting for {what}")


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)


def _command(port: int, *args: object) -> Any:
    """One raw command to the server (or sentinel) on ``port``, its reply unparsed."""
    with _client(port) as client:
        return client.execute_command(*args)


def _replication(port: int) -> dict[str, Any]:
    """``INFO replication`` of the server on ``port``, parsed."""
    with _client(port) as client:
        return dict(client.info("replication"))


class _Process:
    """One ``redis-server --sentinel`` process with its own config file."""

    def __init__(self, directory: Path, config: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.path = directory / "sentinel.conf"
        self.path.write_text(f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {directory}\n{config}")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / "sentinel.log").open("ab")
        binary = RedisServer().binary
        self._process = subprocess.Popen([binary, str(self.path), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _until(f"sentinel on {self.port}", lambda: _command(self.port, "PING") is True, 10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._process = None


class SentinelSetup:
    """A primary, its replica and three sentinels (quorum 2) watching them as ``service``."""

    def __init__(self, service: str = "hookmq", *, durable: bool = True, down_after_ms: int = 1000) -> None:
        self.service = service
        self._dir = tempfile.TemporaryDirectory(prefix="hookmq-sentinel-")
        root = Path(self._dir.name)
        options = durable_options(with_replica=True) if durable else []
        self.primary = RedisServer(directory=_made(root / "a"), extra=options)
        self.replica = RedisServer(
            directory=_made(root / "b"), extra=[*options, "--replicaof", "127.0.0.1", str(self.primary.port)]
        )
        monitor = (
            f"sentinel monitor {service} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} 10000\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        self.sentinels = [_Process(_made(root / f"s{i}"), monitor) for i in range(3)]
        self.servers = [self.primary, self.replica]

    @property
    def sentinel_addresses(self) -> list[str]:
        """``host:port`` of every sentinel, as ``[plugins.redis_store] sentinels`` takes them."""
        return [f"127.0.0.1:{s.port}" for s in self.sentinels]

    def primary_port(self) -> int:
        """The port of the server the sentinels name as primary now."""
        _host, port = _command(self.sentinels[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def start(self) -> SentinelSetup:
        """Start everything and wait until replication is up and every sentinel knows all."""
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_settled(self.primary.port)
        return self

    def wait_settled(self, primary_port: int) -> None:
        """Wait until ``primary_port`` leads with a replica in sync, as every sentinel sees it."""

        def settled() -> bool:
            info = _replication(primary_port)
            if info.get("role") != "master" or int(info.get("connected_slaves", 0)) < 1:
                return False
            if info.get("slave0", {}).get("state") != "online":
                return False
            for sentinel in self.sentinels:
                port = sentinel.port
                if int(_command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)[1]) != primary_port:
                    return False
                if len(_command(port, "SENTINEL", "SENTINELS", self.service)) < 2:
                    return False
                if not _command(port, "SENTINEL", "REPLICAS", self.service):
                    return False
            return True

        _until(f"primary {primary_port} with an online replica known to all sentinels", settled)

    def failover(self) -> int:
        """SENTINEL FAILOVER; returns the new primary's port once it leads with its replica synced."""
        before = self.primary_port()
        _command(self.sentinels[0].port, "SENTINEL", "FAILOVER", self.service)
        _until("the sentinels to name a new primary", lambda: self.primary_port() != before)
        after = self.primary_port()
        self.wait_settled(after)
        return after

    def server(self, port: int) -> RedisServer:
        """The server listening on ``port``."""
        return next(s for s in self.servers if s.port == port)

    def close(self) -> None:
        """Stop every process and remove the directories."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.close()
        self._dir.cleanup()

    def __enter__(self) -> SentinelSetup:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class ClusterSetup:
    """A Redis Cluster of ``primaries`` primaries, each with ``replicas_each`` replicas."""

    def __init__(self, primaries: int = 3, replicas_each: int = 0, *, durable: bool = True,
                 node_timeout_ms: int = 1000) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hookmq-cluster-")
        root = Path(self._dir.name)
        self.replicas_each = replicas_each
        options = durable_options(with_replica=replicas_each > 0) if durable else []
        self.servers: list[RedisServer] = []
        for index in range(primaries * (1 + replicas_each)):
            bus = free_port()
            self.servers.append(RedisServer(directory=_made(root / f"n{index}"), extra=[
                *options, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms), "--cluster-port", str(bus),
                "--cluster-require-full-coverage", "no",
            ]))

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the first node (a seed for the client)."""
        return f"redis://127.0.0.1:{self.servers[0].port}"

    @property
    def addresses(self) -> list[str]:
        """``host:port`` of every node."""
        return [f"127.0.0.1:{s.port}" for s in self.servers]

    def start(self) -> ClusterSetup:
        """Start the nodes, create the cluster with redis-cli and wait until every node says ok."""
        for server in self.servers:
            server.start()
        binary = str(Path(self.servers[0].binary).with_name("redis-cli"))
        subprocess.run(
            [binary, "--cluster", "create", *self.addresses, "--cluster-replicas", str(self.replicas_each),
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        self.wait_ok()
        return self

    def wait_ok(self, servers: list[RedisServer] | None = None) -> None:
        """Wait until every running node reports ``cluster_state:ok`` and every replica is in sync."""

        def ok() -> bool:
            for server in servers or [s for s in self.servers if s.running]:
                if b"cluster_state:ok" not in _command(server.port, "CLUSTER", "INFO"):
                    return False
                info = _replication(server.port)
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    return False
                if info.get("role") == "master" and self.replicas_each and int(info.get("connected_slaves", 0)) < 1:
                    return False
            return True

        _until("cluster_state:ok on every node, replicas in sync", ok)

    def primary_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        running = self._running()
        slot = int(_command(running[0].port, "CLUSTER", "KEYSLOT", key))
        owners = _command(running[0].port, "CLUSTER", "SLOTS")
        for start, end, primary, *_ in owners:
            if start <= slot <= end:
                return next(s for s in self.servers if s.port == int(primary[1]))
        raise RedisServerError(f"no node serves slot {slot}")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        """A replica of ``primary`` (running)."""
        for server in self._running():
            info = _replication(server.port)
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary.port:
                return server
        raise RedisServerError(f"no replica of {primary.port}")

    def failover_to(self, replica: RedisServer) -> None:
        """CLUSTER FAILOVER on ``replica`` (coordinated with its primary); returns once it serves its slots."""
        _command(replica.port, "CLUSTER", "FAILOVER")
        self.wait_primary(replica)
        self.wait_ok()

    def wait_primary(self, server: RedisServer) -> None:
        """Wait until ``server`` is a primary that the other running nodes agree on."""

        def leads() -> bool:
            if _replication(server.port).get("role") != "master":
                return False
            owners = {int(entry[2][1]) for entry in _command(self._running()[0].port, "CLUSTER", "SLOTS")}
            return server.port in owners

        _until(f"node {server.port} to serve as primary", leads)

    def _running(self) -> list[RedisServer]:
        return [s for s in self.servers if s.running]

    def close(self) -> None:
        """Stop every node and remove the directories."""
        for server in self.servers:
            server.close()
        self._dir.cleanup()

    def __enter__(self) -> ClusterSetup:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _made(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
