"""Which sessions this broker holds, and which connection each connected one is attached to.

State owned: ``sessions`` (client id → `Session`, connected or not) and ``connected`` (client
id → the established `Client` attached to it). Who changes it: the session lifecycle alone
(attach, detach, takeover, end, expiry, moving a session in or out), and the broker once at
start when it installs the sessions loaded from the store. The router, the delivery path and
the Broker API only read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client
    from .session import Session


class SessionRegistry:
    """The broker's sessions and established connections, by client id."""

    __slots__ = ("connected", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        #: Established connections by client id.
        self.connected: dict[str, Client] = {}

    def offline_count(self) -> int:
        """Sessions kept while their client is away."""
        return sum(1 for session in self.sessions.values() if session.client is None)

    def inflight_count(self) -> int:
        """QoS 1/2 messages sent and not yet acknowledged, over every session."""
        return sum(len(session.inflight) for session in self.sessions.values())

    def queued_count(self) -> int:
        """Messages waiting in sessions' queues."""
        return sum(len(session.queue) for session in self.sessions.values())


__all__ = ["SessionRegistry"]
