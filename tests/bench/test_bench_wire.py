"""The hand-built benchmark packets must be what hookmq's own codec decodes, and vice versa."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookmq.bench import wire
from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.packets import Connack, Connect, Properties, Puback, Publish, Pubrel, Suback, Subscribe


def _decode(data: bytes, level: int) -> list[object]:
    decoder = Decoder(protocol_level=level)
    return list(decoder.feed(data))


@given(st.integers(min_value=0, max_value=268_435_455))
def test_varint_round_trip(value: int) -> None:
    encoded = wire.encode_varint(value)

    assert wire.decode_varint(encoded, 0) == (value, len(encoded))


def test_incomplete_varint_is_none() -> None:
    assert wire.decode_varint(b"\x80\x80", 0) is None


@pytest.mark.parametrize("level", [4, 5])
def test_connect_decodes_as_a_clean_session_connect(level: int) -> None:
    (packet,) = _decode(wire.connect_packet("bench-1", level, keep_alive=30), level)

    assert isinstance(packet, Connect)
    assert packet.client_id == "bench-1"
    assert packet.protocol_level == level
    assert packet.clean_start
    assert packet.keep_alive == 30


@pytest.mark.parametrize("level", [4, 5])
def test_subscribe_carries_every_filter(level: int) -> None:
    filters = [f"other/{i}/+" for i in range(300)]

    (packet,) = _decode(wire.subscribe_packet(7, filters, 1, level), level)

    assert isinstance(packet, Subscribe)
    assert packet.packet_id == 7
    assert [s.topic_filter for s in packet.subscriptions] == filters
    assert {s.options.qos for s in packet.subscriptions} == {1}


@pytest.mark.parametrize(("level", "qos"), [(4, 0), (4, 1), (4, 2), (5, 0), (5, 2)])
def test_publish_template_frames(level: int, qos: int) -> None:
    template = wire.PublishTemplate("hb/x/1", b"p" * 200, qos, level)

    (packet,) = _decode(template.frame(513, b"q" * 200), level)

    assert isinstance(packet, Publish)
    assert (packet.topic, packet.qos, packet.payload) == ("hb/x/1", qos, b"q" * 200)
    assert packet.packet_id == (513 if qos else 0)


@pytest.mark.parametrize("level", [4, 5])
def test_acks_decode(level: int) -> None:
    puback, pubrel = _decode(wire.ack_packet(wire.PUBACK, 9) + wire.ack_packet(wire.PUBREL, 10), level)

    assert isinstance(puback, Puback) and puback.packet_id == 9
    assert isinstance(pubrel, Pubrel) and pubrel.packet_id == 10


def test_connack_receive_maximum_is_read() -> None:
    data = encode(Connack(session_present=False, reason_code=0, properties=Properties(receive_maximum=17)), 5)

    assert wire.parse_connack(data[2:], 5) == (0, 17)
    assert wire.parse_connack(b"\x00\x05", 4) == (5, None)


@pytest.mark.parametrize("level", [4, 5])
def test_suback_codes(level: int) -> None:
    data = encode(Suback(packet_id=3, reason_codes=(0, 1, 0x80)), level)

    assert wire.parse_suback(data[2:], level) == (3, bytes((0, 1, 0x80)))


@pytest.mark.parametrize("level", [4, 5])
def test_payload_offset_of_a_codec_encoded_publish(level: int) -> None:
    properties = Properties(user_properties=(("k", "v"),)) if level == 5 else Properties()
    packet = Publish(topic="a/b", payload=b"PAYLOAD", qos=1, packet_id=4, properties=properties)
    data = encode(packet, level)

    offset = wire.publish_payload_offset(data, 2, 1, level)

    assert data[offset:] == b"PAYLOAD"
