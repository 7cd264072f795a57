"""The binary record encoding round-trips every field and rejects damaged blobs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookmq.mqtt.packets import Properties, Publish, SubscriptionOptions, Will
from hookmq.store.records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from hookmq.store.serialize import (
    FormatError,
    decode_message,
    decode_outgoing,
    decode_session,
    decode_subscription,
    encode_message,
    encode_outgoing,
    encode_session,
    encode_subscription,
)
from hookmq.testing.store_contract import sample_message, sample_session

texts = st.text(max_size=30)
u16 = st.integers(0, 65_535)
u32 = st.integers(0, 2**32 - 1)
maybe = st.one_of

properties = st.builds(
    Properties,
    payload_format_indicator=maybe(st.none(), st.integers(0, 1)),
    message_expiry_interval=maybe(st.none(), u32),
    content_type=maybe(st.none(), texts),
    response_topic=maybe(st.none(), texts),
    correlation_data=maybe(st.none(), st.binary(max_size=20)),
    subscription_identifiers=st.tuples(*[st.integers(1, 268_435_455)] * 2) | st.just(()),
    session_expiry_interval=maybe(st.none(), u32),
    receive_maximum=maybe(st.none(), st.integers(1, 65_535)),
    topic_alias=maybe(st.none(), u16),
    user_properties=st.lists(st.tuples(texts, texts), max_size=4).map(tuple),
    reason_string=maybe(st.none(), texts),
)
publishes = st.builds(
    Publish,
    topic=texts,
    payload=st.binary(max_size=200),
    qos=st.integers(0, 2),
    retain=st.booleans(),
    dup=st.booleans(),
    packet_id=u16,
    properties=properties,
)
times = st.floats(0, 4e9, allow_nan=False)
messages = st.builds(StoredMessage, publish=publishes, received_at=times, expiry_at=maybe(st.none(), times),
                     identity=maybe(st.none(), st.binary(max_size=32)))
wills = st.builds(Will, topic=texts, payload=st.binary(max_size=50), qos=st.integers(0, 2), retain=st.booleans(), properties=properties)
sessions = st.builds(
    SessionRecord,
    client_id=texts,
    protocol_level=st.integers(3, 5),
    clean_start=st.booleans(),
    expiry_interval=u32,
    disconnected_at=maybe(st.none(), times),
    will=maybe(st.none(), wills),
    will_delay=u32,
    username=maybe(st.none(), texts),
    keep_alive=u16,
    properties=properties,
    node=maybe(st.none(), texts),
)
options = st.builds(
    SubscriptionOptions,
    qos=st.integers(0, 2),
    no_local=st.booleans(),
    retain_as_published=st.booleans(),
    retain_handling=st.integers(0, 2),
)
subscriptions = st.builds(
    SubscriptionRecord, topic_filter=texts, options=options, identifier=maybe(st.none(), st.integers(1, 268_435_455))
)
outgoing = st.builds(
    OutgoingRecord, packet_id=st.integers(1, 65_535), message=messages, state=st.sampled_from(["publish", "pubrel"]),
    sent_count=st.integers(0, 1000),
)


@given(messages)
def test_message_round_trip(message: StoredMessage) -> None:
    assert decode_message(encode_message(message)) == message


@given(sessions)
def test_session_round_trip(record: SessionRecord) -> None:
    assert decode_session(encode_session(record)) == record


@given(subscriptions)
def test_subscription_round_trip(record: SubscriptionRecord) -> None:
    assert decode_subscription(encode_subscription(record)) == record


@given(outgoing)
def test_outgoing_round_trip(record: OutgoingRecord) -> None:
    assert decode_outgoing(encode_outgoing(record)) == record


def test_encoding_is_compact() -> None:
    plain = StoredMessage(Publish("sensors/1/temp", b"21.5", qos=1), received_at=0.0)
    # version + bits + packet id + time + expiry flag + topic + payload + no properties
    assert len(encode_message(plain)) == 1 + 1 + 1 + 8 + 1 + 15 + 5 + 1


@pytest.mark.parametrize(
    ("decode", "blob"),
    [
        (decode_message, encode_message(sample_message())),
        (decode_session, encode_session(sample_session())),
        (decode_subscription, encode_subscription(SubscriptionRecord("a/b", identifier=5))),
    ],
)
def test_damaged_blobs_raise_format_error(decode: Any, blob: bytes) -> None:
    with pytest.raises(FormatError):
        decode(blob[:-1])
    with pytest.raises(FormatError):
        decode(blob + b"\x00")
    with pytest.raises(FormatError, match="format"):
        decode(b"\x09" + blob[1:])
    with pytest.raises(FormatError):
        decode(b"")
