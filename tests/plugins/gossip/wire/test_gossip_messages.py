"""Message bodies byte for byte as memberlist 0.2.2 wrote them (captured on loopback from mlnode)."""

from __future__ import annotations

import pytest

from hookmq.plugins.gossip.wire import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Nack,
    Ping,
    PushNodeState,
    PushPull,
    StreamDecoder,
    Suspect,
    WireCodec,
    WireError,
    encode_message,
    encode_push_pull,
    seal_stream,
    vsn_bytes,
)
from hookmq.plugins.gossip.wire.messages import decode_body

LOCAL = bytes([127, 0, 0, 1])

# A ping from mlnode "ml1" (127.0.0.1:7901) to "py": go-msgpack sorts the keys, strings are raw.
GO_PING = bytes.fromhex(
    "0085a44e6f6465a27079a55365714e6f01aa536f7572636541646472a47f000001aa536f757263654e6f6465a36d6c31"
    "aa536f75726365506f7274cd1edd"
)
# Gossip to a known node that understands protocol 5: CRC header, then a compound of two alive messages.
GO_GOSSIP = bytes.fromhex(
    "0c45d2263307020040003a0486a441646472a47f000001ab496e6361726e6174696f6e01a44d657461a568656c6c6fa44e6f6465"
    "a36d6c31a4506f7274cd1edda356736ea60105020000000486a441646472a47f000001ab496e6361726e6174696f6e01a44d657461"
    "c0a44e6f6465a27079a4506f7274cd1edca356736ea6010502000000"
)
# mlnode's join push/pull stream: always LZW-compressed on streams.
GO_JOIN_STREAM = bytes.fromhex(
    "0982a4416c676f00a3427566da0079000d0c22a5e44d1a37c34a397943a6cc9c00acaacc2923670a9d3074ca3029e306c2215241"
    "c8909143ea0f00000156257133268c1c3718d3bc711380549332174ba129c386cd1b524ec2b42933aa0d9b18a4a0bc9143a79987"
    "6ea52c622c03609495396e4c052820e02400a36e18966931e762461d46630404"
)
ML1 = Alive(1, "ml1", LOCAL, 7901, b"hello", vsn_bytes())
PY = Alive(1, "py", LOCAL, 7900, b"", vsn_bytes())


def test_vsn_is_six_bytes_protocol_2_of_1_to_5() -> None:
    assert vsn_bytes() == bytes.fromhex("010502000000")


def test_ping_encodes_exactly_as_go() -> None:
    assert encode_message(Ping(1, "py", LOCAL, 7901, "ml1")) == GO_PING


def test_ping_without_source_omits_the_empty_fields() -> None:
    encoded = encode_message(Ping(7, "n1"))
    assert b"Source" not in encoded
    assert decode_body(0, encoded[1:]) == Ping(7, "n1")


def test_go_gossip_decodes_and_re_encodes_identically() -> None:
    packet = WireCodec(compression=True).open(GO_GOSSIP)
    assert packet.errors == []
    assert packet.messages == [ML1, PY]
    assert WireCodec(compression=False).seal(_compound(ML1, PY), crc=True) == GO_GOSSIP


def _compound(*messages: Alive) -> bytes:
    from hookmq.plugins.gossip.wire import make_compound

    return make_compound([encode_message(m) for m in messages])


def test_empty_meta_is_nil_like_go() -> None:
    assert encode_message(PY).count(b"\xc0") == 1


def test_go_join_stream_decodes() -> None:
    decoded = StreamDecoder(WireCodec(), labelled=True).feed(GO_JOIN_STREAM)
    assert decoded == PushPull(
        join=True,
        nodes=(PushNodeState("ml1", LOCAL, 7901, b"hello", 1, 0, vsn_bytes()),),
        user_state=b"mlnode-state:ml1",
    )


def test_our_join_stream_is_byte_identical_to_go() -> None:
    plain = encode_push_pull([PushNodeState("ml1", LOCAL, 7901, b"hello", 1, 0, vsn_bytes())], b"mlnode-state:ml1", True)
    assert seal_stream(WireCodec(), plain, labelled=True) == GO_JOIN_STREAM


@pytest.mark.parametrize(
    "message",
    [
        Ping(4_294_967_295, "näme", bytes(16), 65535, "src"),
        IndirectPing(9, LOCAL, 7946, "target", True, LOCAL, 7000, "me"),
        IndirectPing(9, LOCAL, 7946, "target", False),
        Ack(3, b"payload"),
        Ack(3),
        Nack(12),
        Suspect(5, "a", "b"),
        Dead(5, "a", "a"),
        Alive(2**32 - 1, "n", bytes(16), 1, b"m" * 512, vsn_bytes()),
    ],
)
def test_round_trip(message: object) -> None:
    encoded = encode_message(message)  # type: ignore[arg-type]
    assert decode_body(encoded[0], encoded[1:]) == message


def test_missing_fields_take_go_zero_values() -> None:
    # {"SeqNo": 5} alone: Go decodes the rest as zero values.
    assert decode_body(2, bytes.fromhex("81a55365714e6f05")) == Ack(5, b"")


@pytest.mark.parametrize(
    "body",
    [
        "81a55365714e6fa3616263",  # SeqNo is a string
        "81a55365714e6fcf0000000100000000",  # SeqNo beyond uint32
        "81a55365714e6fff",  # SeqNo negative
        "93010203",  # an array, not a map
        "81a55365714e",  # cut short
        "c1",  # reserved msgpack byte
    ],
)
def test_bad_bodies_raise_wire_error(body: str) -> None:
    with pytest.raises(WireError):
        decode_body(2, bytes.fromhex(body))
