"""Property-based codec tests: round trips, arbitrary chunking and fuzzed input."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookmq.mqtt.codec import Decoder, encode, encode_publish, encode_publish_fields
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import (
    PACKET_TYPES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)
from hookmq.mqtt.properties import PROPERTY_SPECS, WILL, PropertyId, PropertySpec, PropertyType
from hookmq.mqtt.reason_codes import REASON_CODES_BY_PACKET_TYPE, SUBACK_V3_CODES

LEVELS = st.sampled_from([3, 4, 5])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# MQTT text: any Unicode scalar value but U+0000 (surrogates cannot be encoded at all).
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.text(_CHARS, max_size=12)
_LEVEL_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#/")
level_text = st.text(_LEVEL_CHARS, max_size=6)
topic_names = st.lists(level_text, min_size=1, max_size=4).map("/".join).filter(bool)
u16 = st.integers(0, 0xFFFF)
packet_ids = st.integers(1, 0xFFFF)


@st.composite
def topic_filters(draw: st.DrawFn, shared: bool = False) -> str:
    """A valid filter; with ``shared`` sometimes a ``$share/<group>/`` one."""
    levels = draw(st.lists(st.one_of(st.just("+"), level_text), min_size=1, max_size=4))
    topic_filter = "/".join(levels)
    if draw(st.booleans()):
        topic_filter = f"{topic_filter}/#" if topic_filter else "#"
    if not topic_filter:
        topic_filter = "+"
    if shared and draw(st.booleans()):
        group = draw(st.text(_LEVEL_CHARS, min_size=1, max_size=5))
        topic_filter = f"$share/{group}/{topic_filter}"
    return topic_filter


_SPECIAL_VALUES: dict[PropertyId, st.SearchStrategy[Any]] = {
    PropertyId.PAYLOAD_FORMAT_INDICATOR: st.integers(0, 1),
    PropertyId.REQUEST_PROBLEM_INFORMATION: st.integers(0, 1),
    PropertyId.REQUEST_RESPONSE_INFORMATION: st.integers(0, 1),
    PropertyId.MAXIMUM_QOS: st.integers(0, 1),
    PropertyId.RETAIN_AVAILABLE: st.integers(0, 1),
    PropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE: st.integers(0, 1),
    PropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE: st.integers(0, 1),
    PropertyId.SHARED_SUBSCRIPTION_AVAILABLE: st.integers(0, 1),
    PropertyId.RECEIVE_MAXIMUM: st.integers(1, 0xFFFF),
    PropertyId.TOPIC_ALIAS: st.integers(1, 0xFFFF),
    PropertyId.MAXIMUM_PACKET_SIZE: st.integers(1, 0xFFFFFFFF),
    PropertyId.RESPONSE_TOPIC: topic_names,
}
_TYPE_VALUES: dict[PropertyType, st.SearchStrategy[Any]] = {
    PropertyType.BYTE: st.integers(0, 0xFF),
    PropertyType.TWO_BYTE_INTEGER: u16,
    PropertyType.FOUR_BYTE_INTEGER: st.integers(0, 0xFFFFFFFF),
    PropertyType.VARIABLE_BYTE_INTEGER: st.integers(1, 268_435_455),
    PropertyType.UTF8_STRING: text,
    PropertyType.BINARY_DATA: st.binary(max_size=10),
    PropertyType.UTF8_STRING_PAIR: st.tuples(text, text),
}


def _values(spec: PropertySpec, context: int) -> st.SearchStrategy[Any]:
    value = _SPECIAL_VALUES.get(spec.id, _TYPE_VALUES[spec.type])
    if spec.id in (PropertyId.USER_PROPERTY, PropertyId.SUBSCRIPTION_IDENTIFIER):
        most = 3 if context in spec.repeatable_in else 1
        return st.lists(value, max_size=most).map(tuple)
    return st.none() | value


@st.composite
def properties(draw: st.DrawFn, context: int) -> Properties:
    """Valid properties for a packet type (or :data:`WILL`), most often few or none."""
    if draw(st.booleans()):
        return Properties()
    values = {spec.field: draw(_values(spec, context)) for spec in PROPERTY_SPECS if context in spec.contexts}
    if values.get("authentication_data") is not None and values.get("authentication_method") is None:
        values["authentication_method"] = "m"
    return Properties(**values)


def _props(level: int, context: int) -> st.SearchStrategy[Properties]:
    return properties(context) if level == 5 else st.just(Properties())


@st.composite
def connects(draw: st.DrawFn, level: int) -> Connect:
    """A CONNECT valid at ``level``."""
    username = draw(st.none() | text)
    password = draw(st.none() | st.binary(max_size=8))
    if level < 5 and username is None:
        password = None
    will = None
    if draw(st.booleans()):
        will = Will(draw(topic_names), draw(st.binary(max_size=8)), draw(st.integers(0, 2)), draw(st.booleans()),
                    draw(_props(level, WILL)))
    return Connect(draw(text), level, "MQIsdp" if level == 3 else "MQTT", draw(st.booleans()), draw(u16), username,
                   password, will, draw(_props(level, PacketType.CONNECT)))


@st.composite
def publishes(draw: st.DrawFn, level: int) -> Publish:
    """A PUBLISH valid at ``level`` (v5: sometimes an empty topic with an alias)."""
    qos = draw(st.integers(0, 2))
    props = draw(_props(level, PacketType.PUBLISH))
    topic = draw(topic_names)
    if level == 5 and props.topic_alias is not None and draw(st.booleans()):
        topic = ""
    return Publish(topic, draw(st.binary(max_size=300)), qos, draw(st.booleans()), qos > 0 and draw(st.booleans()),
                   draw(packet_ids) if qos else 0, props)


def _code(level: int, ptype: PacketType) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(REASON_CODES_BY_PACKET_TYPE[ptype])) if level == 5 else st.just(0)


def acks(cls: type[Puback | Pubrec | Pubrel | Pubcomp], level: int) -> st.SearchStrategy[Packet]:
    """PUBACK, PUBREC, PUBREL or PUBCOMP (v3: no code, no properties)."""
    ptype = PACKET_TYPES[cls]
    return st.builds(cls, packet_ids, _code(level, ptype), _props(level, ptype))


@st.composite
def subscribes(draw: st.DrawFn, level: int) -> Subscribe:
    """A SUBSCRIBE with 1-4 filters."""
    entries = []
    for _ in range(draw(st.integers(1, 4))):
        topic_filter = draw(topic_filters(shared=level == 5))
        options = SubscriptionOptions(draw(st.integers(0, 2)))
        if level == 5:
            options = SubscriptionOptions(options.qos, not topic_filter.startswith("$share/") and draw(st.booleans()),
                                          draw(st.booleans()), draw(st.integers(0, 2)))
        entries.append(Subscription(topic_filter, options))
    return Subscribe(draw(packet_ids), tuple(entries), draw(_props(level, PacketType.SUBSCRIBE)))


@st.composite
def subacks(draw: st.DrawFn, level: int) -> Suback:
    """A SUBACK with 1-4 codes."""
    allowed = REASON_CODES_BY_PACKET_TYPE[PacketType.SUBACK] if level == 5 else SUBACK_V3_CODES
    codes = draw(st.lists(st.sampled_from(sorted(allowed)), min_size=1, max_size=4))
    return Suback(draw(packet_ids), tuple(codes), draw(_props(level, PacketType.SUBACK)))


@st.composite
def unsubscribes(draw: st.DrawFn, level: int) -> Unsubscribe:
    """An UNSUBSCRIBE with 1-4 filters."""
    filters = draw(st.lists(topic_filters(shared=level == 5), min_size=1, max_size=4))
    return Unsubscribe(draw(packet_ids), tuple(filters), draw(_props(level, PacketType.UNSUBSCRIBE)))


@st.composite
def unsubacks(draw: st.DrawFn, level: int) -> Unsuback:
    """An UNSUBACK (codes only in v5)."""
    if level < 5:
        return Unsuback(draw(packet_ids))
    codes = draw(st.lists(_code(5, PacketType.UNSUBACK), max_size=4))
    return Unsuback(draw(packet_ids), tuple(codes), draw(properties(PacketType.UNSUBACK)))


@st.composite
def connacks(draw: st.DrawFn, level: int) -> Connack:
    """A CONNACK (v3.1 has no session-present flag)."""
    code = draw(_code(5, PacketType.CONNACK) if level == 5 else st.integers(0, 5))
    return Connack(code, level > 3 and draw(st.booleans()), draw(_props(level, PacketType.CONNACK)))


#: A strategy for each packet class, given the level.
STRATEGIES: dict[type, Callable[[int], st.SearchStrategy[Any]]] = {
    Connect: connects,
    Connack: connacks,
    Publish: publishes,
    Puback: partial(acks, Puback),
    Pubrec: partial(acks, Pubrec),
    Pubrel: partial(acks, Pubrel),
    Pubcomp: partial(acks, Pubcomp),
    Subscribe: subscribes,
    Suback: subacks,
    Unsubscribe: unsubscribes,
    Unsuback: unsubacks,
    Pingreq: lambda level: st.just(Pingreq()),
    Pingresp: lambda level: st.just(Pingresp()),
    Disconnect: lambda level: st.builds(Disconnect, _code(level, PacketType.DISCONNECT),
                                        _props(level, PacketType.DISCONNECT)),
    Auth: lambda level: st.builds(Auth, _code(5, PacketType.AUTH), properties(PacketType.AUTH)),
}
CASES = [(level, cls) for level in (3, 4, 5) for cls in STRATEGIES if level == 5 or cls is not Auth]


def non_connect_packets(level: int) -> st.SearchStrategy[Packet]:
    """Every packet type but CONNECT, valid at ``level``."""
    return st.one_of([make(level) for cls, make in STRATEGIES.items()
                      if cls is not Connect and (level == 5 or cls is not Auth)])


@st.composite
def level_and_packet(draw: st.DrawFn) -> tuple[int, Packet]:
    """A protocol level and a packet valid at it, CONNECT included."""
    level, cls = draw(st.sampled_from(CASES))
    packet: Packet = draw(STRATEGIES[cls](level))
    return level, packet


def _decoder_for(level: int, packet: Packet) -> Decoder:
    return Decoder() if isinstance(packet, Connect) else Decoder(protocol_level=level)


@pytest.mark.parametrize(("level", "cls"), CASES, ids=[f"v{level}-{cls.__name__}" for level, cls in CASES])
def test_encode_then_decode_is_identity(level: int, cls: type) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STRATEGIES[cls](level))
    def round_trip(packet: Packet) -> None:
        data = encode(packet, level)
        assert _decoder_for(level, packet).feed(data) == [packet]

    round_trip()


@FAST
@given(LEVELS.flatmap(lambda level: st.tuples(st.just(level), publishes(level))), packet_ids)
def test_encode_publish_offset_points_at_the_packet_id(case: tuple[int, Publish], new_id: int) -> None:
    level, packet = case
    data, offset = encode_publish(packet, level)
    assert data == encode(packet, level)
    if packet.qos == 0:
        assert offset == -1
        return
    assert int.from_bytes(data[offset:offset + 2], "big") == packet.packet_id
    patched = data[:offset] + new_id.to_bytes(2, "big") + data[offset + 2:]
    [decoded] = Decoder(protocol_level=level).feed(patched)
    assert isinstance(decoded, Publish)
    assert decoded.packet_id == new_id
    assert decoded.payload == packet.payload


@st.composite
def streams_and_cuts(draw: st.DrawFn) -> tuple[int, list[Packet], bytes, list[int]]:
    """A CONNECT then several packets, their encoding, and points to cut it at."""
    level = draw(LEVELS)
    packets: list[Packet] = [draw(connects(level)), *draw(st.lists(non_connect_packets(level), max_size=8))]
    data = b"".join(encode(packet, level) for packet in packets)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return level, packets, data, cuts


@FAST
@given(streams_and_cuts())
def test_any_split_of_a_stream_yields_the_same_packets(case: tuple[int, list[Packet], bytes, list[int]]) -> None:
    _, packets, data, cuts = case
    decoder = Decoder()
    decoded: list[Packet] = []
    for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
        decoded += decoder.feed(data[start:stop])
    assert decoded == packets
    assert decoder.buffered == 0


@FAST
@given(streams_and_cuts())
def test_byte_at_a_time_yields_the_same_packets(case: tuple[int, list[Packet], bytes, list[int]]) -> None:
    _, packets, data, _ = case
    decoder = Decoder()
    decoded: list[Packet] = []
    for index in range(len(data)):
        decoded += decoder.feed(data[index:index + 1])
    assert decoded == packets


def _feed_all(decoder: Decoder, chunks: list[bytes]) -> None:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        try:
            decoder.feed(chunk)
        except ProtocolError as error:
            assert 0x80 <= error.reason_code <= 0xA2
            assert error.message
            return
        # Only what was fed can be held back: no hidden growth.
        assert decoder.buffered <= total


@settings(max_examples=400, deadline=None)
@given(st.none() | LEVELS, st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_raise_only_protocol_error(level: int | None, chunks: list[bytes]) -> None:
    _feed_all(Decoder(max_packet_size=4096, protocol_level=level), chunks)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(level_and_packet(), st.data())
def test_mutated_packets_raise_only_protocol_error(case: tuple[int, Packet], data: st.DataObject) -> None:
    level, packet = case
    raw = bytearray(encode(packet, level))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _feed_all(_decoder_for(level, packet), [bytes(raw[:cut]), bytes(raw[cut:])])


def test_every_packet_type_is_generated_at_every_level() -> None:
    assert set(STRATEGIES) == set(PACKET_TYPES)
    assert len(CASES) == 14 + 14 + 15


@FAST
@given(LEVELS.flatmap(lambda level: st.tuples(st.just(level), publishes(level))))
def test_encode_publish_fields_is_encode_publish(case: tuple[int, Publish]) -> None:
    """The engine encodes a message's PUBLISH from its fields (no Publish built): the same bytes and offset."""
    level, p = case
    assert encode_publish_fields(p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id, p.properties,
                                 level) == encode_publish(p, level)
