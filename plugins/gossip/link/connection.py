"""One link connection, sans-I/O: the handshake, then frames; bytes in, frames and bytes out.

The dialer's bytes start with the preamble (on the shared gossip port the gossip listener
reads and checks it before handing the socket over, so an acceptor starts after it).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .errors import LinkError
from .frames import PREAMBLE, Control, Data, FrameDecoder, FrameEncoder, decode_content
from .handshake import HANDSHAKE_MAX_FRAME, Established, Handshake, LocalIdentity, Role

__all__ = ["LinkConnection"]


class LinkConnection:
    """Feed received bytes to :meth:`receive`; send what :meth:`take_output` returns.

    Until :attr:`established` is set only handshake messages pass; after it, every frame is a
    :class:`~.frames.Data` or :class:`~.frames.Control`. Any LinkError closes the connection
    (send its ``reply`` first, if any).
    """

    def __init__(
        self,
        role: Role,
        local: LocalIdentity,
        *,
        base: Callable[[str], int],
        expected_peer: str | None = None,
        admit: Callable[[str], str | None] | None = None,
        random: Callable[[int], bytes] = os.urandom,
        preamble: bool = True,
        stream: Callable[[str], bytes] | None = None,
    ) -> None:
        self.role = role
        #: Preamble bytes an acceptor still has to check before the first frame.
        self._preamble = len(PREAMBLE) if role == "acceptor" and preamble else 0
        self.local = local
        self.handshake = Handshake(role, local, base=base, expected_peer=expected_peer, admit=admit, random=random,
                                   stream=stream)
        self.encoder = FrameEncoder()
        self.decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
        self.established: Established | None = None
        self._out: list[bytes] = []
        self.out_bytes = 0
        if role == "dialer":
            self._queue(PREAMBLE)
        for content in self.handshake.start():
            self._queue(self.encoder.encode(content))

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self.out_bytes += len(data)

    def write(self, content: bytes) -> int:
        """Frame ``content`` for sending (after the handshake); the bytes it takes on the wire."""
        data = self.encoder.encode(content)
        self._queue(data)
        return len(data)

    def take_output(self) -> list[bytes]:
        """Everything to send now, in order."""
        out, self._out, self.out_bytes = self._out, [], 0
        return out

    def receive(self, data: bytes) -> list[Established | Data | Control]:
        """Bytes in; the handshake's result and the frames they complete. :raises LinkError:"""
        if self._preamble:
            data = self._check_preamble(data)
        decoder = self.decoder
        decoder.feed(data)
        events: list[Established | Data | Control] = []
        while (content := decoder.next()) is not None:
            if self.established is None:
                try:
                    replies = self.handshake.receive(content)
                except LinkError as error:
                    if error.reply:
                        error.reply = self.encoder.encode(error.reply)
                    raise
                for reply in replies:
                    self._queue(self.encoder.encode(reply))
                done = self.handshake.done
                if done is not None:
                    self._established(done)
                    events.append(done)
                continue
            events.append(decode_content(content))
        return events

    def _check_preamble(self, data: bytes) -> bytes:
        done = len(PREAMBLE) - self._preamble
        part = data[: self._preamble]
        if part != PREAMBLE[done : done + len(part)]:
            raise LinkError("preamble", "not a hookmq link (or another link version)")
        self._preamble -= len(part)
        return data[len(part) :]

    def _established(self, done: Established) -> None:
        self.established = done
        if done.send_key is not None and done.receive_key is not None:
            self.encoder.secure(done.send_key)
            self.decoder.secure(done.receive_key)
        self.decoder.max_frame = self.local.max_frame
