"""Link framing without an event loop: round trips, bounds, sealing, and the decoder under random bytes."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.link.errors import LinkError
from hookmq.plugins.gossip.link.frames import (
    ACK,
    NACK,
    PING,
    PONG,
    Control,
    Data,
    FrameDecoder,
    FrameEncoder,
    decode_content,
    encode_control,
    encode_data,
)

KEY = os.urandom(32)


def sealed_pair() -> tuple[FrameEncoder, FrameDecoder]:
    encoder, decoder = FrameEncoder(), FrameDecoder(1 << 20)
    encoder.secure(KEY)
    decoder.secure(KEY)
    return encoder, decoder


def drain(decoder: FrameDecoder) -> list[bytes]:
    out = []
    while (content := decoder.next()) is not None:
        out.append(content)
    return out


def test_data_and_control_frames_round_trip() -> None:
    assert decode_content(encode_data(7, None, b"body")) == Data(7, None, b"body")
    assert decode_content(encode_data(239, 2**64 - 1, b"")) == Data(239, 2**64 - 1, b"")
    assert decode_content(encode_control(ACK, 12)) == Control(ACK, value=12)
    assert decode_content(encode_control(NACK, 3)) == Control(NACK, value=3)
    assert decode_content(encode_control(PING, time=1.5)) == Control(PING, time=1.5)
    assert decode_content(encode_control(PONG, time=2.5)) == Control(PONG, time=2.5)


@pytest.mark.parametrize("kind", [0, 240, 255])
def test_reserved_kinds_cannot_be_sent_as_data(kind: int) -> None:
    with pytest.raises(ValueError):
        encode_data(kind, None, b"")


@pytest.mark.parametrize("content", [b"", b"\x00", b"\x07", b"\x07\x02", b"\x07\x01\x00", b"\x07\x01" + bytes(8),
                                     b"\xf0" + bytes(3), b"\xf2" + b"\x7f\xf8" + bytes(6), b"\xf4" + bytes(8)])
def test_bad_contents_raise_link_errors(content: bytes) -> None:
    with pytest.raises(LinkError):
        decode_content(content)


def test_the_decoder_splits_frames_at_any_chunk_boundary() -> None:
    encoder = FrameEncoder()
    contents = [encode_data(1, i + 1, os.urandom(i * 37)) for i in range(20)]
    wire = b"".join(encoder.encode(content) for content in contents)
    for step in (1, 3, 64, len(wire)):
        decoder = FrameDecoder(1 << 20)
        got: list[bytes] = []
        for start in range(0, len(wire), step):
            decoder.feed(wire[start : start + step])
            got += drain(decoder)
        assert got == contents


def test_an_oversized_frame_is_refused_from_its_header() -> None:
    decoder = FrameDecoder(65_536)
    decoder.feed((65_537).to_bytes(4, "big"))
    with pytest.raises(LinkError) as error:
        decoder.next()
    assert error.value.reason == "oversized"


def test_sealed_frames_round_trip_and_hide_the_content() -> None:
    encoder, decoder = sealed_pair()
    wire = encoder.encode(b"secret message")
    assert b"secret" not in wire
    decoder.feed(wire)
    assert decoder.next() == b"secret message"


def test_a_replayed_frame_fails_authentication() -> None:
    encoder, decoder = sealed_pair()
    first = encoder.encode(b"one")
    decoder.feed(first)
    assert decoder.next() == b"one"
    decoder.feed(first)
    with pytest.raises(LinkError) as error:
        decoder.next()
    assert error.value.reason == "auth"


def test_reordered_frames_fail_authentication() -> None:
    encoder, decoder = sealed_pair()
    first, second = encoder.encode(b"one"), encoder.encode(b"two")
    decoder.feed(second + first)
    with pytest.raises(LinkError):
        decoder.next()


def test_a_frame_sealed_with_another_key_fails() -> None:
    encoder, decoder = FrameEncoder(), FrameDecoder(1 << 20)
    encoder.secure(os.urandom(32))
    decoder.secure(KEY)
    decoder.feed(encoder.encode(b"x"))
    with pytest.raises(LinkError):
        decoder.next()


def _decode_all(decoder: FrameDecoder, data: bytes) -> None:
    decoder.feed(data)
    while (content := decoder.next()) is not None:
        decode_content(content)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_link_errors(data: bytes) -> None:
    for sealed in (False, True):
        decoder = FrameDecoder(1024)
        if sealed:
            decoder.secure(KEY)
        with contextlib.suppress(LinkError):
            _decode_all(decoder, data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 239), st.one_of(st.none(), st.integers(1, 2**64 - 1)), st.binary(max_size=64)),
                min_size=1, max_size=5),
       st.data())
def test_mutated_frames_raise_only_link_errors(frames: list[tuple[int, int | None, bytes]], data: st.DataObject) -> None:
    for sealed in (False, True):
        encoder, decoder = (sealed_pair() if sealed else (FrameEncoder(), FrameDecoder(1 << 20)))
        wire = bytearray(b"".join(encoder.encode(encode_data(*frame)) for frame in frames))
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(wire) - 1))
            wire[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(wire)))
        with contextlib.suppress(LinkError):
            _decode_all(decoder, bytes(wire[:cut]))
