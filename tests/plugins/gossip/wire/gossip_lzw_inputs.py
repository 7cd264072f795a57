"""The inputs of the shipped LZW vectors, regenerated from seeds so only Go's output is stored."""

from __future__ import annotations

import random

__all__ = ["VECTOR_INPUTS"]


def _low_entropy(seed: int, size: int, alphabet: bytes) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(alphabet) for _ in range(size))


VECTOR_INPUTS: dict[str, bytes] = {
    "empty": b"",
    "one byte": b"\x00",
    "two bytes": b"ab",
    "repeated": b"a" * 1000,
    "kwkwk": b"abababababababababab",
    "text": b"The quick brown fox jumps over the lazy dog. " * 60,
    "all bytes": bytes(range(256)) * 4,
    # Random bytes define one code per byte: 5000 of them fill the 4096-code table (a clear code mid-stream).
    "random 5000": random.Random(13).randbytes(5000),
    "low entropy 20000": _low_entropy(7, 20_000, b"abcd"),
    "alive packet": bytes.fromhex(
        "0486a441646472c4047f000001ab496e6361726e6174696f6e01a44d657461c0a44e6f6465a26e31a4506f7274cd1f0aa356736e"
        "c406010502000000"
    ),
}
