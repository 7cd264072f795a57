"""The part of the Broker API (docs/architecture.md "Broker API") the dashboard uses.

Typed as a Protocol so the dashboard depends on the contract rather than on the engine's
class, and so handler tests can run against a small stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hookmq.mqtt.packets import Publish


class BrokerLike(Protocol):
    """What the dashboard reads from and asks of a running broker."""

    @property
    def listeners(self) -> Sequence[Any]:
        """The running listeners, with bound addresses."""
        ...

    def info(self) -> Mapping[str, Any]:
        """The `$SYS` figures."""
        ...

    def clients(self) -> Sequence[Any]:
        """Every client session the broker knows (ClientView objects)."""
        ...

    def client(self, client_id: str, subscriptions: bool = True) -> Any | None:
        """One client session (with its subscription list unless told not to), or None."""
        ...

    def client_ids(self) -> Sequence[str]:
        """Every session's client id."""
        ...

    def client_subscriptions(self, client_id: str) -> Sequence[Any] | None:
        """One session's subscriptions (SubscriberEntry objects), or None without a session."""
        ...

    async def disconnect_client(self, client_id: str, reason_code: int = 0x98) -> bool:
        """Disconnect a client; False when it was not connected."""
        ...

    def subscriptions(self) -> Sequence[Any]:
        """Every subscription (SubscriberEntry objects)."""
        ...

    def retained_topics(self) -> Sequence[str]:
        """Every topic holding a retained message."""
        ...

    def retained_message(self, topic: str) -> Publish | None:
        """The retained message of one topic, or None."""
        ...

    async def delete_retained(self, topic: str) -> bool:
        """Clear the retained message of a topic; False when there was none."""
        ...

    async def check_store(self, timeout: float = 1.0) -> str | None:
        """None when the store answers a read within ``timeout``, else why not."""
        ...

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> int:
        """Publish as the broker; returns how many subscribers it was routed to."""
        ...
