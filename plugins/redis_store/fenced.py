"""The Redis store of a cluster: one owner per session, fenced by an epoch (Lua scripts).

A CONNECT on a node claims the client id with one script that, in one atomic step, raises the
client id's epoch and names the node its owner (:meth:`FencedRedisStore.claim`). The store
then remembers the epoch it holds for that client id, and every later write of that session's
state (record, subscriptions, inflight both ways, queue) is one script that first compares
the epoch it carries with the stored one: a write carrying an older epoch is refused by Redis
itself, so a node that lost the session (paused, partitioned, slow) can neither overwrite the
new owner's state nor delete it. A refused write is not an error for the engine (retrying it
could never succeed): it is counted, and the callbacks of :meth:`FencedRedisStore.on_fenced`
hear of it, so the cluster can end the stale connection.

Every per-client key carries the client id as a Redis Cluster hash tag, ``P{c:<cid>}:…``, so
each script touches one slot. The index of sessions and subscribers (``P fenced:sessions``,
``P fenced:subscribers``) is written beside the script in the same transaction; it only says
which client ids to look at, the truth is in the tagged keys.

=============================  ======  ====================================================
key                            type    content
=============================  ======  ====================================================
``P{c:<cid>}:owner``           hash    ``node`` (the owner's name, "" once released), ``epoch``
``P{c:<cid>}:session``         string  the session record
``P{c:<cid>}:subs``            hash    topic filter -> subscription record
``P{c:<cid>}:out``             hash    packet id -> outgoing inflight record
``P{c:<cid>}:outorder``        zset    packet id scored by first-save time (resend order)
``P{c:<cid>}:in``              set     incoming QoS 2 packet ids awaiting PUBREL
``P{c:<cid>}:inpend``          hash    incoming QoS 2 packet id -> identity, forwarded and not yet received
``P{c:<cid>}:queue``           list    offline queue, head = oldest
``P{c:<cid>}:done``            list    identities of the last `COMPLETED_KEPT` completed messages from other nodes
``P fenced:sessions``          set     client ids with a session record
``P fenced:subscribers``       set     client ids that have (or had) subscriptions
=============================  ======  ====================================================

The owner hash outlives the session (a deleted session keeps its epoch), so a stale owner's
late write is refused even after the new owner deleted everything else.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from weakref import WeakValueDictionary

from hookmq.store.base import DropPolicy
from hookmq.store.records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from hookmq.store.serialize import (
    decode_message,
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
from .store import Command, Operation, RedisStore

__all__ = ["Claim", "FencedKeys", "FencedRedisStore", "fenced_store_of"]

log = logging.getLogger("hookmq.plugins.redis_store.fenced")

# KEYS[1] owner. ARGV[1] node. Returns {new epoch, previous owner or false, previous epoch}.
_CLAIM = """
local previous = redis.call('HGET', KEYS[1], 'node')
local before = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1])
return {epoch, previous or false, before}
"""

# KEYS[1] owner. ARGV[1] node, ARGV[2] the owner it must still have. Returns the new epoch, or false.
_ADOPT = """
if (redis.call('HGET', KEYS[1], 'node') or '') ~= ARGV[2] then return false end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'node', ARGV[1])
return epoch
"""

# KEYS[1] owner. ARGV[1] epoch. The owner is cleared only by the holder of the current epoch.
_RELEASE = """
if tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') == tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'node', '')
    return 1
