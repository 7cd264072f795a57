"""Cross-checks against independent MQTT implementations (used only by these tests).

* ``mqtt5`` (a Rust codec): every v5 packet type it writes decodes to the packet we expect,
  and every packet we encode it reads back as the same packet.
* paho-mqtt: a real paho client talks to a tiny socket server in the test that speaks only
  through our codec; we decode what paho sends (CONNECT, SUBSCRIBE, PUBLISH, PUBACK,
  UNSUBSCRIBE, PINGREQ, DISCONNECT) and paho accepts what we send (CONNACK, SUBACK, PUBLISH,
  PUBACK, UNSUBACK).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mqtt5
import paho.mqtt.client as paho
import pytest
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
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

P = Properties
SO = SubscriptionOptions
Q = mqtt5.QoS

# (what mqtt5 builds, what it means in hookmq's vocabulary)
MQTT5_PAIRS: list[tuple[Any, Packet]] = [
    (mqtt5.ConnectPacket("cid", username="u", password=b"p", keep_alive=30, session_expiry_interval=60),
     Connect("cid", 5, "MQTT", False, 30, "u", b"p", properties=P(session_expiry_interval=60))),
    (mqtt5.ConnectPacket("w", clean_start=True, will=mqtt5.Will("w/t", payload=b"bye", qos=Q.AT_LEAST_ONCE, retain=True,
                                                                will_delay_interval=5, content_type="text/plain",
                                                                user_properties=[("a", "b")])),
     Connect("w", 5, "MQTT", True, 0, will=Will("w/t", b"bye", 1, True, P(
         content_type="text/plain", will_delay_interval=5, user_properties=(("a", "b"),))))),
    (mqtt5.ConnectPacket("a", authentication_method="SCRAM", authentication_data=b"\x01", receive_max=10,
                         topic_alias_max=5, max_packet_size=1000, request_response_info=True,
                         user_properties=[("k", "v")]),
     Connect("a", 5, "MQTT", False, 0, properties=P(
         authentication_method="SCRAM", authentication_data=b"\x01", request_response_information=1,
         receive_maximum=10, topic_alias_maximum=5, user_properties=(("k", "v"),), maximum_packet_size=1000))),
    (mqtt5.ConnAckPacket(session_present=True, assigned_client_id="x", receive_max=20, max_qos=Q.AT_LEAST_ONCE,
                         retain_available=False, topic_alias_max=3, server_keep_alive=10, reason_str="ok"),
     Connack(0, True, P(assigned_client_identifier="x", server_keep_alive=10, reason_string="ok", receive_maximum=20,
                        topic_alias_maximum=3, maximum_qos=1, retain_available=0))),
    (mqtt5.ConnAckPacket(reason_code=mqtt5.ConnAckReasonCode.NOT_AUTHORIZED), Connack(0x87)),
    (mqtt5.PublishPacket("a/b", b"x"), Publish("a/b", b"x")),
    (mqtt5.PublishPacket("a/b", b"x" * 300, qos=Q.EXACTLY_ONCE, retain=True, packet_id=9, duplicate=True),
     Publish("a/b", b"x" * 300, 2, True, True, 9)),
    (mqtt5.PublishPacket("t", b"{}", qos=Q.AT_LEAST_ONCE, packet_id=1, payload_format_indicator=1,
                         message_expiry_interval=30, content_type="application/json", response_topic="r/t",
                         correlation_data=b"c", subscription_ids=[1, 300], topic_alias=4,
                         user_properties=[("k", "1"), ("k", "2")]),
     Publish("t", b"{}", 1, packet_id=1, properties=P(
         payload_format_indicator=1, message_expiry_interval=30, content_type="application/json",
         response_topic="r/t", correlation_data=b"c", subscription_identifiers=(1, 300), topic_alias=4,
         user_properties=(("k", "1"), ("k", "2"))))),
    (mqtt5.PubAckPacket(1), Puback(1)),
    (mqtt5.PubAckPacket(2, reason_code=mqtt5.PubAckReasonCode.NO_MATCHING_SUBSCRIBERS, reason_str="none"),
     Puback(2, 0x10, P(reason_string="none"))),
    (mqtt5.PubRecPacket(3, reason_code=mqtt5.PubRecReasonCode.QUOTA_EXCEEDED), Pubrec(3, 0x97)),
    (mqtt5.PubRelPacket(4), Pubrel(4)),
    (mqtt5.PubCompPacket(5, reason_code=mqtt5.PubCompReasonCode.PACKET_ID_NOT_FOUND), Pubcomp(5, 0x92)),
    (mqtt5.SubscribePacket(6, [mqtt5.TopicFilter("a/+", max_qos=Q.AT_LEAST_ONCE, no_local=True,
                                                 retain_as_published=False, retain_handling=mqtt5.RetainHandling(2)),
                               mqtt5.TopicFilter("$share/g/x/#")], subscription_id=7),
     Subscribe(6, (Subscription("a/+", SO(1, True, False, 2)), Subscription("$share/g/x/#", SO(2, False, True, 0))),
               P(subscription_identifiers=(7,)))),
    (mqtt5.SubAckPacket(6, [mqtt5.SubAckReasonCode(0), mqtt5.SubAckReasonCode(1), mqtt5.SubAckReasonCode(0x80)],
                        reason_str="r"),
     Suback(6, (0, 1, 0x80), P(reason_string="r"))),
    (mqtt5.UnsubscribePacket(8, ["a", "b/#"], user_properties=[("u", "v")]),
     Unsubscribe(8, ("a", "b/#"), P(user_properties=(("u", "v"),)))),
    (mqtt5.UnsubAckPacket(8, [mqtt5.UnsubAckReasonCode(0), mqtt5.UnsubAckReasonCode(0x11)]), Unsuback(8, (0, 0x11))),
    (mqtt5.PingReqPacket(), Pingreq()),
    (mqtt5.PingRespPacket(), Pingresp()),
    (mqtt5.DisconnectPacket(), Disconnect()),
    (mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode.SERVER_SHUTTING_DOWN, session_expiry_interval=0,
                            reason_str="bye"),
     Disconnect(0x8B, P(session_expiry_interval=0, reason_string="bye"))),
    (mqtt5.AuthPacket(reason_code=mqtt5.AuthReasonCode.CONTINUE_AUTHENTICATION, authentication_method="SCRAM",
                      authentication_data=b"x"),
     Auth(0x18, P(authentication_method="SCRAM", authentication_data=b"x"))),
    (mqtt5.AuthPacket(), Auth()),
]
_IDS = [f"{index}-{type(ours).__name__}" for index, (_, ours) in enumerate(MQTT5_PAIRS)]


def _decode_v5(data: bytes, packet: Packet) -> list[Packet]:
    decoder = Decoder() if isinstance(packet, Connect) else Decoder(protocol_level=5)
    return decoder.feed(data)


@pytest.mark.parametrize(("theirs", "ours"), MQTT5_PAIRS, ids=_IDS)
def test_we_decode_what_mqtt5_writes(theirs: Any, ours: Packet) -> None:
    assert _decode_v5(theirs.write(), ours) == [ours]


# mqtt5 refuses an AUTH of remaining length 0, which MQTT 5.0 §3.15.2.2.1 allows and which is
# our (shortest) form of AUTH success without properties; see test_empty_auth_forms below.
_READABLE = [pair for pair in MQTT5_PAIRS if pair[1] != Auth()]


@pytest.mark.parametrize(("theirs", "ours"), _READABLE, ids=[f"{type(o).__name__}-{i}" for i, (_, o) in enumerate(_READABLE)])
def test_mqtt5_reads_what_we_encode(theirs: Any, ours: Packet) -> None:
    data = encode(ours, 5)
    parsed, consumed = mqtt5.read(memoryview(data))
    assert consumed == len(data)
    assert parsed == theirs


def test_empty_auth_forms() -> None:
    assert encode(Auth(), 5) == b"\xf0\x00"
    assert Decoder(protocol_level=5).feed(b"\xf0\x00" + mqtt5.AuthPacket().write()) == [Auth(), Auth()]
    with pytest.raises(ValueError, match="property length"):
        mqtt5.read(memoryview(b"\xf0\x00"))


# -- paho-mqtt ------------------------------------------------------------------------------


@dataclass
class FakeBroker:
    """A one-connection server that speaks only through hookmq's codec."""

    listener: socket.socket
    received: list[Packet] = field(default_factory=list)
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.listener.getsockname()[1])

    def serve_one(self) -> None:
        """Accept one client and answer it until it disconnects."""
        try:
            connection, _ = self.listener.accept()
            with connection:
                connection.settimeout(10)
                self._converse(connection)
        except BaseException as error:  # reported by the test thread
            self.error = error
        finally:
            self.finished.set()

    def conversation(self) -> list[Packet]:
        """Wait for the client to leave; return what it sent, pings left out (paho pings at will)."""
        assert self.finished.wait(10), "the client never disconnected"
        assert self.error is None, self.error
        return [packet for packet in self.received if not isinstance(packet, Pingreq)]

    def _converse(self, connection: socket.socket) -> None:
        decoder = Decoder()
        while chunk := connection.recv(4096):
            for packet in decoder.feed(chunk):
                self.received.append(packet)
                level = decoder.protocol_level
                assert level is not None
                for reply in self._replies(packet, level):
                    connection.sendall(encode(reply, level))
                if isinstance(packet, Disconnect):
                    return

    def _replies(self, packet: Packet, level: int) -> list[Packet]:
        v5 = level == 5
        if isinstance(packet, Connect):
            return [Connack(0, False, P(topic_alias_maximum=0, receive_maximum=10) if v5 else P())]
        if isinstance(packet, Subscribe):
            granted = tuple(sub.options.qos for sub in packet.subscriptions)
            message = Publish("echo/from/broker", b"\x00binary\xff", 1, packet_id=77,
                              properties=P(content_type="text/x", user_properties=(("origin", "hookmq"),))
                              if v5 else P())
            return [Suback(packet.packet_id, granted), message]
        if isinstance(packet, Publish) and packet.qos == 1:
            return [Puback(packet.packet_id)]
        if isinstance(packet, Unsubscribe):
            return [Unsuback(packet.packet_id, (0,) * len(packet.topic_filters) if v5 else ())]
        if isinstance(packet, Pingreq):
            return [Pingresp()]
        return []


