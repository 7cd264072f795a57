"""hookmq: an MQTT 3.1 / 3.1.1 / 5.0 broker built as a small asyncio core emitting pluggy hooks.

A plugin author needs one import to start::

    from hookmq import hookimpl
"""

from __future__ import annotations

from .hooks import RejectPublish
from .hookspecs import hookimpl, hookspec

__all__ = ["RejectPublish", "__version__", "hookimpl", "hookspec"]

__version__ = "0.1.0"
