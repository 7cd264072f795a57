"""The engine's parts as a connection works with them: built once by the broker, shared by its connections.

State owned: none; it only holds references to the parts (each owns its own state, see their
modules) and to the broker's sets of live connections and connection tasks. Who changes it:
nobody, once the broker has built it (a connection adds itself to those sets and leaves them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from ..hooks import HookFacade
    from .client import Client
    from .connlog import ConnectionLog
    from .deadlines import ConnectDeadlines
    from .deferred import Deferred
    from .delivery import Delivery
    from .lifecycle import SessionLifecycle
    from .partial import PartialPacketBudget
    from .persistence import Persistence
    from .router import Router
    from .settings import MqttSettings
    from .stats import Stats


@dataclass(frozen=True, slots=True)
class Parts:
    """What a connection needs of the engine."""

    settings: MqttSettings
    stats: Stats
    hooks: HookFacade
    deferred: Deferred
    persistence: Persistence
    delivery: Delivery
    router: Router
    sessions: SessionLifecycle
    #: Bytes held in partly received large packets, for every connection together.
    partial_packets: PartialPacketBudget
    #: The per-connection log lines (connects, ends with their cause), rate-limited.
    connection_log: ConnectionLog
    #: The broker, as plugins reach it from a client (``client.broker``).
    broker: object
    #: Every live connection, established or not (the broker's, for shutdown); a connection leaves it when it ends.
    connections: set[Client]
    #: The tasks connections started after their first one (catching up, ending), kept until done; cancelled at stop.
    tasks: set[asyncio.Task[None]]
    #: The connect timeout of every connection that has not sent CONNECT yet.
    connect_deadlines: ConnectDeadlines


__all__ = ["Parts"]
