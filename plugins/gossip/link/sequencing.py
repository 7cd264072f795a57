"""Reliable frames between two nodes, sans-I/O: numbering, acknowledgement, resending, duplicates.

One :class:`Outbox` per peer numbers our reliable frames 1, 2, 3, ... for as long as this
process lives and keeps each until the peer acknowledges it, across any number of
connections: a connection that breaks :meth:`~Outbox.rewind`\\ s the outbox, and the next one
sends everything unacknowledged again, oldest first. One :class:`Inbox` per peer remembers,
for the peer's current boot, up to which number frames were taken (later copies are
duplicates and dropped) and up to which their handlers finished (the cumulative ACK). A peer
that restarted has a new boot and numbers from 1 again; its handshake says where its resending
starts (``base``), which is where the inbox starts over.

Handlers may finish out of order; the ACK only moves over a contiguous run of finished
frames. A handler that failed is reported with a NACK for that frame, then covered by the ACK
like the others (a failure is final: sending the frame again would fail again).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .errors import LinkError

__all__ = ["Inbox", "Outbox", "Overloaded", "Pending"]

RECENT_FAILURES = 1024
"""NACKs remembered to repeat on the next connection (the last one may have been lost)."""


class Overloaded(Exception):
    """The outbox holds its limit of reliable bytes or frames; the frame was not taken."""


@dataclass(slots=True)
class Pending:
    """A reliable frame not yet acknowledged."""

    seq: int
    kind: int
    body: bytes


class Outbox:
    """Our reliable frames to one peer: numbered, kept until acknowledged, resent after a break.

    :param max_bytes: body bytes held (written or not) beyond which :meth:`add` refuses.
    :param max_frames: frames held beyond which :meth:`add` refuses.
    """

    __slots__ = ("_frames", "_written", "held_bytes", "highest_written", "max_bytes", "max_frames", "next_seq", "resent")

    def __init__(self, max_bytes: int, max_frames: int) -> None:
        self.max_bytes = max_bytes
        self.max_frames = max_frames
        self.next_seq = 1
        self.held_bytes = 0
        self.resent = 0
        self.highest_written = 0
        self._frames: deque[Pending] = deque()
        self._written = 0  # how many of _frames were written on the current connection

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def base(self) -> int:
        """The oldest unacknowledged sequence number (or the next one when none is held)."""
        return self._frames[0].seq if self._frames else self.next_seq

    @property
    def unwritten(self) -> int:
        """Frames held that the current connection has not written yet."""
        return len(self._frames) - self._written

    def fits(self, size: int) -> bool:
        """Whether :meth:`add` would take a frame of ``size`` body bytes now."""
        return len(self._frames) < self.max_frames and (self.held_bytes + size <= self.max_bytes or not self._frames)

    @property
    def low(self) -> bool:
        """At or below half of both bounds: where waiting senders are told there is room again.

        Waking only there (not at the first byte freed) lets a crowd of waiting senders each
        send without most of them finding the outbox full again.
        """
        return len(self._frames) <= self.max_frames // 2 and self.held_bytes <= self.max_bytes // 2

    def add(self, kind: int, body: bytes) -> int:
        """Take a frame; its sequence number. :raises Overloaded: at the limit."""
        if not self.fits(len(body)):
            raise Overloaded(f"{len(self._frames)} reliable frames / {self.held_bytes} bytes held")
        seq = self.next_seq
        self.next_seq += 1
        self._frames.append(Pending(seq, kind, body))
        self.held_bytes += len(body)
        return seq

    def take(self, budget: int) -> list[Pending]:
        """The next unwritten frames, in order, of at most ``budget`` body bytes (at least one)."""
        taken: list[Pending] = []
        frames = self._frames
        while self._written < len(frames):
            frame = frames[self._written]
            if taken and len(frame.body) > budget:
                break
            taken.append(frame)
            budget -= len(frame.body)
            self._written += 1
            if frame.seq > self.highest_written:
                self.highest_written = frame.seq
            if budget <= 0:
                break
        return taken

    def acked(self, upto: int) -> list[int]:
        """The peer acknowledged every frame up to ``upto``: drop them; their sequence numbers."""
        if upto > self.highest_written:
            raise LinkError("bad-ack", f"ack of {upto}, only {self.highest_written} frames were ever sent")
        released: list[int] = []
        frames = self._frames
        while frames and frames[0].seq <= upto:
            # An ACK may cover frames the current connection has not written again yet: the
            # peer repeats its last ACK when a connection comes up.
            frame = frames.popleft()
            if self._written:
                self._written -= 1
            self.held_bytes -= len(frame.body)
            released.append(frame.seq)
        return released

    def rewind(self) -> None:
        """The connection is gone: every unacknowledged frame is written again on the next one."""
        self.resent += self._written
        self._written = 0

    def drain(self) -> list[Pending]:
        """Hand back every held frame (the peer is gone for good); the outbox is empty after."""
        frames = list(self._frames)
        self._frames.clear()
        self._written = 0
        self.held_bytes = 0
        return frames


class Inbox:
    """The peer's reliable frames as we take them: duplicates dropped, the cumulative ACK kept."""

    __slots__ = ("_done", "_failed_recent", "acked_sent", "boot", "completed", "duplicates", "failures", "taken")

    def __init__(self) -> None:
        self.boot = b""
        self.taken = 0  # every frame up to here was handed to the handler
        self.completed = 0  # every frame up to here has finished
        self.acked_sent = 0
        self.duplicates = 0
        self._done: set[int] = set()
        self.failures: list[int] = []  # NACKs to send
        self._failed_recent: deque[int] = deque(maxlen=RECENT_FAILURES)

    def connected(self, boot: bytes, base: int) -> None:
        """A connection from the peer's ``boot`` whose resending starts at ``base``."""
        if boot != self.boot:
            self.boot = boot
            self.taken = self.completed = self.acked_sent = base - 1
            self._done.clear()
            self.failures.clear()
            self._failed_recent.clear()
            return
        if base > self.taken + 1:
            raise LinkError("gap", f"the peer resumes at {base} but we took only up to {self.taken}")
        # Repeat the latest NACKs and the ACK: what the last connection carried may be lost.
        self.failures = [seq for seq in self._failed_recent if seq >= base]
        self.acked_sent = base - 1

    def take(self, seq: int) -> bool:
        """A reliable frame arrived: True to hand it to the handler, False for a duplicate."""
        if seq <= self.taken:
            self.duplicates += 1
            return False
        if seq != self.taken + 1:
            raise LinkError("gap", f"frame {seq} after {self.taken}: frames were skipped")
        self.taken = seq
        return True

    def finish(self, boot: bytes, seq: int, ok: bool) -> None:
        """The handler of frame ``seq`` of the peer's ``boot`` finished (``ok`` False: it failed)."""
        if boot != self.boot or seq <= self.completed or seq > self.taken:
            return  # a handler from before the peer restarted
        if not ok:
            self.failures.append(seq)
            self._failed_recent.append(seq)
        self._done.add(seq)
        done = self._done
        while self.completed + 1 in done:
            self.completed += 1
            done.discard(self.completed)

    @property
    def in_progress(self) -> int:
        """Frames handed to the handler that have not finished."""
        return self.taken - self.completed - len(self._done)

    def ack_due(self) -> int | None:
        """The ACK to send now, or None when the peer already has it."""
        if self.completed > self.acked_sent:
            self.acked_sent = self.completed
            return self.completed
        return None
