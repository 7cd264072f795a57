"""Reaching Redis in each topology, and sending one transaction to it.

:func:`connect` builds the redis-py client the settings describe: ``redis.asyncio.Redis`` for
one server, a primary found through ``redis.asyncio.sentinel.Sentinel`` (its connections ask
the sentinels again whenever they reconnect, and drop out when the server they hold turns
out to be a replica), or ``redis.asyncio.cluster.RedisCluster`` (which keeps the slot map).
Other code that needs the store's Redis (the cluster's versioned retained keys, a session
claim script) builds its client here too, so it follows the same topology.

:meth:`Backend.transact` sends ``MULTI``, the commands, ``EXEC`` and, with
``wait_replicas``, ``WAIT`` in one write on one connection, and reads every reply, so the
``WAIT`` covers exactly this transaction. In cluster mode the connection is one to the
primary of the commands' slot (they must all share it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .settings import RedisStoreSettings, parse_address

__all__ = ["Backend", "NotEnoughReplicas", "client_kwargs", "command_key", "connect"]

Command = tuple[Any, ...]

#: Replies that mean the slot map changed under us: refresh it before the next attempt.
TOPOLOGY_ERRORS = (MovedError, AskError, ClusterDownError, TryAgainError)


class NotEnoughReplicas(ResponseError):
    """The transaction was applied on the primary but WAIT saw fewer replicas than asked."""


def client_kwargs(options: RedisStoreSettings) -> tuple[str, dict[str, Any]]:
    """The URL and keyword arguments for ``redis.asyncio.Redis.from_url``."""
    url = options.url
    parts = urlsplit(url)
    if options.tls is not None:
        scheme = "rediss" if options.tls else "redis"
        url = urlunsplit((scheme, *parts[1:]))
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": options.connect_timeout,
        "socket_timeout": options.timeout,
        # Our own back-off decides when to retry; redis-py retrying inside a batch would stall it.
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,
    }
    if options.username is not None:
        kwargs["username"] = options.username
    if options.password is not None:
        kwargs["password"] = options.password.get_secret_value()
    if options.db is not None:
        kwargs["db"] = options.db
    if url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required" if options.tls_verify else "none"
        kwargs["ssl_check_hostname"] = options.tls_verify
        for key, value in (
            ("ssl_ca_certs", options.tls_ca_file),
            ("ssl_certfile", options.tls_cert_file),
            ("ssl_keyfile", options.tls_key_file),
        ):
            if value is not None:
                kwargs[key] = value
    return url, kwargs


def command_key(command: Command) -> Any:
    """The first key a command names (EVAL/EVALSHA: the first of its KEYS)."""
    name = str(command[0]).upper()
    return command[3] if name in ("EVAL", "EVALSHA") else command[1]


def command_slot(command: Command) -> int:
    """The cluster slot of a command's first key."""
    key = command_key(command)
    return key_slot(key.encode("utf-8", "surrogatepass") if isinstance(key, str) else bytes(key))


def _sentinel_client(options: RedisStoreSettings) -> aioredis.Redis:
    url, kwargs = client_kwargs(options)
    parsed = aioredis.connection.parse_url(url)
    for key in ("username", "password", "db"):
        if key in parsed and key not in kwargs:
            kwargs[key] = parsed[key]
    if url.startswith("rediss://"):
        kwargs["ssl"] = True
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": options.connect_timeout,
        "socket_timeout": options.timeout,
    }
    if options.sentinel_username is not None:
        sentinel_kwargs["username"] = options.sentinel_username
    if options.sentinel_password is not None:
        sentinel_kwargs["password"] = options.sentinel_password.get_secret_value()
    addresses = [parse_address(a) for a in options.sentinels]
    sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_kwargs, **kwargs)  # type: ignore[no-untyped-call]
    assert options.service_name is not None  # the settings refuse sentinels without it
    return cast(aioredis.Redis, sentinel.master_for(options.service_name))


def _cluster_client(options: RedisStoreSettings) -> RedisCluster:
    url, kwargs = client_kwargs(options)
    kwargs.pop("db", None)
    parsed = aioredis.connection.parse_url(url)
    seeds = [(str(parsed.get("host", "127.0.0.1")), int(parsed.get("port", 6379)))]
    seeds += [parse_address(node) for node in options.nodes]
    for key in ("username", "password"):
        if key in parsed and key not in kwargs:
            kwargs[key] = parsed[key]
    if url.startswith("rediss://"):
        kwargs["ssl"] = True
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        require_full_coverage=False,
        **kwargs,
    )


