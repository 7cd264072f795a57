"""Every decoder, fed random or mutated bytes, raises WireError and nothing else."""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.wire import (
    Alive,
    Keyring,
    Ping,
    PushNodeState,
    StreamDecoder,
    Suspect,
    WireCodec,
    WireError,
    encode_message,
    encode_push_pull,
    encode_user_stream,
    make_compound,
    seal_stream,
    vsn_bytes,
)
from hookmq.plugins.gossip.wire.messages import decode_body

KEY = os.urandom(16)
CODECS = [WireCodec(), WireCodec(compression=False), WireCodec(keyring=Keyring([KEY]), label="lab")]
VALID_PACKETS = [
    encode_message(Ping(1, "a", bytes(4), 1, "b")),
    make_compound([encode_message(Suspect(1, "x", "y")), encode_message(Alive(1, "x", bytes(4), 2, b"m", vsn_bytes()))]),
]
VALID_STREAMS = [
    encode_push_pull([PushNodeState("n", bytes(4), 1, b"", 1, 0, vsn_bytes())] * 3, b"state", True),
    encode_user_stream(b"hello"),
]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _open(codec: WireCodec, data: bytes) -> None:
    with contextlib.suppress(WireError):
        codec.open(data)


def _stream(codec: WireCodec, data: bytes, split: int) -> None:
    decoder = StreamDecoder(codec, labelled=True, max_size=1 << 16)
    try:
        decoder.feed(data[:split])
        decoder.feed(data[split:])
        decoder.end()
    except WireError:
        pass


@given(st.binary(max_size=1500), st.sampled_from(range(len(CODECS))))
@SETTINGS
def test_random_packets(data: bytes, which: int) -> None:
    _open(CODECS[which], data)


@given(st.data())
@SETTINGS
def test_mutated_packets(data: st.DataObject) -> None:
    codec = data.draw(st.sampled_from(CODECS))
    packet = bytearray(codec.seal(data.draw(st.sampled_from(VALID_PACKETS)), crc=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 4))):
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(packet)))
    _open(codec, bytes(packet[:cut]) if data.draw(st.booleans()) else bytes(packet))


@given(st.integers(0, 255), st.binary(max_size=300))
@SETTINGS
def test_random_bodies(kind: int, body: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_body(kind, body)


@given(st.binary(max_size=2000), st.integers(0, 2000), st.sampled_from(range(len(CODECS))))
@SETTINGS
def test_random_streams(data: bytes, split: int, which: int) -> None:
    _stream(CODECS[which], data, split)


@given(st.data())
@SETTINGS
def test_mutated_streams(data: st.DataObject) -> None:
    codec = data.draw(st.sampled_from(CODECS))
    stream = bytearray(seal_stream(codec, data.draw(st.sampled_from(VALID_STREAMS)), labelled=True))
    for _ in range(data.draw(st.integers(1, 4))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    _stream(codec, bytes(stream), data.draw(st.integers(0, len(stream))))
