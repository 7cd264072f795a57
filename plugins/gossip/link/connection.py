"""One link connection, sans-I/O: the handshake, then frames; bytes in, frames and bytes out.

The dialer's bytes start with the preamble (on the shared gossip port the gossip listener
reads and checks it before handing the socket over, so an acceptor starts after it).

Batching: once established with a peer that reads BATCH frames, what :meth:`LinkConnection.write`
is given is kept plain until :meth:`~LinkConnection.take_output`, which seals everything written
since the last call as one BATCH frame (several, of at most ``BATCH_LIMIT`` bytes each): one
AES-GCM seal, one header and one frame to open on the other side for a whole loop iteration's
messages, instead of one per message.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .errors import LinkError
from .frames import (
    BATCH,
    HEADER,
    PREAMBLE,
    Control,
    Data,
    FrameDecoder,
    FrameEncoder,
    decode_content,
    encode_batch,
    split_batch,
)
from .handshake import HANDSHAKE_MAX_FRAME, Established, Handshake, LocalIdentity, Role

__all__ = ["BATCH_LIMIT", "LinkConnection"]

BATCH_LIMIT = 256 * 1024
"""Plain bytes sealed in one BATCH frame at most (also bounded by the peer's frame size)."""


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
        #: Contents written but not yet sealed (batching), and their bytes.
        self._plain: list[bytes] = []
        self._plain_bytes = 0
        self._batch_limit = 0  # 0: no batching (the peer does not read BATCH, or not established)
        self.out_bytes = 0
        if role == "dialer":
            self._queue(PREAMBLE)
        for content in self.handshake.start():
            self._queue(self.encoder.encode(content))

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self.out_bytes += len(data)

    def write(self, content: bytes) -> None:
        """Frame ``content`` for sending (after the handshake): sealed now, or with the batch at :meth:`take_output`."""
        if self._batch_limit and len(content) < self._batch_limit:
            self._plain.append(content)
            size = len(content) + HEADER.size
            self._plain_bytes += size
            self.out_bytes += size
            return
        self._seal_plain()
        self._queue(self.encoder.encode(content))

    def take_output(self) -> list[bytes]:
        """Everything to send now, in order."""
        self._seal_plain()
        out, self._out, self.out_bytes = self._out, [], 0
        return out

    def _seal_plain(self) -> None:
        """Seal the contents kept for batching, in order, in as few frames as the limit allows."""
        plain = self._plain
        if not plain:
            return
        limit = self._batch_limit
        encode = self.encoder.encode
        self.out_bytes -= self._plain_bytes
        self._plain, self._plain_bytes = [], 0
        start, size = 0, 1
        for index, content in enumerate(plain):
            part = len(content) + HEADER.size
            if index > start and size + part > limit:
                self._queue(encode(encode_batch(plain[start:index]) if index - start > 1 else plain[start]))
                start, size = index, 1
            size += part
        rest = plain[start:]
        self._queue(encode(encode_batch(rest) if len(rest) > 1 else rest[0]))

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
            if content[0] == BATCH:
                events.extend([decode_content(part) for part in split_batch(content)])
            else:
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
        if done.batches:
            # One frame's content is at most the peer's max_frame (the batch kind byte included).
            self._batch_limit = min(BATCH_LIMIT, done.peer_max_frame)
