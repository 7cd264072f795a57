"""The sessions frames, sans-I/O: round trips, and random or mutated bodies never raise anything but FrameError."""

from __future__ import annotations

import contextlib

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookmq.mqtt.packets import Properties, Publish, SubscriptionOptions, Will
from hookmq.plugins.gossip.sessions.frames import (
    HANDOVER,
    ORPHANED,
    TAKEOVER,
    FrameError,
    Handover,
    Orphaned,
    Takeover,
    decode,
    encode_handover,
    encode_orphaned,
    encode_takeover,
)
from hookmq.plugins.gossip.sessions.owners import adopter
from hookmq.store.records import (
    OutgoingRecord,
    SessionRecord,
    SessionState,
    StoredMessage,
    SubscriptionRecord,
)

STATE = SessionState(
    SessionRecord("c", 5, False, 300, 12.5, Will("w/t", b"bye", 1, False), 10, "user", 30,
                  Properties(receive_maximum=5), "node1"),
    (SubscriptionRecord("a/#", SubscriptionOptions(2, no_local=True), 7),),
    (OutgoingRecord(3, StoredMessage(Publish("a/b", b"x", 1, packet_id=3), 1.0, 99.0), "pubrel", 2),),
    (9, 11),
    (StoredMessage(Publish("a/c", b"q", 1), 2.0),),
)


def test_takeover_and_handover_round_trip() -> None:
    assert decode(TAKEOVER, encode_takeover(4, "c", True, False, 17)) == Takeover(4, "c", True, False, 17)
    assert decode(HANDOVER, encode_handover(4, None)) == Handover(4, None)
    assert decode(HANDOVER, encode_handover(5, STATE)) == Handover(5, STATE)
    queued = [("c", STATE.queue[0]), ("d", STATE.outgoing[0].message)]
    assert decode(ORPHANED, encode_orphaned("node1", True, queued)) == Orphaned("node1", True, tuple(queued))


@pytest.mark.parametrize("body", [
    b"", b"\xc1", msgpack.packb({"a": 1}), msgpack.packb([1, "c", True]), msgpack.packb([-1, "c", True, False, 0]),
    msgpack.packb([1, 5, True, False, 0]), msgpack.packb([1, "c", 1, False, 0]), msgpack.packb([1, "c", True, False, True]),
])
def test_bad_takeover_bodies_are_frame_errors(body: bytes) -> None:
    with pytest.raises(FrameError):
        decode(TAKEOVER, body)


@pytest.mark.parametrize("body", [
    msgpack.packb([1, [b"junk", [], [], [], []]]), msgpack.packb([1, [encode_handover(1, STATE), [], [], [0], []]]),
    msgpack.packb([1, ["text", [], [], [], []]]), msgpack.packb([1, [b"", 5, [], [], []]]),
])
def test_bad_handover_bodies_are_frame_errors(body: bytes) -> None:
    with pytest.raises(FrameError):
        decode(HANDOVER, body)


@given(st.binary(max_size=512), st.sampled_from([TAKEOVER, HANDOVER, ORPHANED, 3]))
def test_random_bodies_decode_or_raise_frame_error(body: bytes, kind: int) -> None:
    with contextlib.suppress(FrameError):
        decode(kind, body)


@given(st.data())
def test_mutated_handover_bodies_decode_or_raise_frame_error(data: st.DataObject) -> None:
    body = bytearray(encode_handover(9, STATE))
    for _ in range(data.draw(st.integers(1, 8))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(FrameError):
        decode(HANDOVER, bytes(body))


def test_the_adoption_rule_is_deterministic_and_spreads() -> None:
    nodes = ["n1", "n2", "n3"]
    picks = [adopter(f"client-{i}", nodes) for i in range(3000)]
    assert picks == [adopter(f"client-{i}", list(reversed(nodes))) for i in range(3000)]  # order does not matter
    assert all(800 < picks.count(node) < 1200 for node in nodes)
    assert adopter("x", []) is None
    # A node leaving moves only its own sessions.
    after = [adopter(f"client-{i}", ["n1", "n2"]) for i in range(3000)]
    assert all(b == a for a, b in zip(picks, after, strict=True) if a != "n3")
