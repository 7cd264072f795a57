"""Cluster sessions: one owner per session fenced by epoch, takeover across nodes, adoption of a dead node's sessions.

Layers, each importing only those before it: `frames` (link bodies, sans-I/O), `owners` (the
adoption rule), `plugin` (the hooks, wired to membership, the links and the fenced store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..parts import BrokerParts

if TYPE_CHECKING:
    from .plugin import ClusterSessions

__all__ = ["fenced_store_for", "install_sessions", "sessions_of", "uninstall_sessions"]

_sessions: BrokerParts[ClusterSessions] = BrokerParts("sessions")


def sessions_of(broker: Any) -> ClusterSessions | None:
    """The cluster sessions of a broker, or None when it has none."""
    return _sessions.of(broker)


def fenced_store_for(broker: Any) -> Any:
    """The fenced Redis store the broker opened in cluster mode, or None (another backend)."""
    if getattr(getattr(getattr(broker, "config", None), "storage", None), "backend", None) != "redis":
        return None
    from hookmq.plugins.redis_store.fenced import fenced_store_of

    return fenced_store_of(broker.config)


async def install_sessions(broker: Any, cluster: Any, links: Any, name: str, store: Any = None,
                           **options: Any) -> ClusterSessions:
    """Start cluster sessions for ``broker`` and register its hooks with the broker's plugin manager."""
    from .plugin import ClusterSessions

    return await _sessions.install(broker, ClusterSessions(broker, cluster, links, name, store, **options), name)


async def uninstall_sessions(broker: Any) -> None:
    """Unregister and stop a broker's cluster sessions (the broker is stopping)."""
    await _sessions.uninstall(broker)
