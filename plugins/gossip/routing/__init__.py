"""Cluster routing: a publish on any node reaches every matching subscriber on every node, once.

Each node owns the filters its sessions hold (`interest`) and tells every other node over the
data links: a streamed snapshot when a link comes up, then ordered deltas (`announce`). Each
node keeps the others' filters as routes in the broker's one trie (`remote`), so a message is
matched once and goes to a node only if that node has a matching filter, once however many of
its subscribers match (`forwarding`). Share groups are spread over members on every node
(`shares`), retained messages are versioned across nodes (`retained`), and `$SYS/cluster/…`
holds the cluster's figures. Bodies are msgpack, decoded by `frames` (sans-I/O).

Layers, each importing only those before it: `frames`, `interest`, `remote`, `links` (the
protocol of the data links), `announce`, `forwarding`, `shares`, `retained`, `plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..parts import BrokerParts

if TYPE_CHECKING:
    from .links import DataLinks
    from .plugin import ClusterRouting
    from .retained import VersionedStore

__all__ = ["install_routing", "routing_of", "uninstall_routing"]

_routings: BrokerParts[ClusterRouting] = BrokerParts("routing")


def routing_of(broker: Any) -> ClusterRouting | None:
    """The cluster routing of a broker, or None when it has none."""
    return _routings.of(broker)


async def install_routing(broker: Any, cluster: Any, links: DataLinks, name: str,
                          store: VersionedStore | None = None, **options: Any) -> ClusterRouting:
    """Start routing for ``broker`` over ``links`` and register its hooks with the broker's plugin manager."""
    from .plugin import ClusterRouting

    return await _routings.install(broker, ClusterRouting(broker, cluster, links, name, store, **options), name)


async def uninstall_routing(broker: Any) -> None:
    """Unregister and stop a broker's routing (the broker is stopping)."""
    await _routings.uninstall(broker)


def versioned_store_for(config: Any) -> VersionedStore | None:
    """The shared store's versioned retained key space when ``[storage] backend = "redis"``, else None."""
    if getattr(getattr(config, "storage", None), "backend", None) != "redis":
        return None
    from hookmq.plugins.redis_store.settings import RedisStoreSettings
    from hookmq.plugins.redis_store.versioned import VersionedRetained

    table = dict(getattr(config, "plugins", {}).get("redis_store", {}) or {})
    table.pop("enabled", None)
    return VersionedRetained(RedisStoreSettings.model_validate(table))
