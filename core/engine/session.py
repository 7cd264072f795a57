"""Per-client-id session state: what outlives a network connection.

A `Session` holds a client id's subscriptions, the outgoing inflight window with its packet
identifiers, the QoS 2 packet ids received and not yet released, the queue of messages waiting
for a free slot or for the client to come back, the will, the expiry, and which connection (if
any) is attached. It knows nothing of sockets or clocks.

State owned: the fields below; the session is a plain record, and each part changes its own
fields of it. Who changes it: ``subscriptions`` the router; ``inflight``, ``queue`` and
``next_packet_id`` the delivery part (and the connection handler when an acknowledgement
completes a message); ``incoming_qos2`` the connection handler; the will, the expiry, the
protocol level, the user and the attached ``client`` the session lifecycle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..mqtt.packets import Will
from ..mqtt.trie import SubscriberEntry
from .message import Message
from .noqueue import NO_QUEUE

if TYPE_CHECKING:
    from .client import Client

#: Outgoing QoS 1/2 states: waiting for PUBACK/PUBREC, or for PUBCOMP after our PUBREL.
AWAIT_ACK = 0
AWAIT_PUBCOMP = 1

#: A shared subscription, identified by (group, filter).
ShareKey = tuple[str, str]


@dataclass(slots=True)
class Outgoing:
    """One QoS 1/2 message sent (or to be sent) to the client and not yet completed."""

    packet_id: int
    message: Message
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...] = ()
    share: ShareKey | None = None
    state: int = AWAIT_ACK
    sends: int = 0
    #: Held back after a reconnect because the client's Receive Maximum was full.
    awaiting_resend: bool = False

    def __init__(self, packet_id: int, message: Message, qos: int, retain: bool,
                 subscription_ids: tuple[int, ...] = (), share: ShareKey | None = None, state: int = AWAIT_ACK,
                 sends: int = 0, awaiting_resend: bool = False) -> None:
        # Written out (dataclass keeps a class's own __init__) so that mypyc compiles it: the one
        # dataclass generates stays interpreted, and every QoS 1/2 delivery makes an Outgoing.
        self.packet_id = packet_id
        self.message = message
        self.qos = qos
        self.retain = retain
        self.subscription_ids = subscription_ids
        self.share = share
        self.state = state
        self.sends = sends
        self.awaiting_resend = awaiting_resend


@dataclass(slots=True)
class Queued:
    """A message waiting for an inflight slot or for the client to reconnect."""

    message: Message
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...] = ()
    share: ShareKey | None = None

    def __init__(self, message: Message, qos: int, retain: bool, subscription_ids: tuple[int, ...] = (),
                 share: ShareKey | None = None) -> None:
        self.message = message  # written out for mypyc, as Outgoing's
        self.qos = qos
        self.retain = retain
        self.subscription_ids = subscription_ids
        self.share = share


#: How many identities of completed messages from other nodes a session keeps (`Session.note_completed`).
COMPLETED_IDENTITIES = 1024

#: Shared by every session with no QoS 2 message held.
NO_PACKET_IDS: AbstractSet[int] = frozenset()


@dataclass(slots=True)
class Session:
    """The state the broker keeps for one client identifier."""

    client_id: str
    protocol_level: int = 4
    username: str | None = None
    #: Seconds the session outlives its connection; 0xFFFFFFFF = never expires.
    expiry_interval: int = 0
    #: Wall-clock time the last connection ended, None while connected.
    disconnected_at: float | None = None
    will: Will | None = None
    will_delay: int = 0
    #: Wall-clock time at which a delayed will is due, if one is pending.
    will_due_at: float | None = None
    subscriptions: dict[str, SubscriberEntry] = field(default_factory=dict)
    inflight: dict[int, Outgoing] = field(default_factory=dict)
    #: QoS 2 packet ids received from the client and not yet released by PUBREL (`hold_qos2`, `release_qos2`).
    incoming_qos2: AbstractSet[int] = NO_PACKET_IDS
    #: Messages waiting for a slot or for the client; `NO_QUEUE` until the first (`enqueue`, `restore_queued`).
    queue: deque[Queued] = NO_QUEUE
    next_packet_id: int = 1
    #: The connection currently attached to the session, if any.
    client: Client | None = None
    #: Identities of the last `COMPLETED_IDENTITIES` messages from other nodes this session completed
    #: (None until the first): a redelivery after a node's crash may come after the first copy completed.
    completed: deque[bytes] | None = None
    #: QoS 2 packet ids the client published on a node that died before storing them as received,
    #: with the identity that node gave the message (read from the store): a resend goes out again
    #: under that identity, as a redelivery (None: none).
    resend_identities: dict[int, bytes] | None = None

    @property
    def persistent(self) -> bool:
        """Whether the session survives its connection."""
        return self.expiry_interval > 0

    def allocate_packet_id(self) -> int:
        """A packet identifier not in use by the outgoing inflight window."""
        inflight = self.inflight
        candidate = self.next_packet_id
        for _ in range(65_535):
            if candidate not in inflight:
                self.next_packet_id = candidate % 65_535 + 1
                return candidate
            candidate = candidate % 65_535 + 1
        raise RuntimeError("no free packet identifier: the inflight window is full")

    def expires_at(self) -> float | None:
        """Wall-clock time at which a disconnected session expires, or None."""
        if self.disconnected_at is None or self.expiry_interval >= 0xFFFFFFFF:
            return None
        return self.disconnected_at + self.expiry_interval

    def hold_qos2(self, packet_ids: Iterable[int]) -> None:
        """Remember QoS 2 packet ids received and not yet released."""
        held = self.incoming_qos2
        if not isinstance(held, set):
            held = self.incoming_qos2 = set(held)
        held.update(packet_ids)

    def release_qos2(self, packet_id: int) -> None:
        """PUBREL (or a failed store) released a QoS 2 packet id."""
        held = self.incoming_qos2
        if isinstance(held, set):
            held.discard(packet_id)

    def holds(self, identity: bytes) -> bool:
        """Whether a message with this cluster-wide identity is inflight, queued or recently completed here.

        A scan: for redeliveries only (`Router.inject`), never on the message path.
        """
        return (any(out.message.identity == identity for out in self.inflight.values())
                or any(item.message.identity == identity for item in self.queue)
                or (self.completed is not None and identity in self.completed))

    def note_completed(self, identity: bytes) -> None:
        """A message with this identity completed (the last `COMPLETED_IDENTITIES` are kept)."""
        if self.completed is None:
            self.completed = deque(maxlen=COMPLETED_IDENTITIES)
        self.completed.append(identity)

    def restore_queued(self, items: Iterable[Queued]) -> None:
        """Put messages read back from a store at the end of the queue (no bound: the store kept it)."""
        if self.queue is NO_QUEUE:
            self.queue = deque()
        self.queue.extend(items)

    def enqueue(self, item: Queued, limit: int, drop_oldest: bool) -> Queued | None:
        """Queue a message within ``limit``; returns the message dropped to make room, if any."""
        queue = self.queue
        if queue is NO_QUEUE and limit:
            queue = self.queue = deque()
        if len(queue) < limit:
            queue.append(item)
            return None
        if limit == 0:
            return item
        if drop_oldest:
            dropped = queue.popleft()
            queue.append(item)
            return dropped
        return item
