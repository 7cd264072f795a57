"""The codec's public API beyond the vectors: levels, errors on encode, patching, buffering."""

from __future__ import annotations

import pytest

from hookmq.mqtt.codec import MAX_PACKET_SIZE, Decoder, encode, encode_publish, patch_packet_id
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Properties,
    Puback,
    Publish,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Unsuback,
)

V5_CONNECT_BAD_FLAGS = b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x00\x00\x00\x00"


def test_defaults() -> None:
    decoder = Decoder()
    assert decoder.max_packet_size == MAX_PACKET_SIZE == 268_435_460
    assert decoder.protocol_level is None
    assert decoder.buffered == 0


def test_a_client_sets_the_level_itself() -> None:
    decoder = Decoder()
    decoder.protocol_level = 5
    assert decoder.feed(b"\x20\x03\x00\x00\x00") == [Connack()]


def test_a_bad_v5_connect_still_tells_its_level() -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(V5_CONNECT_BAD_FLAGS)
    assert caught.value.reason_code == 0x81
    assert decoder.protocol_level == 5


def test_an_unknown_protocol_leaves_the_level_unknown() -> None:
    decoder = Decoder()
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(b"\x10\x0d\x00\x04MQTT\x07\x02\x00\x00\x00\x00\x00")
    assert caught.value.reason_code == 0x84
    assert decoder.protocol_level is None


def test_bytearray_and_memoryview_input() -> None:
    data = encode(Publish("a", b"x", 1, packet_id=3), 4)
    decoder = Decoder(protocol_level=4)
    [first] = decoder.feed(bytearray(data))  # type: ignore[arg-type]
    [second] = decoder.feed(memoryview(data))  # type: ignore[arg-type]
    assert first == second == Publish("a", b"x", 1, packet_id=3)
    assert type(first.payload) is bytes  # type: ignore[union-attr]


def test_partial_packets_are_buffered_until_complete() -> None:
    data = encode(Publish("a/b", b"p" * 1000), 4)
    decoder = Decoder(protocol_level=4)
    assert decoder.feed(data[:1]) == []
    assert decoder.feed(data[1:3]) == []
    assert decoder.feed(data[3:500]) == []
    assert decoder.buffered == 500
    assert decoder.feed(data[500:] + b"\xc0") == [Publish("a/b", b"p" * 1000)]
    assert decoder.buffered == 1
    assert decoder.feed(b"\x00") == [Pingreq()]


def test_patch_packet_id() -> None:
    data, offset = encode_publish(Publish("t", b"body", 1, packet_id=1, properties=Properties(topic_alias=2)), 5)
    patched = patch_packet_id(data, offset, 0xBEEF)
    [packet] = Decoder(protocol_level=5).feed(patched)
    assert packet == Publish("t", b"body", 1, packet_id=0xBEEF, properties=Properties(topic_alias=2))


def test_v3_encoding_leaves_out_what_v5_alone_has() -> None:
    props = Properties(reason_string="nope")
    assert encode(Puback(1, 0x80, props), 4) == b"\x40\x02\x00\x01"
    assert encode(Disconnect(0x8B, props), 4) == b"\xe0\x00"
    assert encode(Unsuback(1, (0x11,), props), 4) == b"\xb0\x02\x00\x01"
    assert encode(Connack(0, True, Properties(receive_maximum=5)), 4) == b"\x20\x02\x01\x00"
    assert encode(Connack(0, True), 3) == b"\x20\x02\x00\x00"  # 3.1 has no session-present flag
    sub = Subscribe(1, (Subscription("a", SubscriptionOptions(1, True, True, 2)),))
    assert encode(sub, 4) == b"\x82\x06\x00\x01\x00\x01a\x01"


def test_connect_protocol_name_follows_the_level() -> None:
    assert encode(Connect("c", 3), 3)[2:10] == b"\x00\x06MQIsdp"
    assert encode(Connect("c"), 4)[2:8] == b"\x00\x04MQTT"


def test_encoding_what_cannot_exist_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="AUTH"):
        encode(Auth(), 4)
    with pytest.raises(ValueError, match="session_expiry_interval"):
        encode(Publish("a", properties=Properties(session_expiry_interval=1)), 5)
    with pytest.raises(ValueError, match="65535"):
        encode(Publish("a" * 70_000), 4)
    with pytest.raises(TypeError):
        encode("not a packet", 4)  # type: ignore[arg-type]


def test_error_messages_say_what_was_wrong() -> None:
    decoder = Decoder(protocol_level=4)
    with pytest.raises(ProtocolError, match="wildcards") as caught:
        decoder.feed(b"\x30\x05\x00\x03a/#")
    assert caught.value.reason_code == 0x90
    assert "0x90" in str(caught.value)


def test_non_minimal_remaining_length_is_accepted() -> None:
    assert Decoder(protocol_level=4).feed(b"\xc0\x80\x00") == [Pingreq()]
