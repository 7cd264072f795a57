"""hookmq plugin `dashboard`: a web dashboard, a JSON API and Prometheus metrics.

Enabled by default when its optional dependencies are installed (`pip install
hookmq[dashboard]`: aiohttp and prometheus-client); without them it logs why and stays off
instead of stopping the broker. Configured by `[plugins.dashboard]` (see settings.py and
docs/dashboard.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel

from hookmq import hookimpl

from .settings import DashboardSettings

if TYPE_CHECKING:
    from .server import Dashboard

__all__ = ["HOOKMQ_DEFAULT_ENABLED", "DashboardSettings", "dashboard_of"]

log = logging.getLogger("hookmq.plugins.dashboard")

REQUIRED_MODULES: tuple[str, ...] = ("aiohttp", "prometheus_client")
"""The optional dependencies (the `dashboard` extra)."""


def missing_dependencies() -> list[str]:
    """The optional modules that cannot be imported here."""
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


HOOKMQ_DEFAULT_ENABLED: bool = not missing_dependencies()
"""On by default, but only where the `dashboard` extra is installed."""

# One dashboard per broker: several brokers may share this module (tests, embedding).
_dashboards: WeakKeyDictionary[Any, Dashboard] = WeakKeyDictionary()


def dashboard_of(broker: Any) -> Dashboard | None:
    """The running dashboard of a broker (its `bound_address`, `url`, `token`), or None."""
    return _dashboards.get(broker)


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookmq cluster members`` and ``hookmq cluster status`` (they read a node's API)."""
    from .commands import add_cluster_commands

    add_cluster_commands(subparsers)


@hookimpl
def plugin_settings_model() -> type[BaseModel]:
    """`[plugins.dashboard]` is validated by DashboardSettings."""
    return DashboardSettings


@hookimpl
async def plugin_start(broker: Any, settings: BaseModel | None) -> None:
    """Bind the HTTP server and start sampling; a missing dependency only disables the dashboard."""
    missing = missing_dependencies()
    if missing:
        log.warning("dashboard disabled: %s not installed (pip install 'hookmq[dashboard]')", ", ".join(missing))
        return
    from .server import Dashboard

    dashboard = Dashboard(broker, settings if isinstance(settings, DashboardSettings) else DashboardSettings.model_validate({}))
    await dashboard.start()
    _dashboards[broker] = dashboard


@hookimpl
def plugin_status(broker: Any) -> str | None:
    """The banner's line: the URL on the address the server really bound."""
    dashboard = _dashboards.get(broker)
    if dashboard is None or dashboard.bound_address is None:
        return None
    host, port = dashboard.bound_address
    if host not in ("0.0.0.0", "::", ""):
        return f"{dashboard.url} (bound to {host})"
    # On every interface aiohttp binds one socket per family (with port 0, on two ports):
    # name the one a local browser reaches, IPv4 loopback when there is an IPv4 socket.
    runner = getattr(dashboard, "_runner", None)
    addresses = list(getattr(runner, "addresses", None) or [dashboard.bound_address])
    ipv4 = next((address for address in addresses if ":" not in str(address[0])), None)
    if ipv4 is not None:
        return f"http://127.0.0.1:{ipv4[1]}/ (all interfaces)"
    return f"http://[::1]:{port}/ (all interfaces)"


@hookimpl
def on_started(broker: Any) -> None:
    """The listeners accept clients: /readyz may turn ready; cluster events reach the live feed."""
    dashboard = _dashboards.get(broker)
    if dashboard is not None:
        dashboard.started()


@hookimpl
async def plugin_stop(broker: Any) -> None:
    """Close the HTTP server, the live feeds and the sampler."""
    dashboard = _dashboards.pop(broker, None)
    if dashboard is not None:
        await dashboard.stop()
