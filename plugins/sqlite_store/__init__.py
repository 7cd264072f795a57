"""hookmq plugin ``sqlite_store``: the embedded persistent backend ``sqlite``.

Enable it with ``[storage] backend = "sqlite"``; the file is set by
``[plugins.sqlite_store] path = "hookmq.sqlite3"``. See docs/storage.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from hookmq.hookspecs import hookimpl
from hookmq.store.base import StoreFactory

from .settings import SqliteStoreSettings
from .store import SqliteStore

__all__ = ["SqliteStore", "SqliteStoreSettings"]

#: Registering a backend costs nothing until ``[storage] backend`` selects it.
HOOKMQ_DEFAULT_ENABLED = True


@hookimpl
def plugin_settings_model() -> type[BaseModel]:
    """``[plugins.sqlite_store]`` is validated by :class:`SqliteStoreSettings`."""
    return SqliteStoreSettings


@hookimpl
def register_stores(register: Callable[[str, StoreFactory], None], settings: BaseModel | None) -> None:
    """Offer the ``sqlite`` backend."""
    options = settings if isinstance(settings, SqliteStoreSettings) else SqliteStoreSettings()

    def build(config: Any) -> SqliteStore:
        return SqliteStore(
            options.path,
            config.storage,
            synchronous=options.synchronous,
            busy_timeout_ms=options.busy_timeout_ms,
        )

    register(SqliteStore.name, build)
