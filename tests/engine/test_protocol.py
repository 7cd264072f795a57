"""The per-connection protocol state is sans-I/O: bytes and a clock in, packets, bytes and deadlines out.

No event loop here: every test drives `ProtocolState` with bytes and chosen clocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hookmq.engine import protocol as protocol_module
from hookmq.engine.message import Message
from hookmq.engine.protocol import PRE_CONNECT_MAX_PACKET, ProtocolState
from hookmq.engine.settings import MqttSettings
from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import Connect, Pingreq, Properties, Publish

SETTINGS = MqttSettings(max_packet_size=10_000_000, topic_alias_maximum=10)


def connected(level: int = 5, keep_alive: int = 10, properties: Properties | None = None,
              settings: MqttSettings = SETTINGS) -> ProtocolState:
    state = ProtocolState(settings, now=100.0)
    connect = Connect("c", level, keep_alive=keep_alive, properties=properties or Properties())
    [packet] = state.feed(encode(connect, level))
    assert isinstance(packet, Connect)
    state.accept_connect(packet, settings)
    state.established(packet, settings)
    return state


def test_imports_no_event_loop_socket_or_clock() -> None:
    # The source, also in a compiled build (where __file__ is the extension, installed beside it).
    tree = ast.parse(Path(protocol_module.__file__).with_name("protocol.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not imported & {"asyncio", "socket", "time", "ssl", "selectors"}


def test_bytes_in_packets_out_and_the_packet_limit_lifts_at_connect() -> None:
    state = ProtocolState(SETTINGS, now=0.0)
    assert state.decoder.max_packet_size == PRE_CONNECT_MAX_PACKET
    data = encode(Connect("c", 5, keep_alive=30), 5)
    assert state.feed(data[:3]) == []  # a part of a packet is held
    [connect] = state.feed(data[3:])
    assert isinstance(connect, Connect)
    state.accept_connect(connect, SETTINGS)
    state.established(connect, SETTINGS)
    assert state.level == 5 and state.decoder.max_packet_size == SETTINGS.max_packet_size
    assert state.receive(encode(Pingreq(), 5), now=5.0) == [Pingreq()]


def test_keep_alive_deadline_from_the_clock_handed_in() -> None:
    state = connected(keep_alive=10)
    state.receive(encode(Pingreq(), 5), now=1000.0)
    assert not state.keep_alive_expired(1015.0)  # 1.5 x 10 s is the limit
    assert state.keep_alive_expired(1015.1)
    assert not connected(keep_alive=0).keep_alive_expired(10**9)  # no keep-alive, never


def test_keep_alive_lowered_to_the_maximum() -> None:
    settings = MqttSettings(max_keepalive=60)
    assert connected(keep_alive=600, settings=settings).keep_alive == 60
    assert connected(keep_alive=0, settings=settings).keep_alive == 60


def test_connect_negotiates_the_client_limits() -> None:
    state = connected(properties=Properties(receive_maximum=5, maximum_packet_size=200, topic_alias_maximum=2))
    assert (state.send_quota, state.max_packet_out, state.alias_out_max) == (5, 200, 2)


def test_inbound_topic_aliases_and_server_only_properties() -> None:
    state = connected()
    set_alias = Publish("long/topic", b"1", 0, properties=Properties(topic_alias=3))
    assert state.check_publish(set_alias, SETTINGS).topic == "long/topic"
    used = state.check_publish(Publish("", b"2", 0, properties=Properties(topic_alias=3)), SETTINGS)
    assert used.topic == "long/topic"
    with pytest.raises(ProtocolError) as unknown:
        state.check_publish(Publish("", b"3", 0, properties=Properties(topic_alias=4)), SETTINGS)
    assert unknown.value.reason_code == 0x82
    with pytest.raises(ProtocolError) as too_big:
        state.check_publish(Publish("t", b"4", 0, properties=Properties(topic_alias=11)), SETTINGS)
    assert too_big.value.reason_code == 0x94
    with pytest.raises(ProtocolError) as server_only:
        state.check_publish(Publish("t", b"5", 0, properties=Properties(subscription_identifiers=(1,))), SETTINGS)
    assert server_only.value.reason_code == 0x82
    with pytest.raises(ProtocolError) as qos:
        state.check_publish(Publish("t", b"6", 2), MqttSettings(maximum_qos=1))
    assert qos.value.reason_code == 0x9B


def test_publish_bytes_share_the_message_encoding_and_respect_maximum_packet_size() -> None:
    state = connected(properties=Properties(maximum_packet_size=100))
    message = Message("t", b"x" * 10, 1, False)
    first = state.publish_bytes(message, 1, False, (), now=0.0, packet_id=7)
    again = state.publish_bytes(message, 1, False, (), now=0.0, packet_id=8)
    assert first is not None and again is not None
    decoder = Decoder(protocol_level=5)
    [one, two] = decoder.feed(first + again)
    assert isinstance(one, Publish) and isinstance(two, Publish)
    assert (one.packet_id, two.packet_id) == (7, 8) and one.payload == two.payload == b"x" * 10
    assert len(first) == len(again) and sum(a != b for a, b in zip(first, again, strict=True)) == 1
    assert message.wire(5, 1, False, (), 0.0)[0] is message.wire(5, 1, False, (), 1.0)[0]  # encoded once, shared
    assert state.publish_bytes(Message("t", b"x" * 200, 0, False), 0, False, (), now=0.0) is None


def test_outgoing_topic_aliases_within_the_clients_maximum() -> None:
    state = connected(properties=Properties(topic_alias_maximum=1))
    decoder = Decoder(protocol_level=5)
    sent = [state.publish_bytes(Message(topic, b"p", 0, False), 0, False, (), now=0.0)
            for topic in ("a/long/topic", "a/long/topic", "other")]
    packets = [decoder.feed(data)[0] for data in sent if data is not None]
    assert [(p.topic, p.properties.topic_alias) for p in packets if isinstance(p, Publish)] == [
        ("a/long/topic", 1), ("", 1), ("other", None)]
