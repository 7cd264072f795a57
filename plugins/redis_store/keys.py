"""The Redis key layout (documented in docs/storage.md "Redis key layout").

``P`` is the configured prefix (``hookmq:`` by default); ``<cid>`` is the client id verbatim.

=========================  ======  ==========================================================
key                        type    content
=========================  ======  ==========================================================
``P sessions``             hash    client id -> session record
``P subscribers``          set     client ids that have (or had) subscriptions
``P subs:<cid>``           hash    topic filter -> subscription record
``P out:<cid>``            hash    packet id -> outgoing inflight record
``P outorder:<cid>``       zset    packet id scored by first-save time (resend order)
``P in:<cid>``             set     incoming QoS 2 packet ids awaiting PUBREL
``P queue:<cid>``          list    offline queue, head = oldest
``P retained``             hash    topic -> retained message
``P sys``                  string  ``$SYS`` counters as a JSON object
=========================  ======  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeyLayout"]


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds every key the Redis store uses from one prefix."""

    prefix: str = "hookmq:"

    @property
    def sessions(self) -> str:
        """Hash of all sessions."""
        return f"{self.prefix}sessions"

    @property
    def subscribers(self) -> str:
        """Set of client ids with subscriptions."""
        return f"{self.prefix}subscribers"

    @property
    def retained(self) -> str:
        """Hash of retained messages."""
        return f"{self.prefix}retained"

    @property
    def sys(self) -> str:
        """The ``$SYS`` counters."""
        return f"{self.prefix}sys"

    def subs(self, client_id: str) -> str:
        """Hash of one client's subscriptions."""
        return f"{self.prefix}subs:{client_id}"

    def outgoing(self, client_id: str) -> str:
        """Hash of one client's outgoing inflight records."""
        return f"{self.prefix}out:{client_id}"

    def outgoing_order(self, client_id: str) -> str:
        """Sorted set giving the resend order of the outgoing records."""
        return f"{self.prefix}outorder:{client_id}"

    def incoming(self, client_id: str) -> str:
        """Set of incoming QoS 2 packet ids."""
        return f"{self.prefix}in:{client_id}"

    def queue(self, client_id: str) -> str:
        """List holding one client's offline queue."""
        return f"{self.prefix}queue:{client_id}"

    def client_keys(self, client_id: str) -> tuple[str, ...]:
        """Every per-client key except the session hash field."""
        return (
            self.subs(client_id),
            self.outgoing(client_id),
            self.outgoing_order(client_id),
            self.incoming(client_id),
            self.queue(client_id),
        )

    def match_all(self) -> str:
        """A SCAN pattern matching every key under the prefix (glob characters escaped)."""
        escaped = "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in self.prefix)
        return f"{escaped}*"
