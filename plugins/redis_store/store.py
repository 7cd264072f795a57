"""The Redis store: every batch of operations is one MULTI/EXEC (one per slot in Redis Cluster).

Operations are lists of Redis commands plus a function turning their replies into the
result. The :class:`~hookmq.store.batching.GroupCommitter` packs everything queued since the
last round trip into one transaction, so N concurrent writes cost one round trip and land
atomically. When Redis cannot be reached, the batch fails with
:class:`~hookmq.store.errors.StoreUnavailable` and the store backs off (exponentially, up
to ``max_backoff``): operations fail fast during the pause, then the next batch reconnects.

In Redis Cluster (``cluster = true``) the keys carry hash tags (:mod:`.keys`), every
operation touches one slot, and a batch becomes one transaction per slot, sent to the
slots' primaries concurrently; an operation's outcome is that of its slot's transaction.
With Sentinel the batch goes to whichever server the sentinels name as primary.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

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

from .connect import Backend, client_kwargs, command_slot, connect
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


#: The older name of :func:`.connect.client_kwargs` (one-server clients built elsewhere use it).
_client_kwargs = client_kwargs

#: Slot transactions of one batch in flight at once (Redis Cluster).
_SLOT_CONCURRENCY = 32


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
        self.keys = KeyLayout(self.options.prefix, tagged=self.options.cluster)
        self._backend: Backend | None = None
        self._committer: GroupCommitter[Operation] | None = None
        self._backoff = _INITIAL_BACKOFF
        self._down_until = 0.0
        self._last_seq = 0

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The Redis URL, password hidden (with the sentinels or the cluster named)."""
        return self._topology(_redacted(self.options.url))

    def _topology(self, url: str) -> str:
        options = self.options
        if options.sentinels:
            return f"{options.service_name!r} via sentinels {','.join(options.sentinels)}"
        if options.cluster:
            return f"cluster {','.join([url, *options.nodes])}"
        return url

    def describe(self) -> str:
        """The Redis URL without its password, and the key prefix."""
        return f"redis: {self._topology(_without_password(self.options.url))} (key prefix {self.options.prefix!r})"

    def _mark_down(self, error: BaseException) -> StoreUnavailable:
        self._down_until = time.monotonic() + self._backoff
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self.options.max_backoff)
        return StoreUnavailable(f"redis store: {self.where} unreachable ({error}); next attempt in {pause:.1f}s")

    async def _execute(self, ops: list[Operation]) -> list[object]:
        backend = self._backend
        if backend is None:
            raise StoreClosed("redis store is not open")
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"redis store: {self.where} is down; waiting before reconnecting")
        if not backend.cluster:
            replies = await self._transaction(backend, [command for op in ops for command in op.commands])
            if isinstance(replies, BaseException):
                raise replies
            outcomes: list[object] = []
            position = 0
            for op in ops:
                outcomes.append(_outcome(op, replies[position : position + len(op.commands)]))
                position += len(op.commands)
            return outcomes
        return await self._execute_per_slot(backend, ops)

    async def _execute_per_slot(self, backend: Backend, ops: list[Operation]) -> list[object]:
        """Redis Cluster: one transaction per slot; an operation spanning slots is split across them.

        The store's own operations each stay in one slot (the tagged layout); the split is for
        callers that add a command on a shared key (an index) to a per-client operation: each
        part is atomic in its slot, and the operation succeeds only if every part did.
        """
        pieces: dict[int, list[tuple[int, int]]] = {}
        for index, op in enumerate(ops):
            for position, command in enumerate(op.commands):
                pieces.setdefault(command_slot(command), []).append((index, position))
        replies: list[list[Any]] = [[None] * len(op.commands) for op in ops]
        failed: dict[int, StoreError] = {}
        limit = asyncio.Semaphore(_SLOT_CONCURRENCY)

        async def one_slot(entries: list[tuple[int, int]]) -> None:
            async with limit:
                result = await self._transaction(backend, [ops[i].commands[j] for i, j in entries])
            if isinstance(result, StoreError):
                for index, _ in entries:
                    failed.setdefault(index, result)
                return
            for (index, position), reply in zip(entries, result, strict=True):
                replies[index][position] = reply

        await asyncio.gather(*(one_slot(entries) for entries in pieces.values()))
        return [failed[i] if i in failed else _outcome(op, replies[i]) for i, op in enumerate(ops)]

    async def _transaction(self, backend: Backend, commands: list[Command]) -> list[Any] | StoreError:
        """One MULTI/EXEC of ``commands``: their replies, or the error that failed them all."""
        try:
            replies = await backend.transact(commands)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            return self._mark_down(error)
        except RedisError as error:
            return StoreUnavailable(f"redis store: {self.where}: {error}")
        self._backoff = _INITIAL_BACKOFF
        return replies

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
        self._backend = connect(self.options)
        try:
            await self._backend.ping()
        except (RedisError, OSError) as error:
            await self._backend.aclose()
            self._backend = None
            raise StoreUnavailable(f"redis store: cannot reach {self.where}: {error}") from error
        self._backoff = _INITIAL_BACKOFF
        self._down_until = 0.0
        self._committer = GroupCommitter.started_for(self._execute, "redis", self.storage)

    async def close(self) -> None:
        """Send what is queued, then disconnect."""
        committer, self._committer = self._committer, None
        if committer is not None:
            await committer.close()
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None

    async def flush(self) -> None:
        """Wait until Redis has acknowledged every queued write."""
        await self._batcher().drain()

    async def clear(self) -> None:
        """Delete every key under the prefix."""
        await self.flush()
        backend = self._backend
        if backend is None:
            raise StoreClosed("redis store is not open")
        try:
            batch: list[bytes] = []
            async for key in backend.scan(self.keys.match_all()):
                batch.append(key)
                if len(batch) >= 500:
                    await backend.unlink(batch)
                    batch.clear()
            if batch:
                await backend.unlink(batch)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"redis store: {self.where}: {error}") from error

    # -- sessions ----------------------------------------------------------------------------

    async def save_session(self, record: SessionRecord) -> None:
        """HSET into the sessions hash (tagged: SET the client's session key)."""
        if self.keys.tagged:
            await self._write(("SET", self.keys.session(record.client_id), encode_session(record)))
            return
        await self._write(("HSET", self.keys.sessions, record.client_id, encode_session(record)))

    async def load_session(self, client_id: str) -> SessionRecord | None:
        """HGET from the sessions hash (tagged: GET)."""
        command = ("GET", self.keys.session(client_id)) if self.keys.tagged else ("HGET", self.keys.sessions, client_id)
        found = await self._read(_first_optional(decode_session), command)
        return cast("SessionRecord | None", found)

    async def delete_session(self, client_id: str) -> None:
        """Remove the session and every per-client key (tagged: one single-slot DEL)."""
        if self.keys.tagged:
            await self._write(("DEL", *self.keys.client_keys(client_id)))
            return
        await self._write(
            ("HDEL", self.keys.sessions, client_id),
            ("DEL", *self.keys.client_keys(client_id)),
            ("SREM", self.keys.subscribers, client_id),
        )

    async def list_sessions(self) -> list[SessionRecord]:
        """HVALS of the sessions hash (tagged: every primary scanned for session keys)."""
        if not self.keys.tagged:
            found = await self._read(_first_list(decode_session), ("HVALS", self.keys.sessions))
            return cast("list[SessionRecord]", found)
        client_ids = await self._scan_clients("session")
        loaded = await asyncio.gather(*(self.load_session(client_id) for client_id in client_ids))
        return [record for record in loaded if record is not None]

    async def _scan_clients(self, kind: str) -> list[str]:
        """The client ids having a per-client key of ``kind`` (tagged layout), sorted."""
        backend = self._backend
        if backend is None:
            raise StoreClosed("redis store is not open")
        await self.flush()
        found: set[str] = set()
        try:
            async for key in backend.scan(self.keys.match_kind(kind)):
                client_id = self.keys.client_of(key.decode("utf-8", "surrogatepass"), kind)
                if client_id is not None:
                    found.add(client_id)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"redis store: {self.where}: {error}") from error
        return sorted(found)

    # -- subscriptions -----------------------------------------------------------------------

    async def save_subscription(self, client_id: str, subscription: SubscriptionRecord) -> None:
        """HSET by filter and note the client in the subscribers set (tagged: no shared set)."""
        saved = ("HSET", self.keys.subs(client_id), subscription.topic_filter, encode_subscription(subscription))
        if self.keys.tagged:
            await self._write(saved)
            return
        await self._write(saved, ("SADD", self.keys.subscribers, client_id))

    async def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        """HDEL by filter."""
        await self._write(("HDEL", self.keys.subs(client_id), topic_filter))

    async def load_subscriptions(self, client_id: str) -> list[SubscriptionRecord]:
        """HVALS of the client's subscriptions hash."""
        found = await self._read(_first_list(decode_subscription), ("HVALS", self.keys.subs(client_id)))
        return cast("list[SubscriptionRecord]", found)

    async def load_all_subscriptions(self) -> dict[str, list[SubscriptionRecord]]:
        """The subscribers set, then one HVALS per client in a single batch (tagged: a scan)."""
        if self.keys.tagged:
            client_ids = await self._scan_clients("subs")
            loaded = await asyncio.gather(*(self.load_subscriptions(client_id) for client_id in client_ids))
            return {client_id: subs for client_id, subs in zip(client_ids, loaded, strict=True) if subs}
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
            order, raw = replies
            records = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
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


def _outcome(op: Operation, replies: list[Any]) -> object:
    """An operation's result from its replies, or the StoreError one of them carries."""
    failure = next((reply for reply in replies if isinstance(reply, BaseException)), None)
    if failure is not None:
        return StoreError(f"redis store: {failure}")
    try:
        return op.parse(replies)
    except ValueError as error:
        return StoreError(f"redis store: unreadable record: {error}")


def _first_optional(decode: Callable[[bytes], object]) -> Callable[[list[Any]], object]:
    """Parser: decode the first reply, or ``None`` when Redis returned nil."""
    return lambda replies: None if replies[0] is None else decode(replies[0])


def _first_list(decode: Callable[[bytes], object]) -> Callable[[list[Any]], object]:
    """Parser: decode every item of the first reply."""
    return lambda replies: [decode(item) for item in replies[0]]
