"""BATCH frames without an event loop: one seal for many contents, in order; older peers get single frames."""

from __future__ import annotations

import contextlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.link.connection import BATCH_LIMIT, LinkConnection
from hookmq.plugins.gossip.link.errors import LinkError
from hookmq.plugins.gossip.link.frames import (
    ACK,
    BATCH,
    Control,
    Data,
    decode_content,
    encode_batch,
    encode_control,
    encode_data,
    split_batch,
)
from hookmq.plugins.gossip.link.handshake import FEATURES, LocalIdentity
from hookmq.plugins.gossip.wire import Keyring

KEY = os.urandom(32)

frames = st.one_of(
    st.builds(Data, st.integers(1, 239), st.none() | st.integers(1, 2**64 - 1), st.binary(max_size=300)),
    st.builds(lambda value: Control(ACK, value=value), st.integers(0, 2**64 - 1)),
)


def content_of(frame: Data | Control) -> bytes:
    if isinstance(frame, Data):
        return encode_data(frame.kind, frame.seq, frame.body)
    return encode_control(frame.kind, frame.value)


@given(st.lists(frames, min_size=1, max_size=40))
def test_a_batch_carries_its_contents_in_order(batch: list[Data | Control]) -> None:
    content = encode_batch([content_of(frame) for frame in batch])
    assert content[0] == BATCH
    assert [decode_content(part) for part in split_batch(content)] == batch


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_as_a_batch_give_parts_or_a_link_error(data: bytes) -> None:
    with contextlib.suppress(LinkError):
        parts = split_batch(bytes((BATCH,)) + data)
        assert parts and all(part and part[0] != BATCH for part in parts)
        assert sum(len(part) + 4 for part in parts) == len(data)


def test_malformed_batches_are_refused() -> None:
    for bad in (b"", bytes((BATCH,)), bytes((BATCH,)) + b"\x00\x00\x00\x00",
                bytes((BATCH,)) + b"\x00\x00\x00\x05ab", bytes((BATCH,)) + b"\x00\x00",
                encode_batch([encode_batch([b"\x05\x00x"])]), b"\x05\x00x"):
        try:
            split_batch(bad)
        except LinkError as error:
            assert error.reason == "malformed"
        else:
            raise AssertionError(f"{bad!r} was taken")


def identity(name: str, features: int, keyed: bool) -> LocalIdentity:
    return LocalIdentity(name, os.urandom(8), Keyring([KEY]) if keyed else None, "", 1 << 20, features)


def established(dialer_features: int = FEATURES, acceptor_features: int = FEATURES,
                keyed: bool = True) -> tuple[LinkConnection, LinkConnection]:
    dialer = LinkConnection("dialer", identity("node-a", dialer_features, keyed), base=lambda _: 1, expected_peer="node-b")
    acceptor = LinkConnection("acceptor", identity("node-b", acceptor_features, keyed), base=lambda _: 1,
                              admit=lambda _: None)
    for _ in range(5):
        to_acceptor, to_dialer = b"".join(dialer.take_output()), b"".join(acceptor.take_output())
        if to_acceptor:
            acceptor.receive(to_acceptor)
        if to_dialer:
            dialer.receive(to_dialer)
    assert dialer.established is not None and acceptor.established is not None
    return dialer, acceptor


def test_one_take_output_seals_everything_written_as_one_frame() -> None:
    dialer, acceptor = established()
    sent = [Data(36, None, b"m%d" % index) for index in range(100)] + [Control(ACK, value=9)]
    for frame in sent:
        dialer.write(content_of(frame))
    assert dialer.out_bytes == sum(len(content_of(frame)) + 4 for frame in sent)
    out = dialer.take_output()
    assert len(out) == 1 and dialer.out_bytes == 0
    assert acceptor.receive(out[0]) == sent


def test_batches_stay_under_the_limit_and_large_contents_go_alone() -> None:
    dialer, acceptor = established()
    big = Data(36, 1, os.urandom(BATCH_LIMIT))
    sent = [Data(36, None, os.urandom(1000)) for _ in range(600)]
    sent.insert(300, big)
    for frame in sent:
        dialer.write(content_of(frame))
    data = b"".join(dialer.take_output())
    assert acceptor.receive(data) == sent
    # 300 kB of small contents need at least two batches, then the big one alone, then two more.
    assert 5 <= dialer.encoder._counter <= 7


@given(st.lists(st.lists(frames, max_size=30), max_size=8), st.booleans(), st.booleans(), st.booleans())
def test_any_writes_arrive_in_order_with_or_without_batching_on_either_side(
        rounds: list[list[Data | Control]], dialer_batches: bool, acceptor_batches: bool, keyed: bool) -> None:
    dialer, acceptor = established(FEATURES if dialer_batches else 0, FEATURES if acceptor_batches else 0, keyed)
    # Each side batches only what goes to a peer that offered it (an older node offers nothing).
    assert dialer._batch_limit == (BATCH_LIMIT if acceptor_batches else 0)
    assert acceptor._batch_limit == (BATCH_LIMIT if dialer_batches else 0)
    for batch in rounds:
        for frame in batch:
            dialer.write(content_of(frame))
            acceptor.write(content_of(frame))
        assert acceptor.receive(b"".join(dialer.take_output())) == batch
        assert dialer.receive(b"".join(acceptor.take_output())) == batch


def test_a_batch_to_a_node_that_did_not_offer_batching_would_be_refused_by_it_as_before() -> None:
    # What an older node does with kind 244: the frame is malformed (so we never send it one).
    try:
        decode_content(encode_batch([encode_data(36, None, b"x")]))
    except LinkError as error:
        assert error.reason == "malformed"
    else:
        raise AssertionError("a batch decoded as one frame")
