"""Copy every piece of broker state from one store to another (``hookmq store migrate``).

Locations are written as ``sqlite:PATH``, a ``redis://`` / ``rediss://`` URL, or a
``redis-cluster://`` / ``rediss-cluster://`` URL naming one node of a Redis Cluster (the
tagged key layout; this is how a deployment moves from one Redis or Sentinel to a Cluster).
The memory store is not a valid location: it holds nothing outside a running broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, fields

from ..config import Config
from .base import Store
from .errors import StoreError
from .settings import StorageSettings

__all__ = ["MigrationError", "MigrationReport", "location_config", "migrate", "open_location", "store_for_location"]

#: A queue append during migration must never drop anything.
_NO_LIMIT = 2**62

# Write-behind on the destination lets the group committer pack the copy into few big
# batches; the final flush is the durability point.
_BULK_WRITES = StorageSettings(durability="async", write_batch_ms=0, write_batch_max=8192)


class MigrationError(StoreError):
    """The migration cannot start (bad location, non-empty destination, same store twice)."""


@dataclass(slots=True)
class MigrationReport:
    """How many items of each kind were copied."""

    sessions: int = 0
    subscriptions: int = 0
    outgoing: int = 0
    incoming: int = 0
    queued: int = 0
    retained: int = 0
    counters: int = 0

    def summary(self) -> str:
        """One line for humans, e.g. ``sessions=3 subscriptions=7 …``."""
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def location_config(location: str, prefix: str = "hookmq:", storage: StorageSettings | None = None) -> Config:
    """The configuration that selects the store a location string names.

    ``sqlite:PATH`` selects the ``sqlite`` backend of the ``sqlite_store`` plugin, a ``redis://``
    URL the ``redis`` backend of ``redis_store``; the store itself is then built by the plugin,
    through the same ``register_stores`` hook a running broker uses.
    """
    storage_table = (storage or StorageSettings()).model_dump()
    if location.startswith(("redis-cluster://", "rediss-cluster://")):
        storage_table["backend"] = "redis"
        url = location.replace("-cluster://", "://", 1)
        plugins = {"redis_store": {"url": url, "prefix": prefix, "cluster": True}}
    elif location.startswith(("redis://", "rediss://")):
        storage_table["backend"] = "redis"
        plugins = {"redis_store": {"url": location, "prefix": prefix}}
    elif location.startswith("sqlite:"):
        path = location.removeprefix("sqlite:").removeprefix("//")
        if not path:
            raise MigrationError("sqlite location needs a path: sqlite:PATH")
        storage_table["backend"] = "sqlite"
        plugins = {"sqlite_store": {"path": path}}
    elif location.split(":", 1)[0] == "memory":
        raise MigrationError("memory is not a valid location: it holds nothing outside a running broker")
    else:
        raise MigrationError(f"unknown store location {location!r}: use sqlite:PATH, redis://HOST:PORT/DB or redis-cluster://HOST:PORT")
    return Config.from_mapping({"storage": storage_table, "plugins": plugins}, source=f"location {location}")


async def store_for_location(location: str, prefix: str = "hookmq:", storage: StorageSettings | None = None) -> Store:
    """Build (not open) the store a location string names, through the store plugins."""
    from ..hooks import HookFacade
    from ..pluginmanager import build_plugin_manager

    config = location_config(location, prefix, storage)
    factories: dict[str, Callable[[Config], Store]] = {}
    await HookFacade(build_plugin_manager(config)).per_plugin(
        "register_stores", register=lambda name, factory: factories.__setitem__(name, factory))
    backend = config.storage.backend
    if backend not in factories:
        raise MigrationError(f"no enabled plugin provides the {backend!r} store")
    return factories[backend](config)


async def open_location(location: str, prefix: str = "hookmq:", *, bulk: bool = False) -> Store:
    """Build and open the store of ``location`` (write-behind batching when ``bulk``)."""
    store = await store_for_location(location, prefix, _BULK_WRITES if bulk else None)
    await store.open()
    return store


async def _is_empty(store: Store) -> bool:
    return not (await store.list_sessions() or await store.load_retained() or await store.load_all_subscriptions())


async def _client_ids(source: Store) -> list[str]:
    sessions = {record.client_id for record in await source.list_sessions()}
    return sorted(sessions | set(await source.load_all_subscriptions()))


async def _copy_client(source: Store, destination: Store, client_id: str, report: MigrationReport) -> None:
    session = await source.load_session(client_id)
    if session is not None:
        await destination.save_session(session)
        report.sessions += 1
    for subscription in await source.load_subscriptions(client_id):
        await destination.save_subscription(client_id, subscription)
        report.subscriptions += 1
    for record in await source.load_outgoing(client_id):
        await destination.save_outgoing(client_id, record)
        report.outgoing += 1
    for packet_id in await source.load_incoming(client_id):
        await destination.save_incoming(client_id, packet_id)
        report.incoming += 1
    queued = await source.queue_peek(client_id)
    # Tasks start in creation order, so the appends reach the destination in queue order.
    await asyncio.gather(*(destination.queue_append(client_id, m, _NO_LIMIT, "drop_newest") for m in queued))
    report.queued += len(queued)


async def migrate(
    source: Store,
    destination: Store,
    *,
    clear_destination: bool = False,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Copy all state of the open ``source`` into the open ``destination`` and flush it.

    The destination must be empty unless ``clear_destination`` is set (then it is cleared
    first). ``on_total`` receives the number of steps, ``on_progress`` each finished step.
    The source is only read.
    """
    if clear_destination:
        await destination.clear()
    elif not await _is_empty(destination):
        raise MigrationError("the destination already holds state; pass --clear-destination to replace it")
    report = MigrationReport()
    client_ids = await _client_ids(source)
    retained = await source.load_retained()
    if on_total is not None:
        on_total(len(client_ids) + len(retained) + 1)
    for client_id in client_ids:
        await _copy_client(source, destination, client_id, report)
        if on_progress is not None:
            on_progress(1)
    for message in retained:
        await destination.save_retained(message)
        report.retained += 1
        if on_progress is not None:
            on_progress(1)
    counters = await source.load_counters()
    if counters:
        await destination.save_counters(counters)
        report.counters = len(counters)
    if on_progress is not None:
        on_progress(1)
    await destination.flush()
    return report
