"""A forwarded QoS 1/2 message carries its identity in the FORWARD body (sans-I/O), and bodies without one still read."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookmq.mqtt.packets import Publish
from hookmq.plugins.gossip.routing import frames
from hookmq.plugins.gossip.routing.frames import FORWARD, MAX_IDENTITY, Forward, FrameError, decode

PACKET = Publish("t/1", b"x", 2, packet_id=1)
BODY = frames.encode_publish_body(PACKET)


@given(st.binary(max_size=MAX_IDENTITY))
def test_an_identity_round_trips(identity: bytes) -> None:
    assert decode(FORWARD, frames.encode_forward(4, "o", (), 2, BODY, identity)) == Forward(4, "o", (), 2, PACKET, identity)


def test_a_forward_without_identity_reads_as_none() -> None:
    assert decode(FORWARD, frames.encode_forward(4, None, (), 0, BODY)) == Forward(4, None, (), 0, PACKET, None)
    assert len(msgpack.unpackb(frames.encode_forward(4, None, (), 0, BODY))) == 5  # what older nodes send and read


@pytest.mark.parametrize("identity", ["text", 7, None, b"x" * (MAX_IDENTITY + 1)])
def test_a_bad_identity_is_refused(identity: object) -> None:
    with pytest.raises(FrameError):
        decode(FORWARD, msgpack.packb([1, None, [], 0, BODY, identity], use_bin_type=True))
