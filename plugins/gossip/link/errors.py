"""The one error every link decoder raises: anything a peer sends that we cannot accept."""

from __future__ import annotations

__all__ = ["LinkError"]


class LinkError(Exception):
    """A peer sent something the link cannot accept; the link is closed.

    ``reason`` is a short machine-readable word (``oversized``, ``malformed``, ``auth``,
    ``unknown-node``, ``replay``, ...) used as a counter name and a log-limiter key.
    """

    def __init__(self, reason: str, detail: str, reply: bytes = b"") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        #: A last frame's content to send before closing (a handshake refusal), or empty.
        self.reply = reply
