"""The startup banner: what is running, logged once the listeners accept clients.

One line per listener (name, type, a URL a local client can use, how it is bound), then the
store and where its data lives, whether clients must authenticate, the cluster mode, one line
per plugin that says what it is doing (the `plugin_status` hook: the dashboard's URL, ...),
which build runs (compiled with mypyc or pure Python, `hookmq.buildinfo`) and the enabled
plugins. Nothing in it is secret: URLs lose their passwords.

State owned: none. Who changes it: nobody; it reads a started broker (`StartedBroker`: what
the banner needs of one) once, when the broker has started.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import Config
    from ..hooks import HookFacade
    from ..transport.listeners import RunningListener
    from .persistence import Persistence


class StartedBroker(Protocol):
    """What the banner reads of a broker: `hookmq.engine.Broker` is one."""

    @property
    def hooks(self) -> HookFacade: ...
    @property
    def listeners(self) -> list[RunningListener]: ...
    @property
    def config(self) -> Config: ...
    @property
    def persistence(self) -> Persistence: ...
    @property
    def plugin_manager(self) -> Any: ...

log = logging.getLogger("hookmq.broker")

__all__ = ["banner", "log_banner"]


async def log_banner(broker: StartedBroker) -> None:
    """Log the banner of a broker that has just started."""
    for level, line in await banner(broker):
        log.log(level, "%s", line)


async def banner(broker: StartedBroker) -> list[tuple[int, str]]:
    """The banner as (log level, line) pairs."""
    from ..transport.listeners import banner_lines

    statuses = {
        name: " ".join(str(status).split())
        for name, status in (await broker.hooks.per_plugin("plugin_status", isolate=True, broker=broker)).items()
        if status
    }
    lines = [(logging.INFO, line) for line in banner_lines(broker.listeners)]
    lines.append((logging.INFO, f"store: {_store_line(broker)}"))
    lines.append(_auth_line(broker, statuses))
    lines.append((logging.INFO, f"cluster: {_cluster_line(broker)}"))
    authenticators = set(broker.hooks.implementations("on_connect_authenticate"))
    for name, status in sorted(statuses.items()):
        if name not in authenticators:
            lines.append((logging.INFO, f"{name}: {status}"))
    lines.append((logging.INFO, f"build: {build_line()}"))
    enabled = sorted(name for name, info in getattr(broker.plugin_manager, "infos", {}).items() if info.enabled)
    lines.append((logging.INFO, f"plugins: {', '.join(enabled) or 'none'}"))
    return lines


def build_line() -> str:
    """``hookmq 0.1.0, pure Python, CPython 3.11.7, uvloop``: which build runs, on which event loop."""
    import asyncio
    import platform

    from .. import __version__
    from ..buildinfo import build

    try:
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    except RuntimeError:
        loop = "no event loop"
    loop = "uvloop" if loop == "uvloop" else "asyncio's own loop" if loop == "asyncio" else loop
    return f"hookmq {__version__}, {build()}, {platform.python_implementation()} {platform.python_version()}, {loop}"


def _store_line(broker: StartedBroker) -> str:
    storage = broker.config.storage
    store = broker.persistence.store
    where = store.describe() if store is not None else storage.backend
    if storage.backend == "memory":
        return where
    return f"{where}, durability {storage.durability}"


def _auth_line(broker: StartedBroker, statuses: dict[str, str]) -> tuple[int, str]:
    plugins = broker.hooks.implementations("on_connect_authenticate")
    if not plugins:
        return logging.WARNING, "auth: anonymous clients allowed (no authentication plugin is enabled)"
    described = [f"{name}: {statuses[name]}" if name in statuses else name for name in plugins]
    return logging.INFO, f"auth: on ({'; '.join(described)})"


def _cluster_line(broker: StartedBroker) -> str:
    cluster = broker.config.cluster
    if not cluster.mode:
        return "off (single node)"
    members = ", ".join(cluster.members) or "none configured"
    if cluster.sibling_members:
        members += f"; sibling workers: {', '.join(cluster.sibling_members)}"
    infos = getattr(broker.plugin_manager, "infos", {})
    gossip = infos.get("gossip")
    if gossip is None or not gossip.enabled:
        return f"mode on, but the gossip plugin is not enabled: running as a single node (members: {members})"
    return f"mode on, gossip port {cluster.port}, members: {members}"
