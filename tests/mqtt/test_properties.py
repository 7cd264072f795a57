"""The MQTT 5 property table and the property block encoding."""

from __future__ import annotations

import dataclasses

import pytest

import hookmq.mqtt.properties as properties_module
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import NO_PROPERTIES, PacketType, Properties
from hookmq.mqtt.properties import (
    PROPERTY_SPECS,
    SPEC_BY_ID,
    WILL,
    PropertyId,
    PropertyType,
    clear_property_cache,
    decode_properties,
    encode_properties,
)

P = PacketType


def test_the_table_covers_every_properties_field_once() -> None:
    fields = {field.name for field in dataclasses.fields(Properties)}
    assert {spec.field for spec in PROPERTY_SPECS} == fields
    assert len(PROPERTY_SPECS) == len(PropertyId) == 27


def test_the_table_is_in_ascending_identifier_order() -> None:
    ids = [spec.id for spec in PROPERTY_SPECS]
    assert ids == sorted(ids)
    assert set(SPEC_BY_ID) == set(PropertyId)


@pytest.mark.parametrize(
    ("pid", "ptype", "contexts"),
    [
        (0x01, PropertyType.BYTE, {P.PUBLISH, WILL}),
        (0x0B, PropertyType.VARIABLE_BYTE_INTEGER, {P.PUBLISH, P.SUBSCRIBE}),
        (0x11, PropertyType.FOUR_BYTE_INTEGER, {P.CONNECT, P.CONNACK, P.DISCONNECT}),
        (0x13, PropertyType.TWO_BYTE_INTEGER, {P.CONNACK}),
        (0x15, PropertyType.UTF8_STRING, {P.CONNECT, P.CONNACK, P.AUTH}),
        (0x16, PropertyType.BINARY_DATA, {P.CONNECT, P.CONNACK, P.AUTH}),
        (0x18, PropertyType.FOUR_BYTE_INTEGER, {WILL}),
        (0x1C, PropertyType.UTF8_STRING, {P.CONNACK, P.DISCONNECT}),
        (0x1F, PropertyType.UTF8_STRING, {P.CONNACK, P.PUBACK, P.PUBREC, P.PUBREL, P.PUBCOMP, P.SUBACK,
                                          P.UNSUBACK, P.DISCONNECT, P.AUTH}),
        (0x23, PropertyType.TWO_BYTE_INTEGER, {P.PUBLISH}),
        (0x26, PropertyType.UTF8_STRING_PAIR, set(P) - {P.PINGREQ, P.PINGRESP} | {WILL}),
        (0x27, PropertyType.FOUR_BYTE_INTEGER, {P.CONNECT, P.CONNACK}),
        (0x2A, PropertyType.BYTE, {P.CONNACK}),
    ],
)
def test_spot_checks_against_the_specification(pid: int, ptype: PropertyType, contexts: set[int]) -> None:
    spec = SPEC_BY_ID[pid]
    assert spec.type is ptype
    assert set(spec.contexts) == contexts


def test_only_user_property_and_publish_subscription_identifiers_repeat() -> None:
    repeatable = {spec.id: set(spec.repeatable_in) for spec in PROPERTY_SPECS if spec.repeatable_in}
    assert set(repeatable) == {PropertyId.USER_PROPERTY, PropertyId.SUBSCRIPTION_IDENTIFIER}
    assert repeatable[PropertyId.SUBSCRIPTION_IDENTIFIER] == {P.PUBLISH}


def test_no_properties_encode_to_a_single_zero_byte() -> None:
    assert encode_properties(NO_PROPERTIES, P.PUBLISH) == b"\x00"
    assert encode_properties(Properties(), P.CONNECT) == b"\x00"


def test_properties_are_encoded_in_ascending_identifier_order() -> None:
    props = Properties(user_properties=(("a", "1"),), topic_alias=7, message_expiry_interval=1,
                       payload_format_indicator=1)
    block = encode_properties(props, P.PUBLISH)
    assert block == b"\x11" + b"\x01\x01" + b"\x02\x00\x00\x00\x01" + b"\x23\x00\x07" + b"\x26\x00\x01a\x00\x011"


def test_zero_values_are_emitted_and_absent_ones_are_not() -> None:
    block = encode_properties(Properties(retain_available=0), P.CONNACK)
    assert block == b"\x02\x25\x00"


def test_encoding_a_property_the_packet_does_not_allow_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="topic_alias"):
        encode_properties(Properties(topic_alias=1), P.CONNECT)


def test_decode_returns_the_shared_empty_value() -> None:
    props, pos = decode_properties(b"\x00", 0, 1, P.PUBLISH)
    assert props is NO_PROPERTIES
    assert pos == 1


def test_decode_round_trips_a_long_block() -> None:
    props = Properties(user_properties=tuple((f"k{i}", "v" * 20) for i in range(10)), reason_string="r")
    block = encode_properties(props, P.PUBACK)
    assert len(block) > 130  # a two-byte property length
    assert decode_properties(block, 0, len(block), P.PUBACK) == (props, len(block))


@pytest.mark.parametrize(
    ("block", "context", "code"),
    [
        (b"\x02\x18\x00", P.PUBLISH, 0x81),  # will delay interval outside the will
        (b"\x03\x23\x00\x00", P.PUBLISH, 0x94),  # topic alias 0
        (b"\x05\x0b\x01", P.SUBSCRIBE, 0x81),  # the block length runs past the end
        (b"\x04\x0b\x01\x0b\x02", P.SUBSCRIBE, 0x82),  # one identifier only in SUBSCRIBE
        (b"\x02\x24\x02", P.CONNACK, 0x82),  # maximum QoS 2 is never sent
        (b"\x03\x21\x00\x00", P.CONNECT, 0x82),  # receive maximum 0
    ],
)
def test_decode_rejects(block: bytes, context: int, code: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_properties(block, 0, len(block), context)
    assert caught.value.reason_code == code


def test_subscription_identifiers_accumulate_in_publish() -> None:
    block = b"\x04\x0b\x01\x0b\x02"
    props, _ = decode_properties(block, 0, len(block), P.PUBLISH)
    assert props.subscription_identifiers == (1, 2)


def test_a_repeated_block_decodes_to_the_same_shared_object() -> None:
    block = encode_properties(Properties(content_type="a/b", message_expiry_interval=9), P.PUBLISH)
    first, _ = decode_properties(block, 0, len(block), P.PUBLISH)
    second, _ = decode_properties(bytes(block), 0, len(block), P.PUBLISH)
    assert first is second
    assert first == Properties(content_type="a/b", message_expiry_interval=9)


def test_the_same_block_is_checked_per_context() -> None:
    block = encode_properties(Properties(topic_alias=1), P.PUBLISH)
    decode_properties(block, 0, len(block), P.PUBLISH)
    with pytest.raises(ProtocolError):
        decode_properties(block, 0, len(block), P.CONNECT)


def test_the_caches_stay_bounded() -> None:
    clear_property_cache()
    for index in range(3000):
        props = Properties(message_expiry_interval=index)
        block = encode_properties(props, P.PUBLISH)
        assert decode_properties(block, 0, len(block), P.PUBLISH)[0] == props
    assert len(properties_module._CACHE) <= 1024
    assert len(properties_module._ENCODED) <= 1024
