"""The broker-wide budget of bytes held in partly received large packets.

A client announces a packet's size in its fixed header and may then send the body as slowly
as it likes; meanwhile the decoder holds what has arrived. One client is bounded by
`max_packet_size`, but a thousand slow uploads are not: this budget is shared by every
connection, and a client that starts a large packet the budget cannot hold is disconnected
(0x97 Quota exceeded) instead of being buffered.

State owned: the bytes reserved by every connection together and the count of refusals; each
connection's own reservation is kept in its `ProtocolState` (``partial_reserved``). Who changes
it: the connection handlers (and the CONNECT handshake) after each read, through `hold` and
`release`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mqtt.errors import ProtocolError
from ..mqtt.reason_codes import ReasonCode

if TYPE_CHECKING:
    from .protocol import ProtocolState

__all__ = ["LARGE_PACKET", "PartialPacketBudget"]

LARGE_PACKET = 64 * 1024
"""Packets from this size up count against the budget; smaller ones are bounded by the read
buffer of their connection (`DEFAULT_READ_HIGH_WATER`) and cost nothing to track."""


class PartialPacketBudget:
    """Reservations, per connection, of the announced size of the packet it is sending."""

    __slots__ = ("held", "limit", "refused")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: Bytes reserved now by every connection together.
        self.held = 0
        #: Large packets refused since start.
        self.refused = 0

    def resize(self, current: int, wanted: int) -> int | None:
        """Move one connection's reservation from ``current`` to ``wanted`` bytes.

        Returns the new reservation (0 below LARGE_PACKET), or None when the budget cannot
        hold it; the reservation then stays as it was.
        """
        if wanted < LARGE_PACKET:
            wanted = 0
        if wanted > current and self.held - current + wanted > self.limit:
            self.refused += 1
            return None
        self.held += wanted - current
        return wanted

    def hold(self, protocol: ProtocolState) -> None:
        """Follow a connection's decoder: reserve the size of the packet it is receiving, or refuse it (0x97).

        Callers check ``protocol.decoder.incomplete_packet_size != protocol.partial_reserved``
        first, so a read that changes nothing costs no call.
        """
        reserved = self.resize(protocol.partial_reserved, protocol.decoder.incomplete_packet_size)
        if reserved is None:
            raise ProtocolError(ReasonCode.QUOTA_EXCEEDED, "the broker holds too many partly received large packets")
        protocol.partial_reserved = reserved

    def release(self, protocol: ProtocolState) -> None:
        """The connection ended: give back what it held."""
        if protocol.partial_reserved:
            self.resize(protocol.partial_reserved, 0)
            protocol.partial_reserved = 0
