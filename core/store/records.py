"""The records a store persists: plain frozen dataclasses, independent of any backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..mqtt.packets import NO_PROPERTIES, Properties, Publish, SubscriptionOptions, Will

__all__ = [
    "NEVER_EXPIRES",
    "OutgoingRecord",
    "OutgoingState",
    "SessionRecord",
    "SessionState",
    "StoredMessage",
    "SubscriptionRecord",
]

#: Session Expiry Interval meaning "the session does not expire" (MQTT 5, 3.1.2.11.2).
NEVER_EXPIRES = 0xFFFF_FFFF

#: Where a message sent to a client stands: waiting for PUBACK/PUBREC, or for PUBCOMP.
OutgoingState = Literal["publish", "pubrel"]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An application message with the times the broker needs to expire it.

    ``publish`` is stored as given: for a queued or inflight message it is the form meant for
    that subscriber (granted QoS, retain flag, subscription identifiers already applied).
    """

    publish: Publish
    #: Wall-clock time (``time.time()``) the broker received the message.
    received_at: float
    #: Wall-clock time after which the message must not be delivered; ``None`` = never.
    expiry_at: float | None = None
    #: The cluster-wide identity of a message that came from another node (``None``: none given),
    #: kept with the session's copy so that a redelivery after a node's crash is recognised.
    identity: bytes | None = None

    def is_expired(self, now: float) -> bool:
        """Whether the message's expiry time has passed at wall-clock ``now``."""
        return self.expiry_at is not None and now >= self.expiry_at

    def remaining_expiry(self, now: float) -> int | None:
        """Seconds left, rounded up, for the Message Expiry Interval sent onwards; ``None`` = no expiry."""
        if self.expiry_at is None:
            return None
        return max(0, int(-(-(self.expiry_at - now) // 1)))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the broker must remember about a client between connections."""

    client_id: str
    protocol_level: int = 4
    clean_start: bool = True
    #: Session Expiry Interval in seconds; 0 ends the session at disconnect, NEVER_EXPIRES keeps it.
    expiry_interval: int = 0
    #: Wall-clock time of the disconnect; ``None`` while the client is connected.
    disconnected_at: float | None = None
    will: Will | None = None
    #: Will Delay Interval in seconds (MQTT 5); the will is published this long after the disconnect.
    will_delay: int = 0
    username: str | None = None
    keep_alive: int = 0
    #: The CONNECT properties as received (receive maximum, maximum packet size, user properties, …).
    properties: Properties = NO_PROPERTIES
    #: Name of the broker process holding the connection (a cluster uses it for takeover); ``None`` = unknown.
    node: str | None = None

    @property
    def connected(self) -> bool:
        """True while the client is connected somewhere."""
        return self.disconnected_at is None

    def expires_at(self) -> float | None:
        """Wall-clock time the session ends; ``None`` while connected or when it never expires."""
        if self.disconnected_at is None or self.expiry_interval == NEVER_EXPIRES:
            return None
        return self.disconnected_at + self.expiry_interval

    def is_expired(self, now: float) -> bool:
        """Whether the session has ended by ``now``."""
        ends = self.expires_at()
        return ends is not None and now >= ends

    def will_due_at(self) -> float | None:
        """Wall-clock time a pending will must be published (the earlier of will delay and session end)."""
        if self.will is None or self.disconnected_at is None:
            return None
        due = self.disconnected_at + self.will_delay
        ends = self.expires_at()
        return due if ends is None else min(due, ends)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """One subscription of a client, as the client sent it (``$share/…`` included)."""

    topic_filter: str
    options: SubscriptionOptions = field(default_factory=SubscriptionOptions)
    #: Subscription Identifier (MQTT 5); ``None`` when the SUBSCRIBE carried none.
    identifier: int | None = None


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A QoS 1/2 message sent (or about to be sent) to a client and not yet fully acknowledged."""

    packet_id: int
    message: StoredMessage
    state: OutgoingState = "publish"
    #: How many times the PUBLISH went on the wire; above 0, a resend carries DUP.
    sent_count: int = 0


@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything a store records of one session, in one value: what moves when a session moves.

    ``Broker.export_session`` hands it out and ``Broker.import_session`` takes it in, so that a
    session can change brokers (a cluster's takeover) with exactly the state a store would have
    kept: the session's own record (expiry, will, will delay, user, protocol level, when it
    disconnected), its subscriptions, the QoS 1/2 messages sent to the client and not yet
    completed (with their packet ids and state), the QoS 2 packet ids received from the client
    and not yet released, and the queue of messages waiting for it, oldest first.
    """

    session: SessionRecord
    subscriptions: tuple[SubscriptionRecord, ...] = ()
    outgoing: tuple[OutgoingRecord, ...] = ()
    incoming: tuple[int, ...] = ()
    queue: tuple[StoredMessage, ...] = ()
