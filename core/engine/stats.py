"""Broker-wide counters, incremented on the hot path as plain integer attributes.

State owned: the counters. Who changes it: each part increments the counters of what it does
(bytes and packets by the connections, messages by the router and the delivery path, clients
by the session lifecycle); persistence restores them at start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Stats:
    """The figures behind `$SYS`, the dashboard and the metrics endpoint."""

    started: float = 0.0
    bytes_received: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    packets_sent: int = 0
    messages_received: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    clients_total: int = 0
    clients_maximum: int = 0
    retained_dropped: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """The counters as a plain dictionary."""
        return asdict(self)
