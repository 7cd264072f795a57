"""hookmq.transport: asyncio listeners (TCP, TLS, WebSocket, WSS) that hand `Connection`s to the engine."""

from __future__ import annotations

from .base import Connection
from .config import DEFAULT_LISTENERS, ListenerConfig, parse_address
from .listeners import RunningListener, banner_lines, start_listeners

__all__ = [
    "DEFAULT_LISTENERS",
    "Connection",
    "ListenerConfig",
    "RunningListener",
    "banner_lines",
    "parse_address",
    "start_listeners",
]
