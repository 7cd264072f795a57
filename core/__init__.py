"""hookmq: an MQTT 3.1 / 3.1.1 / 5.0 broker built as a small asyncio core emitting pluggy hooks.

A plugin author needs one import to start::

    from hookmq import hookimpl

The names below are imported on first use, so that importing the sans-I/O protocol layer
(``hookmq.mqtt``) does not drag in pluggy, logging or the event loop. Besides ``hookimpl`` and
``RejectPublish``, they are the types the cluster surface of the Broker API and its hooks
hand out and take in (see docs/architecture.md, "Broker API"): ``Message``, ``RouteEntry``,
``InjectResult``, ``RetainedVersion`` and ``SessionState``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.message import Message
    from .engine.retained import RetainedVersion
    from .engine.router import InjectResult, RouteEntry
    from .hooks import RejectPublish
    from .hookspecs import hookimpl, hookspec
    from .store.records import SessionState

__all__ = [
    "InjectResult",
    "Message",
    "RejectPublish",
    "RetainedVersion",
    "RouteEntry",
    "SessionState",
    "__version__",
    "hookimpl",
    "hookspec",
]

__version__ = "0.1.0"

#: Public name → the module that defines it.
_LAZY = {
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "RejectPublish": "hooks",
    "Message": "engine.message",
    "RetainedVersion": "engine.retained",
    "InjectResult": "engine.router",
    "RouteEntry": "engine.router",
    "SessionState": "store.records",
}


def __getattr__(name: str) -> Any:
    """Import the public names when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hookmq' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
