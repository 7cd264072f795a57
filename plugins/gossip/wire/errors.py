"""The one error every gossip decoder raises for bad input."""

from __future__ import annotations

__all__ = ["WireError"]


class WireError(ValueError):
    """Bytes that are not a valid memberlist packet or stream.

    ``reason`` is a short fixed word (``truncated``, ``label``, ``decrypt``, ``crc``,
    ``msgpack``, ``lzw``, ``type``, ``oversized``, ``field``) that drivers count by; the
    message says more. Peers choose the bytes, so nothing of them is trusted beyond this.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
