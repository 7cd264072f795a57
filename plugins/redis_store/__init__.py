"""hookmq plugin ``redis_store``: the Redis backend ``redis``, shareable by a cluster.

Enable it with ``[storage] backend = "redis"`` and point ``[plugins.redis_store] url`` at the
server. Needs the ``redis`` extra (``pip install hookmq[redis]``). See docs/storage.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from hookmq.hookspecs import hookimpl
from hookmq.store.base import StoreFactory

from .keys import KeyLayout
from .settings import RedisStoreSettings

__all__ = ["KeyLayout", "RedisStoreSettings"]

#: Registering a backend costs nothing until ``[storage] backend`` selects it.
HOOKMQ_DEFAULT_ENABLED = True


@hookimpl
def plugin_settings_model() -> type[BaseModel]:
    """``[plugins.redis_store]`` is validated by :class:`RedisStoreSettings`."""
    return RedisStoreSettings


@hookimpl
def register_stores(register: Callable[[str, StoreFactory], None], settings: BaseModel | None) -> None:
    """Offer the ``redis`` backend (redis-py is imported only when it is built)."""
    options = settings if isinstance(settings, RedisStoreSettings) else RedisStoreSettings()

    def build(config: Any) -> Any:
        if getattr(getattr(config, "cluster", None), "mode", False):
            # In a cluster every session has one owner, fenced by an epoch (docs/cluster.md "Sessions").
            from .fenced import FencedRedisStore

            return FencedRedisStore(options, config.storage, config)
        from .store import RedisStore

        return RedisStore(options, config.storage)

    register("redis", build)
