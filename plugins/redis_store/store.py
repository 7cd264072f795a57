"""The Redis store: every operation goes through one MULTI/EXEC pipeline per batch.

Operations are lists of Redis commands plus a function turning their replies into the
result. The :class:`~hookmq.store.batching.GroupCommitter` packs everything queued since the
last round trip into one transaction, so N concurrent writes cost one round trip and land
atomically. When Redis cannot be reached, the batch fails with
:class:`~hookmq.store.errors.StoreUnavailable` and the store backs off (exponentially, up
to ``max_backoff``): operations fail fast during the pause, then the next batch reconnects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from hookmq.store.base import DropPolicy, Store
from hookmq.store.batching import GroupCommitter
from hookmq.store.errors import StoreClosed, StoreError, StoreUnavailable
from hookmq.store.records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from hookmq.store.serialize import (
    decode_message,
    decode_outgoing,
    decode_session,
    decode_subscription,
    encode_message,
    encode_outgoing,
    encode_session,
    encode_subscription,
)
from hookmq.store.settings import StorageSettings

from .keys import KeyLayout
from .settings import RedisStoreSettings

__all__ = ["RedisStore"]

# Appends within the bound atomically and returns what was dropped (nil when nothing was).
# KEYS[1] queue; ARGV[1] message, ARGV[2] limit (> 0), ARGV[3] "oldest" | "newest".
_QUEUE_APPEND = """
local limit = tonumber(ARGV[2])
local length = redis.call('LLEN', KEYS[1])
if length < limit then
    redis.call('RPUSH', KEYS[1], ARGV[1])
    return false
end
if ARGV[3] == 'newest' then
    return ARGV[1]
end
local dropped = redis.call('LPOP', KEYS[1])
if length > limit then
    redis.call('LTRIM', KEYS[1], length - limit, -1)
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return dropped
"""

_INITIAL_BACKOFF = 0.1

Command = tuple[Any, ...]


def _nothing(_: list[Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Operation:
    """Commands queued into the batch pipeline and the parser of their replies."""

    commands: Sequence[Command]
    parse: Callable[[list[Any]], object] = _nothing


def _client_kwargs(options: RedisStoreSettings) -> tuple[str, dict[str, Any]]:
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


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, *parts[2:]))


def _without_password(url: str) -> str:
    """The URL with no password at all (user name kept), for the banner."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}@{host}" if user else host, *parts[2:]))


