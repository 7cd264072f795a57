"""What a node knows about each member: the mutable record, and the frozen view handed out."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from ..wire import PushNodeState

__all__ = ["Member", "NodeRecord", "NodeState", "format_ip"]


class NodeState(IntEnum):
    """A member's state, with memberlist's numbers (push/pull carries them)."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


def format_ip(raw: bytes) -> str:
    """An ``Addr`` field (4 or 16 bytes; IPv4-mapped IPv6 shown as IPv4) as text."""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        address = ipaddress.IPv6Address(raw)
        return str(address.ipv4_mapped or address)
    return raw.hex() or "?"


@dataclass(frozen=True, slots=True)
class Member:
    """One member as this node sees it (a snapshot: later changes arrive as events)."""

    name: str
    address: str
    port: int
    meta: bytes
    state: NodeState
    incarnation: int
    #: Protocol versions [min, max, current] the member understands and speaks.
    protocol: tuple[int, int, int]

    @property
    def endpoint(self) -> tuple[str, int]:
        """``(address, port)`` of its gossip (UDP and TCP)."""
        return (self.address, self.port)


@dataclass(slots=True)
class NodeRecord:
    """The state machine's mutable record of one node (memberlist's ``nodeState``)."""

    name: str
    addr: bytes
    port: int
    meta: bytes
    incarnation: int
    state: NodeState
    state_change: float
    vsn: bytes

    @property
    def pmax(self) -> int:
        """The highest protocol version the node understands (0 when unknown)."""
        return self.vsn[1] if len(self.vsn) >= 2 else 0

    @property
    def endpoint(self) -> tuple[str, int]:
        """``(ip text, port)``: where its packets and streams go."""
        return (format_ip(self.addr), self.port)

    def dead_or_left(self) -> bool:
        """True for dead and left nodes (not probed, not counted as members)."""
        return self.state >= NodeState.DEAD

    def snapshot(self) -> Member:
        """The frozen public view."""
        protocol = (self.vsn[0], self.vsn[1], self.vsn[2]) if len(self.vsn) >= 3 else (0, 0, 0)
        return Member(self.name, format_ip(self.addr), self.port, self.meta, self.state, self.incarnation, protocol)

    def push_state(self) -> PushNodeState:
        """This record as a push/pull node state."""
        return PushNodeState(self.name, self.addr, self.port, self.meta, self.incarnation, int(self.state), self.vsn)