end
return 0
"""

# KEYS[1] owner, KEYS[2..] the keys the commands write. ARGV[1] epoch carried, ARGV[2] how many
# commands, then per command: name, index into KEYS, argument count, arguments.
# Returns {1, replies...} when written, {0, stored epoch} when refused.
_FENCED = """
local held = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if held > tonumber(ARGV[1]) then return {0, held} end
local replies = {1}
local at = 3
for _ = 1, tonumber(ARGV[2]) do
    local name, key, count = ARGV[at], KEYS[tonumber(ARGV[at + 1])], tonumber(ARGV[at + 2])
    local args = {}
    for i = 1, count do args[i] = ARGV[at + 2 + i] end
    at = at + 3 + count
    local reply = redis.call(name, key, unpack(args))
    if type(reply) == 'table' then reply = #reply end
    replies[#replies + 1] = reply or false
end
return replies
"""

# KEYS[1] owner, KEYS[2] queue. ARGV[1] epoch, ARGV[2] message, ARGV[3] limit (> 0), ARGV[4]
# "oldest" | "newest". {0, epoch} refused; {1} appended; {1, dropped} appended with a drop.
_FENCED_APPEND = """
local held = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if held > tonumber(ARGV[1]) then return {0, held} end
local limit = tonumber(ARGV[3])
local length = redis.call('LLEN', KEYS[2])
if length < limit then
    redis.call('RPUSH', KEYS[2], ARGV[2])
    return {1}
end
if ARGV[4] == 'newest' then return {1, ARGV[2]} end
local dropped = redis.call('LPOP', KEYS[2])
if length > limit then redis.call('LTRIM', KEYS[2], length - limit, -1) end
redis.call('RPUSH', KEYS[2], ARGV[2])
return {1, dropped}
"""

# KEYS[1] owner, KEYS[2] queue. ARGV[1] epoch, ARGV[2] count (-1: all). {0, epoch} or {1, popped...}.
_FENCED_POP = """
local held = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if held > tonumber(ARGV[1]) then return {0, held} end
local count = tonumber(ARGV[2])
local popped
if count < 0 then
    popped = redis.call('LRANGE', KEYS[2], 0, -1)
    redis.call('DEL', KEYS[2])
else
    popped = redis.call('LRANGE', KEYS[2], 0, count - 1)
    redis.call('LTRIM', KEYS[2], count, -1)
end
local result = {1}
for i = 1, #popped do result[i + 1] = popped[i] end
return result
"""

#: Identities of completed messages kept per session (as many as a session keeps in memory).
COMPLETED_KEPT = 1024

FencedCallback = Callable[[str, int, int], None]
"""``callback(client_id, epoch carried, epoch held)``: a write of ``client_id`` was refused."""

_stores: WeakValueDictionary[int, FencedRedisStore] = WeakValueDictionary()


def fenced_store_of(config: Any) -> FencedRedisStore | None:
    """The fenced store built for this broker configuration (the cluster's sessions use it), or None."""
    return _stores.get(id(config))


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found and made: the new epoch, and who owned the client id before."""

    client_id: str
    epoch: int
    #: The previous owner's node name; None when nobody held it (never claimed, or released).
    previous: str | None
    previous_epoch: int


@dataclass(frozen=True, slots=True)
class FencedKeys(KeyLayout):
    """The store's tagged layout (every per-client key ``P{c:<cid>}:<kind>``, by `KeyLayout.client_key`), plus the owner and the indexes.

    Always tagged, on one Redis as on a Redis Cluster: a fenced script touches one client's
    keys only, so they must share a slot whatever the client id (empty, or with ``{``/``}``).
    """

    tagged: bool = True

    def client_keys(self, client_id: str) -> tuple[str, ...]:
        """The per-client keys a deleted session loses (its record's key apart; the owner hash stays)."""
        return tuple(self.client_key(client_id, kind)
                     for kind in ("subs", "out", "outorder", "in", "inpend", "queue", "done"))

    def owner(self, client_id: str) -> str:
        """Hash: owner node and epoch."""
        return self.client_key(client_id, "owner")

    @property
    def session_index(self) -> str:
        """Set of client ids with a session record."""
        return f"{self.prefix}fenced:sessions"

    @property
    def subscribers(self) -> str:
        """Set of client ids with subscriptions."""
        return f"{self.prefix}fenced:subscribers"


class FencedRedisStore(RedisStore):
    """The Redis store with one fenced owner per client id (see the module docstring)."""

    def __init__(self, options: RedisStoreSettings | None = None, storage: StorageSettings | None = None,
                 config: Any = None) -> None:
        """Prepare a store; ``config`` (the broker's) lets the cluster find it with :func:`fenced_store_of`."""
        super().__init__(options, storage)
        self.keys: FencedKeys = FencedKeys(self.options.prefix, tagged=True)
        #: The epoch this process holds for each client id it claimed (or adopted).
        self.epochs: dict[str, int] = {}
        #: Writes refused because another node holds a newer epoch, per kind of write.
        self.refused: Counter[str] = Counter()
        self._fenced_callbacks: list[FencedCallback] = []
        if config is not None:
            _stores[id(config)] = self

    # -- ownership ---------------------------------------------------------------------------

    async def claim(self, client_id: str, node: str) -> Claim:
        """Raise the client id's epoch and make ``node`` its owner, atomically; this process holds the epoch."""
        reply = await self._read(lambda r: r[0], ("EVAL", _CLAIM, 1, self.keys.owner(client_id), node))
        epoch, previous, before = cast("list[Any]", reply)
        self.epochs[client_id] = int(epoch)
        name = previous.decode() if isinstance(previous, bytes) else None
        return Claim(client_id, int(epoch), name or None, int(before))

    async def owner(self, client_id: str) -> tuple[str | None, int]:
        """The stored owner's node ("" or absent: none) and epoch of ``client_id``."""
        reply = await self._read(lambda r: r[0], ("HMGET", self.keys.owner(client_id), "node", "epoch"))
        node, epoch = cast("list[Any]", reply)
        return (node.decode() or None) if node else None, int(epoch or 0)

    async def adopt_from(self, client_id: str, node: str, dead: str) -> int | None:
        """Claim ``client_id`` for ``node`` only while ``dead`` still owns it; the new epoch, or None."""
        reply = await self._read(lambda r: r[0], ("EVAL", _ADOPT, 1, self.keys.owner(client_id), node, dead))
        if reply is None:
            return None
        epoch = int(cast(int, reply))
        self.epochs[client_id] = epoch
        return epoch

    async def owners(self) -> dict[str, tuple[str | None, int]]:
        """Every client id with a stored session, and its owner and epoch (two round trips)."""
        members = cast("list[bytes]", await self._read(lambda r: list(r[0]), ("SMEMBERS", self.keys.session_index)))
        client_ids = sorted(member.decode("utf-8", "surrogatepass") for member in members)
        if not client_ids:
            return {}

        def parse(replies: list[Any]) -> dict[str, tuple[str | None, int]]:
            return {cid: ((node.decode() or None) if node else None, int(epoch or 0))
                    for cid, (node, epoch) in zip(client_ids, replies, strict=True)}

        found = await self._read(parse, *(("HMGET", self.keys.owner(cid), "node", "epoch") for cid in client_ids))
        return cast("dict[str, tuple[str | None, int]]", found)

    def holds(self, client_id: str) -> int | None:
        """The epoch this process holds for ``client_id``, or None."""
        return self.epochs.get(client_id)

    def adopt(self, client_id: str, epoch: int) -> None:
        """Hold ``epoch`` for ``client_id`` (a claim made by this node's name before, seen in the store)."""
        self.epochs[client_id] = epoch

    async def release(self, client_id: str) -> bool:
        """Give the client id up: this process writes it no more, and the owner is cleared if still ours."""
        epoch = self.epochs.pop(client_id, None)
        if epoch is None:
            return False
        await self.flush()
        reply = await self._read(lambda r: r[0], ("EVAL", _RELEASE, 1, self.keys.owner(client_id), epoch))
        return bool(reply)

    def forget_epoch(self, client_id: str) -> None:
        """Stop writing ``client_id`` without touching the store (another node took it)."""
        self.epochs.pop(client_id, None)

    def on_fenced(self, callback: FencedCallback) -> Callable[[], None]:
        """Call ``callback(client_id, carried, held)`` for each refused write; returns an unsubscribe function."""
        self._fenced_callbacks.append(callback)
        return lambda: self._fenced_callbacks.remove(callback)

    # -- the fenced write --------------------------------------------------------------------

    def _carried(self, client_id: str) -> int:
        return self.epochs.get(client_id, 0)

    def _fenced_op(self, client_id: str, what: str, commands: list[Command],
                   index: list[Command] | None = None) -> Operation:
        """One script running ``commands`` (each ``(name, key, *args)``) if our epoch is current."""
        keys = [self.keys.owner(client_id)]
        argv: list[Any] = [self._carried(client_id), len(commands)]
        for name, key, *args in commands:
            if key not in keys:
                keys.append(key)
            argv += [name, keys.index(key) + 1, len(args), *args]
        script: Command = ("EVAL", _FENCED, len(keys), *keys, *argv)
        carried = self._carried(client_id)

        def parse(replies: list[Any]) -> object:
            self._check(client_id, what, carried, replies[0])
            return None

        return Operation((script, *(index or [])), parse)

    def _check(self, client_id: str, what: str, carried: int, reply: list[Any]) -> bool:
        """Whether the script wrote; a refusal is counted and reported, never raised."""
        if int(reply[0]) == 1:
            return True
        held = int(reply[1])
        self.refused[what] += 1
        log.debug("refused %s of %s: epoch %d, the store holds %d", what, client_id, carried, held)
        if self.epochs.get(client_id) == carried:
            self.epochs.pop(client_id, None)
        for callback in list(self._fenced_callbacks):
            try:
                callback(client_id, carried, held)
            except Exception:
                log.exception("fenced-write callback failed")
        return False

    async def _fenced(self, client_id: str, what: str, commands: list[Command],
                      index: list[Command] | None = None) -> None:
        await self._batcher().write(self._fenced_op(client_id, what, commands, index))

    # -- sessions ----------------------------------------------------------------------------

    async def save_session(self, record: SessionRecord) -> None:
        """SET the record, fenced; the index notes the client id."""
        cid = record.client_id
        await self._fenced(cid, "save_session", [("SET", self.keys.session(cid), encode_session(record))],
                           [("SADD", self.keys.session_index, cid)])

    async def load_session(self, client_id: str) -> SessionRecord | None:
        """GET the record."""
        found = await self._read(lambda r: None if r[0] is None else decode_session(r[0]),
                                 ("GET", self.keys.session(client_id)))
        return cast("SessionRecord | None", found)

    async def delete_session(self, client_id: str) -> None:
        """Delete the record and every per-client key, fenced (the owner hash and its epoch stay)."""
        keys = self.keys
        commands: list[Command] = [("DEL", keys.session(client_id))]
        commands += [("DEL", key) for key in keys.client_keys(client_id)]
        await self._fenced(client_id, "delete_session", commands)

    async def list_sessions(self) -> list[SessionRecord]:
        """The index, then one GET per client id in one batch (index entries without a record are skipped)."""
        members = cast("list[bytes]", await self._read(lambda r: list(r[0]), ("SMEMBERS", self.keys.session_index)))
        client_ids = sorted(member.decode("utf-8", "surrogatepass") for member in members)
        if not client_ids:
            return []
        found = await self._read(lambda r: [decode_session(blob) for blob in r if blob is not None],
                                 *(("GET", self.keys.session(cid)) for cid in client_ids))
        return cast("list[SessionRecord]", found)

    # -- subscriptions -----------------------------------------------------------------------

    async def save_subscription(self, client_id: str, subscription: SubscriptionRecord) -> None:
        """HSET by filter, fenced; the subscribers index notes the client."""
        await self._fenced(client_id, "save_subscription",
                           [("HSET", self.keys.subs(client_id), subscription.topic_filter,
                             encode_subscription(subscription))],
                           [("SADD", self.keys.subscribers, client_id)])

    async def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        """HDEL by filter, fenced."""
        await self._fenced(client_id, "delete_subscription", [("HDEL", self.keys.subs(client_id), topic_filter)])

    async def load_all_subscriptions(self) -> dict[str, list[SubscriptionRecord]]:
        """The subscribers index, then one HVALS per client in a single batch."""
        members = cast("list[bytes]", await self._read(lambda r: list(r[0]), ("SMEMBERS", self.keys.subscribers)))
        client_ids = sorted(member.decode("utf-8", "surrogatepass") for member in members)
        if not client_ids:
            return {}

        def parse(replies: list[Any]) -> dict[str, list[SubscriptionRecord]]:
            return {cid: [decode_subscription(blob) for blob in blobs]
                    for cid, blobs in zip(client_ids, replies, strict=True) if blobs}

        found = await self._read(parse, *(("HVALS", self.keys.subs(cid)) for cid in client_ids))
        return cast("dict[str, list[SubscriptionRecord]]", found)

    # -- inflight ----------------------------------------------------------------------------

    async def save_outgoing(self, client_id: str, record: OutgoingRecord) -> None:
        """HSET and ZADD NX, fenced."""
        keys = self.keys
        await self._fenced(client_id, "save_outgoing", [
            ("HSET", keys.outgoing(client_id), record.packet_id, encode_outgoing(record)),
            ("ZADD", keys.outgoing_order(client_id), "NX", self._next_seq(), record.packet_id),
        ])

    async def delete_outgoing(self, client_id: str, packet_id: int) -> None:
        """HDEL and ZREM, fenced."""
        keys = self.keys
        await self._fenced(client_id, "delete_outgoing", [
            ("HDEL", keys.outgoing(client_id), packet_id),
            ("ZREM", keys.outgoing_order(client_id), packet_id),
        ])

    async def complete_outgoing(self, client_id: str, packet_id: int, identity: bytes) -> None:
        """`delete_outgoing`, and the completed message's identity kept (the last `COMPLETED_KEPT`), fenced."""
        keys = self.keys
        done = keys.client_key(client_id, "done")
        await self._fenced(client_id, "complete_outgoing", [
            ("HDEL", keys.outgoing(client_id), packet_id),
            ("ZREM", keys.outgoing_order(client_id), packet_id),
            ("LPUSH", done, identity),
            ("LTRIM", done, 0, COMPLETED_KEPT - 1),
        ])

    async def load_completed(self, client_id: str) -> list[bytes]:
        """The identities `complete_outgoing` kept, oldest first."""
        found = await self._read(lambda r: list(reversed(r[0])), ("LRANGE", self.keys.client_key(client_id, "done"), 0, -1))
        return cast("list[bytes]", found)

    async def save_incoming_pending(self, client_id: str, packet_id: int, identity: bytes) -> None:
        """HSET the id with its message's identity, fenced: forwarded, not yet received (`save_incoming` confirms)."""
        await self._fenced(client_id, "save_incoming_pending",
                           [("HSET", self.keys.client_key(client_id, "inpend"), packet_id, identity)])

    async def load_incoming_pending(self, client_id: str) -> dict[int, bytes]:
        """The pending ids and their identities."""
        found = await self._read(lambda r: {int(pid): identity for pid, identity in r[0].items()},
                                 ("HGETALL", self.keys.client_key(client_id, "inpend")))
        return cast("dict[int, bytes]", found)

    async def save_incoming(self, client_id: str, packet_id: int) -> None:
        """SADD (and the pending entry gone), fenced."""
        await self._fenced(client_id, "save_incoming", [
            ("SADD", self.keys.incoming(client_id), packet_id),
            ("HDEL", self.keys.client_key(client_id, "inpend"), packet_id),
        ])

    async def delete_incoming(self, client_id: str, packet_id: int) -> None:
        """SREM (and any pending entry), fenced."""
        await self._fenced(client_id, "delete_incoming", [
            ("SREM", self.keys.incoming(client_id), packet_id),
            ("HDEL", self.keys.client_key(client_id, "inpend"), packet_id),
        ])

    # -- offline queue -----------------------------------------------------------------------

    async def queue_append(self, client_id: str, message: StoredMessage, limit: int,
                           policy: DropPolicy = "drop_oldest") -> StoredMessage | None:
        """Append within the bound, fenced; a refused append returns ``message`` (it was not stored here)."""
        if limit <= 0:
            return message
        which = "newest" if policy == "drop_newest" else "oldest"
        carried = self._carried(client_id)
        command = ("EVAL", _FENCED_APPEND, 2, self.keys.owner(client_id), self.keys.queue(client_id),
                   carried, encode_message(message), limit, which)

        def parse(replies: list[Any]) -> StoredMessage | None:
            reply = replies[0]
            if not self._check(client_id, "queue_append", carried, reply):
                return message
            return decode_message(reply[1]) if len(reply) > 1 else None

        return cast("StoredMessage | None", await self._read(parse, command))

    async def queue_pop(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """LRANGE and trim, fenced: a node that lost the session pops nothing."""
        if count is not None and count <= 0:
            return []
        carried = self._carried(client_id)
        command = ("EVAL", _FENCED_POP, 2, self.keys.owner(client_id), self.keys.queue(client_id),
                   carried, -1 if count is None else count)

        def parse(replies: list[Any]) -> list[StoredMessage]:
            reply = replies[0]
            if not self._check(client_id, "queue_pop", carried, reply):
                return []
            return [decode_message(blob) for blob in reply[1:]]

        return cast("list[StoredMessage]", await self._read(parse, command))