class RedisStore(Store):
    """Persistent state in Redis, shareable by several broker processes."""

    name: ClassVar[str] = "redis"

    def __init__(self, options: RedisStoreSettings | None = None, storage: StorageSettings | None = None) -> None:
        """Prepare a store; nothing connects until ``open``."""
        self.options = options or RedisStoreSettings()
        self.storage = storage or StorageSettings()
        self.keys = KeyLayout(self.options.prefix)
        self._client: aioredis.Redis | None = None
        self._committer: GroupCommitter[Operation] | None = None
        self._backoff = _INITIAL_BACKOFF
        self._down_until = 0.0
        self._last_seq = 0

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The Redis URL, password hidden."""
        return _redacted(self.options.url)

    def describe(self) -> str:
        """The Redis URL without its password, and the key prefix."""
        return f"redis: {_without_password(self.options.url)} (key prefix {self.options.prefix!r})"

    def _mark_down(self, error: BaseException) -> StoreUnavailable:
        self._down_until = time.monotonic() + self._backoff
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self.options.max_backoff)
        return StoreUnavailable(f"redis store: {self.where} unreachable ({error}); next attempt in {pause:.1f}s")

    async def _execute(self, ops: list[Operation]) -> list[object]:
        client = self._client
        if client is None:
            raise StoreClosed("redis store is not open")
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"redis store: {self.where} is down; waiting before reconnecting")
        pipe = client.pipeline(transaction=True)
        for op in ops:
            for command in op.commands:
                pipe.execute_command(*command)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise self._mark_down(error) from error
        except RedisError as error:
            raise StoreUnavailable(f"redis store: {self.where}: {error}") from error
        self._backoff = _INITIAL_BACKOFF
        return self._split(ops, replies)

    @staticmethod
    def _split(ops: list[Operation], replies: list[Any]) -> list[object]:
        outcomes: list[object] = []
        position = 0
        for op in ops:
            mine = replies[position : position + len(op.commands)]
            position += len(op.commands)
            failure = next((reply for reply in mine if isinstance(reply, BaseException)), None)
            if failure is not None:
                outcomes.append(StoreError(f"redis store: {failure}"))
                continue
            try:
                outcomes.append(op.parse(mine))
            except ValueError as error:
                outcomes.append(StoreError(f"redis store: unreadable record: {error}"))
        return outcomes

    def _batcher(self) -> GroupCommitter[Operation]:
        if self._committer is None:
            raise StoreClosed("redis store is not open")
        return self._committer

    async def _write(self, *commands: Command) -> None:
        await self._batcher().write(Operation(commands))

    async def _read(self, parse: Callable[[list[Any]], object], *commands: Command) -> object:
        return await self._batcher().call(Operation(commands, parse))

    def _next_seq(self) -> int:
        """Microseconds since the epoch, strictly increasing within this process (exact in a double)."""
        self._last_seq = max(self._last_seq + 1, int(time.time() * 1_000_000))
        return self._last_seq

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check Redis answers; raises StoreUnavailable when it does not."""
        url, kwargs = _client_kwargs(self.options)
        self._client = aioredis.Redis.from_url(url, **kwargs)
        try:
            await self._client.ping()
        except (RedisError, OSError) as error:
            await self._client.aclose()
            self._client = None
            raise StoreUnavailable(f"redis store: cannot reach {self.where}: {error}") from error
        self._backoff = _INITIAL_BACKOFF
        self._down_until = 0.0
        self._committer = GroupCommitter.started_for(self._execute, "redis", self.storage)

    async def close(self) -> None:
        """Send what is queued, then disconnect."""
        committer, self._committer = self._committer, None
        if committer is not None:
            await committer.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def flush(self) -> None:
        """Wait until Redis has acknowledged every queued write."""
        await self._batcher().drain()

    async def clear(self) -> None:
        """Delete every key under the prefix."""
        await self.flush()
        client = self._client
        if client is None:
            raise StoreClosed("redis store is not open")
        try:
            batch: list[bytes] = []
            async for key in client.scan_iter(match=self.keys.match_all(), count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"redis store: {self.where}: {error}") from error

    # -- sessions ----------------------------------------------------------------------------

    async def save_session(self, record: SessionRecord) -> None:
        """HSET into the sessions hash."""
        await self._write(("HSET", self.keys.sessions, record.client_id, encode_session(record)))

    async def load_session(self, client_id: str) -> SessionRecord | None:
        """HGET from the sessions hash."""
        found = await self._read(_first_optional(decode_session), ("HGET", self.keys.sessions, client_id))
        return cast("SessionRecord | None", found)

    async def delete_session(self, client_id: str) -> None:
        """Remove the session field and every per-client key."""
        await self._write(
            ("HDEL", self.keys.sessions, client_id),
            ("DEL", *self.keys.client_keys(client_id)),
            ("SREM", self.keys.subscribers, client_id),
        )

    async def list_sessions(self) -> list[SessionRecord]:
        """HVALS of the sessions hash."""
        found = await self._read(_first_list(decode_session), ("HVALS", self.keys.sessions))
        return cast("list[SessionRecord]", found)

    # -- subscriptions -----------------------------------------------------------------------

    async def save_subscription(self, client_id: str, subscription: SubscriptionRecord) -> None:
        """HSET by filter and note the client in the subscribers set."""
        await self._write(
            ("HSET", self.keys.subs(client_id), subscription.topic_filter, encode_subscription(subscription)),
            ("SADD", self.keys.subscribers, client_id),
        )

    async def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        """HDEL by filter."""
        await self._write(("HDEL", self.keys.subs(client_id), topic_filter))

    async def load_subscriptions(self, client_id: str) -> list[SubscriptionRecord]:
        """HVALS of the client's subscriptions hash."""
        found = await self._read(_first_list(decode_subscription), ("HVALS", self.keys.subs(client_id)))
        return cast("list[SubscriptionRecord]", found)

    async def load_all_subscriptions(self) -> dict[str, list[SubscriptionRecord]]:
        """The subscribers set, then one HVALS per client in a single batch."""
        members = cast("list[bytes]", await self._read(lambda r: list(r[0]), ("SMEMBERS", self.keys.subscribers)))
        client_ids = sorted(member.decode("utf-8", "surrogatepass") for member in members)
        if not client_ids:
            return {}

        def parse(replies: list[Any]) -> dict[str, list[SubscriptionRecord]]:
            return {
                client_id: [decode_subscription(blob) for blob in blobs]
                for client_id, blobs in zip(client_ids, replies, strict=True)
                if blobs
            }

        found = await self._read(parse, *(("HVALS", self.keys.subs(client_id)) for client_id in client_ids))
        return cast("dict[str, list[SubscriptionRecord]]", found)

    # -- outgoing inflight -------------------------------------------------------------------

    async def save_outgoing(self, client_id: str, record: OutgoingRecord) -> None:
        """HSET the record; ZADD NX keeps the first save's place in the resend order."""
        await self._write(
            ("HSET", self.keys.outgoing(client_id), record.packet_id, encode_outgoing(record)),
            ("ZADD", self.keys.outgoing_order(client_id), "NX", self._next_seq(), record.packet_id),
        )

    async def delete_outgoing(self, client_id: str, packet_id: int) -> None:
        """HDEL and ZREM the packet id."""
        await self._write(
            ("HDEL", self.keys.outgoing(client_id), packet_id),
            ("ZREM", self.keys.outgoing_order(client_id), packet_id),
        )

    async def load_outgoing(self, client_id: str) -> list[OutgoingRecord]:
        """The hash, ordered by the sorted set."""

        def parse(replies: list[Any]) -> list[OutgoingRecord]:
            order, records = replies
            return [decode_outgoing(records[pid]) for pid in order if pid in records]

        found = await self._read(
            parse,
            ("ZRANGE", self.keys.outgoing_order(client_id), 0, -1),
            ("HGETALL", self.keys.outgoing(client_id)),
        )
        return cast("list[OutgoingRecord]", found)

    # -- incoming QoS 2 ----------------------------------------------------------------------

    async def save_incoming(self, client_id: str, packet_id: int) -> None:
        """SADD the packet id."""
        await self._write(("SADD", self.keys.incoming(client_id), packet_id))

    async def delete_incoming(self, client_id: str, packet_id: int) -> None:
        """SREM the packet id."""
        await self._write(("SREM", self.keys.incoming(client_id), packet_id))

    async def load_incoming(self, client_id: str) -> list[int]:
        """SMEMBERS, sorted."""
        found = await self._read(lambda r: sorted(int(m) for m in r[0]), ("SMEMBERS", self.keys.incoming(client_id)))
        return cast("list[int]", found)

    # -- offline queue -----------------------------------------------------------------------

    async def queue_append(
        self, client_id: str, message: StoredMessage, limit: int, policy: DropPolicy = "drop_oldest"
    ) -> StoredMessage | None:
        """One Lua script: append within the bound, return the dropped message."""
        if limit <= 0:
            return message
        which = "newest" if policy == "drop_newest" else "oldest"
        command = ("EVAL", _QUEUE_APPEND, 1, self.keys.queue(client_id), encode_message(message), limit, which)
        found = await self._read(_first_optional(decode_message), command)
        return cast("StoredMessage | None", found)

    async def queue_peek(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """LRANGE from the head."""
        stop = -1 if count is None else count - 1
        if stop < -1:
            return []
        found = await self._read(_first_list(decode_message), ("LRANGE", self.keys.queue(client_id), 0, stop))
        return cast("list[StoredMessage]", found)

    async def queue_pop(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """LRANGE then LTRIM in the same transaction."""
        key = self.keys.queue(client_id)
        if count is not None and count <= 0:
            return []
        stop = -1 if count is None else count - 1
        trim = ("DEL", key) if count is None else ("LTRIM", key, count, -1)
        found = await self._read(_first_list(decode_message), ("LRANGE", key, 0, stop), trim)
        return cast("list[StoredMessage]", found)

    async def queue_length(self, client_id: str) -> int:
        """LLEN."""
        return cast(int, await self._read(lambda r: int(r[0]), ("LLEN", self.keys.queue(client_id))))

    # -- retained ----------------------------------------------------------------------------

    async def save_retained(self, message: StoredMessage) -> None:
        """HSET by topic."""
        await self._write(("HSET", self.keys.retained, message.publish.topic, encode_message(message)))

    async def delete_retained(self, topic: str) -> None:
        """HDEL by topic."""
        await self._write(("HDEL", self.keys.retained, topic))

    async def load_retained(self) -> list[StoredMessage]:
        """HVALS of the retained hash."""
        found = await self._read(_first_list(decode_message), ("HVALS", self.keys.retained))
        return cast("list[StoredMessage]", found)

    # -- $SYS counters -----------------------------------------------------------------------

    async def save_counters(self, counters: dict[str, int | float | str]) -> None:
        """SET the JSON object."""
        await self._write(("SET", self.keys.sys, json.dumps(counters)))

    async def load_counters(self) -> dict[str, int | float | str]:
        """GET and parse the JSON object."""

        def parse(replies: list[Any]) -> dict[str, int | float | str]:
            raw = replies[0]
            return {} if raw is None else cast("dict[str, int | float | str]", json.loads(raw))

        return cast("dict[str, int | float | str]", await self._read(parse, ("GET", self.keys.sys)))


def _first_optional(decode: Callable[[bytes], object]) -> Callable[[list[Any]], object]:
    """Parser: decode the first reply, or ``None`` when Redis returned nil."""
    return lambda replies: None if replies[0] is None else decode(replies[0])


def _first_list(decode: Callable[[bytes], object]) -> Callable[[list[Any]], object]:
    """Parser: decode every item of the first reply."""
    return lambda replies: [decode(item) for item in replies[0]]