@pytest.fixture
def fake_broker() -> Iterator[FakeBroker]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)
    broker = FakeBroker(listener)
    thread = threading.Thread(target=broker.serve_one, daemon=True)
    thread.start()
    yield broker
    thread.join(10)
    listener.close()


@dataclass
class PahoRun:
    """What the paho client saw."""

    connect_reason: Any = None
    granted: list[Any] = field(default_factory=list)
    messages: list[paho.MQTTMessage] = field(default_factory=list)
    unsubscribed: threading.Event = field(default_factory=threading.Event)
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    got_message: threading.Event = field(default_factory=threading.Event)


def _paho_client(protocol: int, run: PahoRun) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="paho-κ", protocol=protocol)
    client.username_pw_set("alice", "s3cret")
    will_props = None
    if protocol == paho.MQTTv5:
        will_props = PahoProperties(paho.PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = 7
    client.will_set("last/will", b"gone", qos=1, retain=True, properties=will_props)

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        run.connect_reason = reason
        run.connected.set()

    def on_subscribe(client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        run.granted = list(reasons)
        run.subscribed.set()

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        run.messages.append(message)
        run.got_message.set()

    def on_unsubscribe(client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        run.unsubscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_unsubscribe = on_unsubscribe
    return client


def _drive_paho(port: int, protocol: int) -> PahoRun:
    run = PahoRun()
    client = _paho_client(protocol, run)
    connect_props = None
    if protocol == paho.MQTTv5:
        connect_props = PahoProperties(paho.PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = 120
        connect_props.UserProperty = ("client", "paho")
    client.connect("127.0.0.1", port, keepalive=15, properties=connect_props)
    client.loop_start()
    try:
        assert run.connected.wait(10), "paho never saw our CONNACK"
        options: Any = SubscribeOptions(qos=1, noLocal=True) if protocol == paho.MQTTv5 else 1
        client.subscribe([("sensors/+/temp", options), ("alerts/#", SubscribeOptions(qos=0)
                                                         if protocol == paho.MQTTv5 else 0)])
        assert run.subscribed.wait(10), "paho never saw our SUBACK"
        assert run.got_message.wait(10), "paho never delivered our PUBLISH"
        info = client.publish("sensors/kitchen/temp", b"21.5", qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), "paho never saw our PUBACK"
        client.unsubscribe("alerts/#")
        assert run.unsubscribed.wait(10), "paho never saw our UNSUBACK"
        client.disconnect()
    finally:
        client.loop_stop()
    return run


def test_paho_v311_client_against_our_codec(fake_broker: FakeBroker) -> None:
    run = _drive_paho(fake_broker.port, paho.MQTTv311)
    connect, subscribe, puback, publish, unsubscribe, disconnect = fake_broker.conversation()
    assert connect == Connect("paho-κ", 4, "MQTT", True, 15, "alice", b"s3cret", Will("last/will", b"gone", 1, True))
    assert isinstance(subscribe, Subscribe)
    assert subscribe.subscriptions == (Subscription("sensors/+/temp", SO(1)), Subscription("alerts/#", SO(0)))
    assert puback == Puback(77)
    assert publish == Publish("sensors/kitchen/temp", b"21.5", 1, packet_id=publish.packet_id)
    assert isinstance(unsubscribe, Unsubscribe) and unsubscribe.topic_filters == ("alerts/#",)
    assert disconnect == Disconnect()
    assert run.connect_reason == 0
    assert [int(code.value) for code in run.granted] == [1, 0]
    [message] = run.messages
    assert (message.topic, message.payload, message.qos) == ("echo/from/broker", b"\x00binary\xff", 1)


def test_paho_v5_client_against_our_codec(fake_broker: FakeBroker) -> None:
    run = _drive_paho(fake_broker.port, paho.MQTTv5)
    connect, subscribe, puback, publish, unsubscribe, disconnect = fake_broker.conversation()
    assert isinstance(connect, Connect)
    assert (connect.client_id, connect.protocol_level, connect.username, connect.password) == (
        "paho-κ", 5, "alice", b"s3cret")
    assert connect.properties.session_expiry_interval == 120
    assert connect.properties.user_properties == (("client", "paho"),)
    assert connect.will == Will("last/will", b"gone", 1, True, P(will_delay_interval=7))
    assert isinstance(subscribe, Subscribe)
    assert subscribe.subscriptions[0] == Subscription("sensors/+/temp", SO(1, no_local=True))
    assert puback == Puback(77)
    assert isinstance(publish, Publish)
    assert (publish.topic, publish.payload, publish.qos) == ("sensors/kitchen/temp", b"21.5", 1)
    assert isinstance(unsubscribe, Unsubscribe) and unsubscribe.topic_filters == ("alerts/#",)
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0
    assert run.connect_reason == 0
    [message] = run.messages
    assert (message.topic, message.payload) == ("echo/from/broker", b"\x00binary\xff")
    assert message.properties.ContentType == "text/x"
    assert message.properties.UserProperty == [("origin", "hookmq")]
