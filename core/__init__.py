"""hookmq: an MQTT 3.1 / 3.1.1 / 5.0 broker built as a small asyncio core emitting pluggy hooks.

A plugin author needs one import to start::

    from hookmq import hookimpl

The names below are imported on first use, so that importing the sans-I/O protocol layer
(``hookmq.mqtt``) does not drag in pluggy, logging or the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hooks import RejectPublish
    from .hookspecs import hookimpl, hookspec

__all__ = ["RejectPublish", "__version__", "hookimpl", "hookspec"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import ``hookimpl``, ``hookspec`` and ``RejectPublish`` when first asked for."""
    if name in ("hookimpl", "hookspec"):
        from . import hookspecs

        return getattr(hookspecs, name)
    if name == "RejectPublish":
        from .hooks import RejectPublish

        return RejectPublish
    raise AttributeError(f"module 'hookmq' has no attribute {name!r}")
