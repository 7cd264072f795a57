"""Streams: push/pull with user state, user messages, the TCP ping, sealed and fed in pieces."""

from __future__ import annotations

import os

import pytest

from hookmq.plugins.gossip.wire import (
    Ack,
    Keyring,
    Ping,
    PushNodeState,
    PushPull,
    StreamDecoder,
    UserStream,
    WireCodec,
    WireError,
    encode_message,
    encode_push_pull,
    encode_user_stream,
    seal_stream,
    vsn_bytes,
)

NODES = tuple(PushNodeState(f"n{i}", bytes([10, 0, 0, i]), 7946, b"meta", i, i % 4, vsn_bytes()) for i in range(5))
KEY = os.urandom(24)
CODECS = {
    "plain": WireCodec(compression=False),
    "compressed": WireCodec(compression=True),
    "encrypted": WireCodec(keyring=Keyring([KEY]), compression=False),
    "all": WireCodec(keyring=Keyring([KEY]), label="blue", compression=True),
}


@pytest.mark.parametrize("name", sorted(CODECS))
@pytest.mark.parametrize("labelled", [True, False])
def test_push_pull_round_trip_fed_byte_by_byte(name: str, labelled: bool) -> None:
    codec = CODECS[name]
    sealed = seal_stream(codec, encode_push_pull(NODES, b"user state", join=True), labelled=labelled)
    decoder = StreamDecoder(codec, labelled=labelled)
    results = [decoder.feed(sealed[i : i + 1]) for i in range(len(sealed))]
    assert all(r is None for r in results[:-1])
    assert results[-1] == PushPull(True, NODES, b"user state")
    decoder.end()


@pytest.mark.parametrize("name", sorted(CODECS))
def test_user_message_and_ping_ack(name: str) -> None:
    codec = CODECS[name]
    for plain, expected in (
        (encode_user_stream(b"x" * 70_000), UserStream(b"x" * 70_000)),
        (encode_message(Ping(5, "n1")), Ping(5, "n1")),
        (encode_message(Ack(5)), Ack(5)),
    ):
        assert StreamDecoder(codec, labelled=True).feed(seal_stream(codec, plain, labelled=True)) == expected


def test_answer_has_no_label_header_but_is_authenticated_with_the_label() -> None:
    codec = CODECS["all"]
    answer = seal_stream(codec, encode_message(Ack(1)), labelled=False)
    assert answer[0] == 10
    assert StreamDecoder(codec, labelled=False).feed(answer) == Ack(1)
    other = WireCodec(keyring=Keyring([KEY]), label="green")
    with pytest.raises(WireError):
        StreamDecoder(other, labelled=False).feed(answer)


def test_stream_that_ends_early_is_truncated() -> None:
    codec = CODECS["plain"]
    sealed = seal_stream(codec, encode_push_pull(NODES, b"abc", join=False), labelled=True)
    decoder = StreamDecoder(codec, labelled=True)
    assert decoder.feed(sealed[:-1]) is None
    with pytest.raises(WireError) as caught:
        decoder.end()
    assert caught.value.reason == "truncated"


def test_oversized_stream_is_refused() -> None:
    codec = CODECS["plain"]
    decoder = StreamDecoder(codec, labelled=True, max_size=1000)
    with pytest.raises(WireError) as caught:
        decoder.feed(encode_user_stream(b"y" * 5000))
    assert caught.value.reason == "oversized"


def test_encrypted_length_beyond_the_limit_is_refused_before_reading_it() -> None:
    codec = CODECS["encrypted"]
    with pytest.raises(WireError) as caught:
        StreamDecoder(codec, labelled=True).feed(b"\x0a\xff\xff\xff\xff")
    assert caught.value.reason == "oversized"


@pytest.mark.parametrize(
    ("codec_name", "data", "reason"),
    [
        ("plain", b"\x04\x80", "type"),  # alive does not travel on streams
        ("plain", b"\x0a\x00\x00\x00\x10" + bytes(16), "decrypt"),  # encrypted, but we have no key
        ("encrypted", encode_message(Ping(1, "a")), "decrypt"),  # plaintext, but we require a key
        ("plain", b"\xf4\x04blue" + encode_message(Ping(1, "a")), "label"),  # a label we do not use
        ("plain", b"\xf4\x00", "truncated"),
    ],
)
def test_refusals(codec_name: str, data: bytes, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        StreamDecoder(CODECS[codec_name], labelled=True).feed(data)
    assert caught.value.reason == reason
