"""What the state machine asks its driver to do, and what it reports: plain frozen values."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from .nodes import Member

__all__ = [
    "Address",
    "EventKind",
    "LeaveDone",
    "MemberEvent",
    "Notice",
    "OpenStream",
    "Output",
    "RemoteState",
    "SendPacket",
    "StreamPurpose",
    "StreamResult",
    "UserMessage",
]

Address = tuple[str, int]
"""``(ip text, port)``."""


class EventKind(Enum):
    """Membership changes, as a cluster plugin listens for them."""

    JOIN = "join"
    UPDATE = "update"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"


class StreamPurpose(Enum):
    """Why a stream was opened (its result is reported with it)."""

    JOIN = "join"
    REJOIN = "rejoin"
    PUSH_PULL = "push_pull"
    FALLBACK_PING = "fallback_ping"
    USER = "user"


@dataclass(frozen=True, slots=True)
class SendPacket:
    """Send ``data`` as one UDP datagram to ``to``."""

    to: Address
    data: bytes


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Connect over TCP to ``to``, write ``data``; if ``expect_reply``, read one stream message
    back (feed it to a :class:`~hookmq.plugins.gossip.wire.StreamDecoder` with ``labelled=False``)
    and report it with :meth:`Membership.stream_done` before ``deadline``."""

    token: int
    to: Address
    data: bytes
    expect_reply: bool
    deadline: float
    purpose: StreamPurpose


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """A member joined, changed its metadata, became suspect, failed or left."""

    kind: EventKind
    member: Member


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A user message arrived (``reliable``: over TCP; else in a UDP packet)."""

    payload: bytes
    reliable: bool


@dataclass(frozen=True, slots=True)
class RemoteState:
    """A peer's user state from a push/pull (``join``: it was part of a join)."""

    payload: bytes
    join: bool


@dataclass(frozen=True, slots=True)
class StreamResult:
    """How a join, re-join, push/pull or reliable send ended (``error`` empty on success)."""

    token: int
    purpose: StreamPurpose
    to: Address
    error: str


@dataclass(frozen=True, slots=True)
class LeaveDone:
    """Our leave was gossiped enough times (or nobody was left to tell)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth a log line; ``key`` groups similar ones for rate limiting."""

    level: int
    key: str
    message: str

    @classmethod
    def debug(cls, key: str, message: str) -> Notice:
        """A debug-level notice."""
        return cls(logging.DEBUG, key, message)


Output = SendPacket | OpenStream | MemberEvent | UserMessage | RemoteState | StreamResult | LeaveDone | Notice
"""Everything :meth:`Membership.take_outputs` may return."""
