"""Where users and ACL rules come from: the configuration file or Redis.

Redis key layout (``<prefix>`` is ``redis_prefix``, default ``hookmq:auth:``):

* ``<prefix>users`` — a hash: field = user name, value = password hash from ``hookmq passwd``
  (an empty value: a user who may only log in by client certificate).
* ``<prefix>acl`` — a list; each element is one rule as a JSON object with the fields of a
  ``[[plugins.auth.acl]]`` table, e.g. ``{"topic": "users/%u/#", "access": "readwrite"}``.

Both are read again once they are older than ``cache_ttl`` seconds, so edits take effect
without a restart. A rule list that fails validation is refused as a whole (one skipped deny
rule could open a topic): the previous rules stay in force and the error is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from .acl import AclIndex
from .passwords import InvalidHashError, check_hash
from .settings import AclRule, AuthSettings, UserEntry

if TYPE_CHECKING:
    import redis.asyncio

logger = logging.getLogger(__name__)


class SourceUnavailableError(RuntimeError):
    """Users or rules could not be read (e.g. Redis is down and nothing is cached)."""


class Source(Protocol):
    """What the auth service needs from a source of users and rules."""

    async def user(self, name: str) -> UserEntry | None:
        """The user called ``name``, or None when there is none."""
        ...

    async def acl(self) -> AclIndex:
        """The current ACL rules."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class FileSource:
    """Users and rules from the `[plugins.auth]` table; they change only with a restart."""

    def __init__(self, settings: AuthSettings) -> None:
        """Compile the rules of ``settings`` once."""
        self._users = dict(settings.users)
        self._acl = AclIndex(settings.acl, deny_overlapping_subscriptions=settings.deny_overlapping_subscriptions)

    async def user(self, name: str) -> UserEntry | None:
        """The configured user, or None."""
        return self._users.get(name)

    async def acl(self) -> AclIndex:
        """The configured rules."""
        return self._acl

    async def close(self) -> None:
        """Nothing to release."""


class RedisSource:
    """Users and rules read from Redis and cached for ``cache_ttl`` seconds (layout: module docstring)."""

    def __init__(
        self,
        settings: AuthSettings,
        client: redis.asyncio.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Connect lazily to ``settings.redis_url`` (or use ``client``, which this object then owns)."""
        if client is None:
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(settings.redis_url, decode_responses=True)
        self._redis = client
        self._users_key = settings.redis_prefix + "users"
        self._acl_key = settings.redis_prefix + "acl"
        self._ttl = settings.cache_ttl
        self._deny_overlapping = settings.deny_overlapping_subscriptions
        self._clock = clock
        self._users: dict[str, tuple[float, UserEntry | None]] = {}
        self._acl: AclIndex | None = None
        self._acl_expires = 0.0
        self._acl_lock = asyncio.Lock()

    async def user(self, name: str) -> UserEntry | None:
        """The user from ``<prefix>users``; raise :class:`SourceUnavailableError` if Redis cannot be read."""
        now = self._clock()
        cached = self._users.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            raw = await self._redis.hget(self._users_key, name)
        except Exception as exc:  # any client or connection error: fail closed
            raise SourceUnavailableError(f"cannot read {self._users_key}: {exc}") from exc
        entry = self._parse_user(name, raw)
        if len(self._users) > 10_000:
            self._users.clear()
        self._users[name] = (now + self._ttl, entry)
        return entry

    def _parse_user(self, name: str, raw: Any) -> UserEntry | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not text:
            return UserEntry(password=None)
        try:
            check_hash(text)
        except InvalidHashError as exc:
            logger.error("auth: user %r in %s has an unusable password hash (%s); login refused", name, self._users_key, exc)
            return None
        return UserEntry(password=text)

    async def acl(self) -> AclIndex:
        """The rules from ``<prefix>acl``, read again when older than the TTL."""
        if self._acl_expires <= self._clock():
            async with self._acl_lock:
                # Another task may have reloaded while this one waited for the lock.
                if self._acl_expires <= self._clock():
                    await self._reload_acl()
        if self._acl is None:
            raise SourceUnavailableError(f"no ACL rules could be read from {self._acl_key}")
        return self._acl

    async def _reload_acl(self) -> None:
        try:
            raw_rules = await self._redis.lrange(self._acl_key, 0, -1)
            rules = [AclRule.model_validate(json.loads(raw)) for raw in raw_rules]
        except (ValidationError, ValueError) as exc:
            logger.error("auth: the rules in %s are invalid, keeping the previous ones: %s", self._acl_key, exc)
        except Exception as exc:
            logger.error("auth: cannot read %s, keeping the previous rules: %s", self._acl_key, exc)
        else:
            self._acl = AclIndex(rules, deny_overlapping_subscriptions=self._deny_overlapping)
        # Retry after one TTL even after a failure, so a Redis outage does not cost a round trip per check.
        self._acl_expires = self._clock() + self._ttl

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self._redis.aclose()


def open_source(settings: AuthSettings) -> Source:
    """The source ``settings.source`` names."""
    if settings.source == "redis":
        return RedisSource(settings)
    return FileSource(settings)
