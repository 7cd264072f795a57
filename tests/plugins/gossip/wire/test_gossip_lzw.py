"""LZW against Go's compress/lzw: shipped vectors, and live both ways when Go is installed."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import pytest
from gossip_lzw_inputs import VECTOR_INPUTS
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.wire import WireError, lzw

VECTORS: dict[str, str] = json.loads((Path(__file__).parent / "lzw_vectors.json").read_text())


@pytest.mark.parametrize("name", sorted(VECTOR_INPUTS))
def test_compress_is_byte_identical_to_go(name: str) -> None:
    assert lzw.compress(VECTOR_INPUTS[name]).hex() == VECTORS[name]


@pytest.mark.parametrize("name", sorted(VECTOR_INPUTS))
def test_decompress_reads_go_output(name: str) -> None:
    assert lzw.decompress(bytes.fromhex(VECTORS[name]), 1 << 20) == VECTOR_INPUTS[name]


def test_the_vectors_cover_a_full_table() -> None:
    # Random bytes add one code each: 5000 of them must pass the 4095-code limit and clear the table.
    compressed = bytes.fromhex(VECTORS["random 5000"])
    assert len(compressed) * 8 > 4096 * 9


def test_missing_end_code_is_an_error() -> None:
    compressed = lzw.compress(b"hello hello hello")
    with pytest.raises(WireError):
        lzw.decompress(compressed[:-2], 1000)


def test_output_limit_stops_a_bomb() -> None:
    bomb = lzw.compress(b"\x00" * 100_000)
    assert len(bomb) < 2000
    with pytest.raises(WireError) as caught:
        lzw.decompress(bomb, 50_000)
    assert caught.value.reason == "oversized"


def test_code_beyond_the_table_is_an_error() -> None:
    # clear (256), literal 'a', then code 300 which is not defined yet: 9-bit codes LSB first.
    bits = 256 | (ord("a") << 9) | (300 << 18)
    with pytest.raises(WireError):
        lzw.decompress(bits.to_bytes(4, "little"), 1000)


@given(st.binary(max_size=3000))
@settings(max_examples=200, deadline=None)
def test_round_trip(data: bytes) -> None:
    assert lzw.decompress(lzw.compress(data), len(data) + 1) == data


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_random_bytes_only_raise_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        lzw.decompress(data, 1 << 16)


def _samples() -> list[bytes]:
    rng = random.Random(99)
    samples = [rng.randbytes(rng.randrange(0, 9000)) for _ in range(12)]
    samples += [bytes(rng.choice(b"xyz ") for _ in range(rng.randrange(1, 30_000))) for _ in range(8)]
    return samples


def test_live_go_compresses_identically(golzw) -> None:  # type: ignore[no-untyped-def]
    for data in _samples():
        go = golzw("c", data)
        assert go.returncode == 0
        assert lzw.compress(data) == go.stdout


def test_live_go_reads_our_output_and_we_read_its(golzw) -> None:  # type: ignore[no-untyped-def]
    for data in _samples():
        ours = golzw("d", lzw.compress(data))
        assert ours.returncode == 0 and ours.stdout == data
        assert lzw.decompress(golzw("c", data).stdout, len(data) + 1) == data


def test_live_go_agrees_on_corrupt_streams(golzw) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    for _ in range(150):
        data = bytearray(lzw.compress(rng.randbytes(rng.randrange(1, 400))))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        go = golzw("d", bytes(data))
        try:
            ours: bytes | None = lzw.decompress(bytes(data), 1 << 20)
        except WireError:
            ours = None
        if go.returncode == 0:
            assert ours == go.stdout
        else:
            assert ours is None


def test_live_go_agrees_around_the_full_table(golzw) -> None:  # type: ignore[no-untyped-def]
    # Random input adds one code per byte or so: these lengths end with the table filling up at
    # every possible moment, including inside Close (where Go clears once more before the end code).
    data = random.Random(1).randbytes(4300)
    for length in range(3700, 4300, 3):
        go = golzw("c", data[:length])
        assert lzw.compress(data[:length]) == go.stdout, length