def connect(options: RedisStoreSettings) -> Backend:
    """The client for the settings' topology; nothing connects until it is used."""
    topology = options.topology()
    if topology == "cluster":
        return Backend(_cluster_client(options), options)
    if topology == "sentinel":
        return Backend(_sentinel_client(options), options)
    url, kwargs = client_kwargs(options)
    return Backend(aioredis.Redis.from_url(url, **kwargs), options)


class Backend:
    """One topology's client: transactions, scans and closing."""

    def __init__(self, client: aioredis.Redis | RedisCluster, options: RedisStoreSettings) -> None:
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.options = options
        self._stale_map = False
        self._refreshing = asyncio.Lock()

    async def ping(self) -> None:
        """Raise unless Redis answers (in cluster mode: the slot map is loaded too)."""
        if isinstance(self.client, RedisCluster):
            await self.client.initialize()
        await self.client.ping()

    async def transact(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands`` as one MULTI/EXEC (then WAIT); the replies, errors among them.

        Raises the error of the transaction itself (a lost connection, EXECABORT, a refused
        write such as NOREPLICAS or READONLY, a moved slot) and :class:`NotEnoughReplicas`.
        """
        if isinstance(self.client, RedisCluster):
            if self._stale_map:
                async with self._refreshing:  # one reload for all the slots of a batch
                    if self._stale_map:
                        await self.client.nodes_manager.initialize()
                        self._stale_map = False
            node = self.client.nodes_manager.get_node_from_slot(command_slot(commands[0]))
            connection = node.acquire_connection()
            try:
                return await self._transact_on(connection, commands)
            except (*TOPOLOGY_ERRORS, RedisConnectionError, RedisTimeoutError, OSError):
                self._stale_map = True
                raise
            except Exception as error:
                if "MOVED" in str(error) or "CLUSTERDOWN" in str(error):
                    self._stale_map = True
                raise
            finally:
                node.release(connection)
        pool = self.client.connection_pool
        connection = cast(Connection, await pool.get_connection())  # type: ignore[no-untyped-call]
        try:
            return await self._transact_on(connection, commands)
        finally:
            await pool.release(connection)

    async def _transact_on(self, connection: Connection, commands: Sequence[Command]) -> list[Any]:
        """MULTI, the commands, EXEC (and WAIT) written at once on ``connection``; every reply read."""
        wait = self.options.wait_replicas
        sent: list[Command] = [("MULTI",), *commands, ("EXEC",)]
        if wait:
            sent.append(("WAIT", wait, int(self.options.wait_timeout * 1000)))
        first_error: ResponseError | None = None
        replies: Any = None
        confirmed = wait
        try:
            await connection.send_packed_command(connection.pack_commands(sent))
            for position in range(len(sent)):
                try:
                    reply = await connection.read_response()
                except ResponseError as error:
                    first_error = first_error or error
                    continue
                if position == len(commands) + 1:
                    replies = reply
                elif position == len(commands) + 2:
                    confirmed = int(reply)
        except BaseException:
            # A reply may still be on its way: never hand this connection to anyone else half-read.
            await connection.disconnect()
            raise
        if replies is None:
            raise first_error or ResponseError("transaction discarded")
        if confirmed < wait:
            raise NotEnoughReplicas(
                f"written on the primary, but {confirmed} of {wait} replicas confirmed it within {self.options.wait_timeout}s"
            )
        return list(replies)

    async def scan(self, pattern: str) -> AsyncIterator[bytes]:
        """Every key matching ``pattern`` (on every primary, in cluster mode)."""
        async for key in self.client.scan_iter(match=pattern, count=1000):
            yield key

    async def unlink(self, keys: list[bytes]) -> None:
        """Delete keys (grouped per node in cluster mode)."""
        if isinstance(self.client, RedisCluster):
            by_slot: dict[int, list[bytes]] = {}
            for key in keys:
                by_slot.setdefault(key_slot(key), []).append(key)
            cluster = self.client
            await asyncio.gather(*(cluster.unlink(*group) for group in by_slot.values()))
        elif keys:
            await self.client.unlink(*keys)

    async def aclose(self) -> None:
        """Disconnect every connection."""
        await self.client.aclose()
