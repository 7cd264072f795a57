"""Gossip membership, sans-I/O: memberlist's SWIM + Lifeguard state machine and its parts.

:class:`Membership` is the state machine; :mod:`.simulation` runs many of them on a fake
network with a fake clock; :mod:`.config` holds the ``lan``/``wan``/``local`` presets.
"""

from __future__ import annotations

from .config import PROFILES, MembershipConfig, profile
from .machine import META_MAX_SIZE, Membership
from .nodes import Member, NodeState
from .outputs import (
    Address,
    EventKind,
    LeaveDone,
    MemberEvent,
    Notice,
    OpenStream,
    Output,
    RemoteState,
    SendPacket,
    StreamPurpose,
    StreamResult,
    UserMessage,
)

__all__ = [
    "META_MAX_SIZE",
    "PROFILES",
    "Address",
    "EventKind",
    "LeaveDone",
    "Member",
    "MemberEvent",
    "Membership",
    "MembershipConfig",
    "NodeState",
    "Notice",
    "OpenStream",
    "Output",
    "RemoteState",
    "SendPacket",
    "StreamPurpose",
    "StreamResult",
    "UserMessage",
    "profile",
]
