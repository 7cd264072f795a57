"""Retained messages with a version per topic in Redis, for a cluster: an older write never wins.

The engine writes plain retained records (``P retained``) behind its clients, and with
several nodes writing one Redis those writes can land out of order: a message set on one node
could overwrite the clear another node made later, and the cleared topic would come back
when a node restarts. This key space keeps every topic's *state* (set or cleared) with its
version, and a Lua script writes a state only when its version is newer than the one held, in
one atomic step. A cleared topic keeps its version (a tombstone) for as long as the key space
lives, so no late write can resurrect it.

``P {cluster:retained}:versions`` hash  topic -> version (20 decimal digits, so strings compare as numbers)
``P {cluster:retained}:messages`` hash  topic -> the retained message (opaque bytes; absent when cleared)
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from .settings import RedisStoreSettings
from .store import _client_kwargs

__all__ = ["VersionedRetained"]

#: KEYS: versions, messages. ARGV: topic, version (20 digits), message ("" = cleared).
_CAS = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and held >= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return 1
"""


def _version_text(version: int) -> str:
    if not 0 <= version < 10**20:
        raise ValueError(f"version {version} out of range")
    return f"{version:020d}"


class VersionedRetained:
    """The cluster's versioned retained states in one Redis (shared by every node)."""

    def __init__(self, options: RedisStoreSettings) -> None:
        url, kwargs = _client_kwargs(options)
        self._client: aioredis.Redis = aioredis.Redis.from_url(url, **kwargs)
        # One hash tag for both keys: the script writes them together, and in a Redis Cluster
        # they must share a slot.
        self.versions_key = f"{options.prefix}{{cluster:retained}}:versions"
        self.messages_key = f"{options.prefix}{{cluster:retained}}:messages"
        self._script: Any = self._client.register_script(_CAS)

    async def put(self, topic: str, version: int, message: bytes | None) -> bool:
        """Write one topic's state if ``version`` is newer than the held one; returns whether it was written."""
        written = await self._script(keys=[self.versions_key, self.messages_key],
                                     args=[topic.encode(), _version_text(version), message or b""])
        return bool(written)

    async def load(self) -> list[tuple[str, int, bytes | None]]:
        """Every topic's state: ``(topic, version, message or None when cleared)``."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.versions_key)
            pipe.hgetall(self.messages_key)
            versions, messages = await pipe.execute()
        return [(topic.decode(), int(version), messages.get(topic)) for topic, version in versions.items()]

    async def close(self) -> None:
        """Disconnect."""
        await self._client.aclose()
