"""hookmq plugin `gossip`: cluster membership with HashiCorp memberlist's protocol (SWIM + Lifeguard).

Active when ``[cluster] mode = true`` (the Go broker's ``--mode=true``); otherwise it loads
but does nothing. Wire-compatible with memberlist 0.2–0.6 (protocol 2, understanding 1–5),
so hookmq and memberlist nodes can share a cluster. Needs the ``gossip`` extra (msgpack,
cryptography). Other plugins use :func:`cluster_of` (see :mod:`.api` and docs/cluster.md).

Layers, each importing only the ones before it: :mod:`.wire` (bytes, sans-I/O),
:mod:`.membership` (the state machine, sans-I/O, and its simulation), :mod:`.driver`
(asyncio sockets and timers), :mod:`.runner` (which loop), :mod:`.api`, :mod:`.link` (the
data links between nodes, :func:`links_of`), :mod:`.routing` (cluster routing over them), :mod:`.sessions` (sessions
across nodes) and this module.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from hookmq import hookimpl

if TYPE_CHECKING:
    from .api import Cluster
    from .control import ClusterControl
    from .figures import FigureBook
    from .link import Links
    from .plugin import ClusterPlugin

__all__ = ["HOOKMQ_DEFAULT_ENABLED", "cluster_of", "control_of", "figures_of", "links_of"]

HOOKMQ_DEFAULT_ENABLED = True
"""Always loaded; it acts only when ``[cluster] mode`` is true."""

REQUIRED_MODULES: tuple[str, ...] = ("msgpack", "cryptography")
"""The optional dependencies (the `gossip` extra)."""

_plugins: WeakKeyDictionary[Any, ClusterPlugin] = WeakKeyDictionary()


def missing_dependencies() -> list[str]:
    """The optional modules that cannot be imported here."""
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def cluster_of(broker: Any) -> Cluster | None:
    """The cluster API of a broker running in cluster mode, or None."""
    plugin = _plugins.get(broker)
    return plugin.cluster if plugin is not None else None


def links_of(broker: Any) -> Links | None:
    """The inter-node data links of a broker in cluster mode (see :mod:`.link`), or None."""
    plugin = _plugins.get(broker)
    return plugin.links if plugin is not None else None


def figures_of(broker: Any) -> FigureBook | None:
    """Every node's newest headline figures (clients, subscriptions, message rates; see
    :mod:`.figures`), as this node has them, or None outside cluster mode. Read-only."""
    plugin = _plugins.get(broker)
    return plugin.figures.book if plugin is not None and plugin.figures is not None else None


def control_of(broker: Any) -> ClusterControl | None:
    """Operator requests to other nodes (their clients, a disconnect there; see :mod:`.control`),
    or None outside cluster mode."""
    plugin = _plugins.get(broker)
    return plugin.control if plugin is not None else None


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookmq cluster keygen`` (needs none of the gossip extra's modules)."""
    from .commands import add_cluster_command

    add_cluster_command(subparsers)


@hookimpl
async def plugin_start(broker: Any, settings: object) -> None:
    """In cluster mode: bind the gossip port, join the configured members, log as the Go broker."""
    config = getattr(broker, "config", None)
    cluster_settings = getattr(config, "cluster", None)
    if cluster_settings is None or not cluster_settings.mode:
        return
    missing = missing_dependencies()
    if missing:
        raise RuntimeError(f"cluster mode needs {', '.join(missing)}: pip install 'hookmq[gossip]'")
    from .plugin import ClusterPlugin

    plugin = ClusterPlugin(broker, cluster_settings)
    await plugin.start()
    _plugins[broker] = plugin
    if plugin.links is not None:
        from .routing import install_routing, versioned_store_for

        # Registered now, before the broker restores stored sessions, so their filters count too.
        await install_routing(broker, plugin.cluster, plugin.links, plugin.cluster.name,
                              versioned_store_for(broker.config))
        from .sessions import fenced_store_for, install_sessions

        await install_sessions(broker, plugin.cluster, plugin.links, plugin.cluster.name, fenced_store_for(broker))
        from .control import ClusterControl
        from .figures import FigureExchange

        plugin.figures = FigureExchange(broker, plugin.links, plugin.cluster)
        plugin.figures.start()
        if plugin.unix_path is not None:  # a worker of `hookmq --workers`: the host's figures too
            from .hostfigures import HostFigures

            plugin.host_figures = HostFigures(broker, plugin.cluster, plugin.figures.book, plugin.unix_path,
                                              float(broker.config.mqtt.sys_interval))
            plugin.host_figures.start()
        plugin.control = ClusterControl(broker, plugin.links)


@hookimpl
def plugin_status(broker: Any, settings: object) -> str | None:
    """The banner line: our name, where we gossip, and whether it is encrypted."""
    plugin = _plugins.get(broker)
    return plugin.status() if plugin is not None else None


@hookimpl
async def on_started(broker: Any) -> None:
    """The MQTT listeners are bound: gossip their real ports (port 0 picks one at start)."""
    plugin = _plugins.get(broker)
    if plugin is not None:
        await plugin.listeners_bound()


@hookimpl
async def plugin_stop(broker: Any) -> None:
    """Leave the cluster gracefully, then close the gossip port."""
    plugin = _plugins.pop(broker, None)
    if plugin is not None:
        from .routing import uninstall_routing
        from .sessions import uninstall_sessions

        await uninstall_sessions(broker)
        if plugin.host_figures is not None:
            await plugin.host_figures.stop()
        if plugin.figures is not None:
            await plugin.figures.stop()
        if plugin.control is not None:
            await plugin.control.close()
        await uninstall_routing(broker)
        await plugin.stop()
