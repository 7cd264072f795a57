"""Everything between this node and one peer, sans-I/O: the ordered stream over successive connections.

:class:`PeerLink` owns the :class:`~.sequencing.Outbox` and :class:`~.sequencing.Inbox` that
outlive connections, the current :class:`~.connection.LinkConnection` (or none), the send
buffer's bound, keep-alive and round-trip time, and the per-peer counters. Time comes in as
``now`` arguments (and, for the round trip only, from an injected ``rtt_clock``); bytes go out
through :meth:`take_output`.

The send buffer: bytes framed but not yet written by the transport plus bytes the transport
still holds (reported with :meth:`set_transport_buffered`) stay under ``send_buffer``. A
reliable frame that finds no room waits, as its body, in the outbox; an unreliable frame that
finds no room (or finds reliable frames waiting, which it must not overtake) is dropped and
counted.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from .connection import LinkConnection
from .errors import LinkError
from .frames import (
    ACK,
    FIRST_USER_KIND,
    LAST_USER_KIND,
    NACK,
    PING,
    PONG,
    Control,
    Data,
    encode_control,
    encode_data,
)
from .handshake import Established
from .sequencing import Inbox, Outbox, Pending

__all__ = ["LinkLimits", "PeerLink", "Received"]


@dataclass(frozen=True, slots=True)
class LinkLimits:
    """The bounds and timings of a link (docs/cluster.md "Links" gives the defaults' reasons)."""

    #: Largest frame content this node accepts (a body plus at most 10 bytes of header).
    max_frame: int = 1_048_576 + 65_536
    #: Framed bytes waiting for the socket, beyond which nothing more is framed.
    send_buffer: int = 4 * 1_048_576
    #: Reliable body bytes held for one peer (written and unacknowledged, or waiting).
    reliable_bytes: int = 64 * 1_048_576
    #: Reliable frames held for one peer.
    reliable_frames: int = 65_536
    #: Received reliable frames whose handlers have not finished, beyond which reading pauses.
    receive_window: int = 4096
    #: Seconds between keep-alive pings.
    ping_interval: float = 2.0
    #: Seconds without any frame from the peer after which the connection is closed.
    idle_timeout: float = 15.0
    #: Seconds a handshake may take.
    handshake_timeout: float = 5.0
    #: Seconds of silence on the link after which a peer membership declared dead is dropped
    #: (until then it is held: :mod:`.hold`); 0 drops it at once. Longer than the ping
    #: interval, shorter than membership's quickest verdict on a silent node (about 4 s, `local`).
    failure_hold: float = 3.0


@dataclass(slots=True)
class Received:
    """What one chunk of received bytes produced."""

    established: Established | None = None
    #: Data frames for the handler, in order (duplicates already dropped).
    frames: list[Data] = field(default_factory=list)
    #: Our reliable frames the peer acknowledged, and those whose handler failed there.
    acked: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class PeerLink:
    """Our side of the ordered stream to ``peer``; see the module docstring."""

    def __init__(self, peer: str, limits: LinkLimits, stream: bytes | None = None,
                 rtt_clock: Callable[[], float] | None = None) -> None:
        self.peer = peer
        #: Times a ping and its answer (None: the ``now`` given). The event loop's clock, which
        #: drives the rest, may have a millisecond's resolution (uvloop): a LAN round trip read 0.
        self._rtt_clock = rtt_clock
        self.limits = limits
        #: The id of our numbering towards the peer (the handshake sends it; random unless given).
        self.stream = stream if stream is not None else os.urandom(8)
        self.outbox = Outbox(limits.reliable_bytes, limits.reliable_frames)
        self.inbox = Inbox()
        self.connection: LinkConnection | None = None
        self.peer_boot = b""
        self.peer_max_frame = limits.max_frame
        #: The largest body one frame to the peer carries (a reliable frame's header is 10 bytes).
        self.max_body = limits.max_frame - 10
        self.transport_buffered = 0
        self.stats: Counter[str] = Counter()
        self.rtt: float | None = None
        self._last_received = 0.0
        self._next_ping = 0.0
        #: When anything last arrived from the peer, over any connection (None: never).
        self.last_heard: float | None = None

    # ------------------------------------------------------------------ connections

    @property
    def up(self) -> bool:
        """A connection is established."""
        return self.connection is not None and self.connection.established is not None

    def attach(self, connection: LinkConnection, now: float) -> None:
        """Use ``connection`` (handshake not yet done) from now on."""
        if self.connection is not None:
            self.detach()
        self.connection = connection
        self.transport_buffered = 0
        self._last_received = now
        self._next_ping = now + self.limits.ping_interval

    def detach(self) -> None:
        """The connection is gone: everything unacknowledged is sent again on the next one."""
        if self.up:
            self.stats["disconnects"] += 1
        self.connection = None
        self.transport_buffered = 0
        self.outbox.rewind()

    def set_transport_buffered(self, size: int) -> None:
        """The transport's own write buffer now holds ``size`` bytes."""
        self.transport_buffered = size

    def room(self) -> int:
        """Bytes that may still be framed before the send buffer is full."""
        connection = self.connection
        pending = connection.out_bytes if connection is not None else 0
        return self.limits.send_buffer - self.transport_buffered - pending

    # ------------------------------------------------------------------ sending

    def check_size(self, body: bytes) -> None:
        """:raises ValueError: the body does not fit one frame of the peer."""
        limit = self.max_body
        if len(body) > limit:
            raise ValueError(f"a link frame body is at most {limit} bytes, not {len(body)}")

    def send_reliable(self, kind: int, body: bytes) -> int:
        """Take a reliable frame (written now if there is room); its sequence number.

        :raises Overloaded: the outbox is at its bound.
        """
        self.check_size(body)
        seq = self.outbox.add(kind, body)
        if self.up and self.outbox.unwritten == 1:
            self._write_waiting()
        return seq

    def send_unreliable(self, kind: int, body: bytes) -> bool:
        """Frame an unreliable frame now, or drop it (no link, no room, reliable frames waiting)."""
        if len(body) > self.max_body or not FIRST_USER_KIND <= kind <= LAST_USER_KIND:
            self.check_size(body)
            encode_data(kind, None, body)  # raises ValueError for the kind
        connection = self.connection
        stats = self.stats
        if (connection is None or connection.established is None or self.outbox.unwritten
                or self.limits.send_buffer - self.transport_buffered - connection.out_bytes <= 0):
            stats["unreliable_dropped"] += 1
            return False
        connection.write(bytes((kind, 0)) + body)  # encode_data's unreliable form, inlined (per message)
        stats["frames_sent"] += 1
        return True

    def _write_waiting(self) -> None:
        """Frame waiting reliable frames while the send buffer has room."""
        connection = self.connection
        assert connection is not None
        while self.outbox.unwritten and (room := self.room()) > 0:
            for frame in self.outbox.take(room):
                connection.write(encode_data(frame.kind, frame.seq, frame.body))
                self.stats["frames_sent"] += 1
                self.stats["reliable_sent"] += 1

    def take_output(self) -> list[bytes]:
        """Acks due, waiting reliable frames that now fit, and everything framed: the bytes to write."""
        connection = self.connection
        if connection is None:
            return []
        if connection.established is not None:
            inbox = self.inbox
            for seq in inbox.failures:
                connection.write(encode_control(NACK, seq))
            inbox.failures.clear()
            upto = inbox.ack_due()
            if upto is not None:
                connection.write(encode_control(ACK, upto))
                self.stats["acks_sent"] += 1
            self._write_waiting()
        out = connection.take_output()
        if out:
            self.stats["writes"] += 1  # one transport write however many frames (write batching)
        # Handed to the transport now: counted as its buffer until the next fresh figure.
        size = sum(len(chunk) for chunk in out)
        self.stats["bytes_sent"] += size
        self.transport_buffered += size
        return out

    # ------------------------------------------------------------------ receiving

    def receive(self, data: bytes, now: float) -> Received:
        """Bytes from the current connection. :raises LinkError: close the connection."""
        connection = self.connection
        if connection is None:
            raise LinkError("closed", "bytes for a closed connection")
        self.stats["bytes_received"] += len(data)
        return self.handle(connection.receive(data), now)

    def handle(self, events: list[Established | Data | Control], now: float) -> Received:
        """What the current connection decoded. :raises LinkError: close the connection."""
        result = Received()
        for event in events:
            if isinstance(event, Established):
                self._established(event)
                result.established = event
            elif isinstance(event, Data):
                self.stats["frames_received"] += 1
                if event.seq is None or self.inbox.take(event.seq):
                    result.frames.append(event)
                else:
                    self.stats["duplicates_dropped"] += 1
            else:
                self._control(event, now, result)
        self._last_received = self.last_heard = now
        return result

    def _established(self, done: Established) -> None:
        self.peer_boot = done.peer_boot
        self.peer_max_frame = done.peer_max_frame
        self.max_body = min(done.peer_max_frame, self.limits.max_frame) - 10
        self.inbox.connected(done.peer_boot, done.peer_base)
        self.stats["connects"] += 1

    def _control(self, event: Control, now: float, result: Received) -> None:
        connection = self.connection
        assert connection is not None
        if event.kind == ACK:
            result.acked.extend(self.outbox.acked(event.value))
        elif event.kind == NACK:
            if event.value >= self.outbox.next_seq:
                raise LinkError("bad-ack", f"nack of {event.value}, never sent")
            result.failed.append(event.value)
            self.stats["nacks_received"] += 1
        elif event.kind == PING:
            connection.write(encode_control(PONG, time=event.time))
        elif event.kind == PONG:
            rtt = self._rtt_time(now) - event.time
            if 0.0 <= rtt < 3600.0:
                self.rtt = rtt

    def finished(self, boot: bytes, seq: int, ok: bool) -> None:
        """The handler of the peer's reliable frame ``seq`` (from its ``boot``) finished."""
        self.inbox.finish(boot, seq, ok)
        if not ok:
            self.stats["handler_failures"] += 1

    # ------------------------------------------------------------------ time

    def _rtt_time(self, now: float) -> float:
        """The time a ping carries and its answer is measured against: the injected clock's, else ``now``."""
        return self._rtt_clock() if self._rtt_clock is not None else now

    def tick(self, now: float) -> float:
        """Send a ping when due; the next time to call. :raises LinkError: the peer went silent."""
        connection = self.connection
        if connection is None or connection.established is None:
            return now + self.limits.ping_interval
        if now - self._last_received > self.limits.idle_timeout:
            raise LinkError("timeout", f"nothing from {self.peer} for {now - self._last_received:.1f} s")
        if now >= self._next_ping:
            connection.write(encode_control(PING, time=self._rtt_time(now)))
            self._next_ping = now + self.limits.ping_interval
        return min(self._next_ping, self._last_received + self.limits.idle_timeout + 0.001)

    def drain(self) -> list[Pending]:
        """The peer is gone for good: every held reliable frame, oldest first."""
        return self.outbox.drain()

    def snapshot(self) -> dict[str, object]:
        """The figures :meth:`Links.stats` shows for this peer."""
        return {
            "up": self.up,
            "queue_frames": len(self.outbox),
            "queue_bytes": self.outbox.held_bytes,
            "waiting_frames": self.outbox.unwritten,
            "send_buffer_bytes": self.limits.send_buffer - self.room() if self.connection else 0,
            "in_progress": self.inbox.in_progress,
            "rtt": self.rtt,
            "resent": self.outbox.resent,
            **{key: self.stats[key] for key in (
                "frames_sent", "bytes_sent", "frames_received", "bytes_received", "reliable_sent", "unreliable_dropped",
                "duplicates_dropped", "acks_sent", "nacks_received", "handler_failures", "connects", "disconnects", "writes",
                "overloaded", "room_waits")},
        }
