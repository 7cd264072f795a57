"""Codec test vectors: raw bytes with the packet they decode to, or the reason code they fail with.

The bytes are written out from the OASIS texts (MQTT 3.1.1 and 5.0) with the four tiny helpers
below, never with the codec under test. ``canonical`` says the codec's encoder must produce
exactly these bytes back (false where the wire form is legal but not the shortest one).
"""

from __future__ import annotations

from dataclasses import dataclass

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

MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
UNSUPPORTED = 0x84
FILTER_INVALID = 0x8F
NAME_INVALID = 0x90
ALIAS_INVALID = 0x94
TOO_LARGE = 0x95


@dataclass(frozen=True)
class Vector:
    """One case: decode ``raw`` at ``level``; expect ``expected`` (a packet or a reason code)."""

    name: str
    level: int
    raw: bytes
    expected: Packet | int
    canonical: bool = True
    #: Start from a fresh decoder that has not seen CONNECT (None) rather than at ``level``.
    fresh: bool = False
    max_packet_size: int = 268_435_460


def s(text: str) -> bytes:
    """A UTF-8 string with its two-byte length."""
    return b(text.encode("utf-8"))


def b(raw: bytes) -> bytes:
    """Binary data with its two-byte length."""
    return len(raw).to_bytes(2, "big") + raw


def vbi(value: int) -> bytes:
    """A variable byte integer."""
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pk(first: int, *body: bytes) -> bytes:
    """A whole packet: first byte, remaining length, body."""
    joined = b"".join(body)
    return bytes([first]) + vbi(len(joined)) + joined


def props(*items: bytes) -> bytes:
    """A property block."""
    joined = b"".join(items)
    return vbi(len(joined)) + joined


NP = b"\x00"  # an empty property block
P = Properties
SO = SubscriptionOptions


def _connect_vectors() -> list[Vector]:
    v4 = s("MQTT") + b"\x04"
    v5 = s("MQTT") + b"\x05"
    c5_props = props(
        b"\x11\x00\x00\x0e\x10", b"\x15" + s("SCRAM"), b"\x16" + b(b"\x01\x02"), b"\x17\x00", b"\x19\x01",
        b"\x21\x00\x14", b"\x22\x00\x0a", b"\x26" + s("k") + s("v"), b"\x27\x00\x01\x00\x00",
    )
    will_props = props(
        b"\x01\x01", b"\x02\x00\x00\x00\x3c", b"\x03" + s("text/plain"), b"\x08" + s("resp/t"),
        b"\x09" + b(b"cid"), b"\x18\x00\x00\x00\x05", b"\x26" + s("a") + s("b"),
    )
    return [
        Vector("v4 connect minimal", 4, pk(0x10, v4, b"\x02\x00\x3c", s("c1")), Connect("c1", 4, "MQTT", True, 60)),
        Vector("v4 connect user and password", 4, pk(0x10, v4, b"\xc2\x00\x3c", s("c1"), s("user"), b(b"pw")),
               Connect("c1", 4, "MQTT", True, 60, "user", b"pw")),
        Vector("v4 connect will qos1 retain", 4, pk(0x10, v4, b"\x2e\x00\x3c", s("c1"), s("will/t"), b(b"bye")),
               Connect("c1", 4, "MQTT", True, 60, will=Will("will/t", b"bye", 1, True))),
        Vector("v4 connect will qos2 no retain", 4, pk(0x10, v4, b"\x16\x00\x00", s("c1"), s("w"), b(b"")),
               Connect("c1", 4, "MQTT", True, 0, will=Will("w", b"", 2, False))),
        Vector("v4 connect empty client id", 4, pk(0x10, v4, b"\x02\x00\x00", s("")), Connect("", 4, "MQTT", True, 0)),
        Vector("v4 connect persistent session", 4, pk(0x10, v4, b"\x00\xff\xff", s("keep")),
               Connect("keep", 4, "MQTT", False, 65535)),
        Vector("v4 connect unicode client id", 4, pk(0x10, v4, b"\x02\x00\x05", s("ćlïent-ü")),
               Connect("ćlïent-ü", 4, "MQTT", True, 5)),
        Vector("v4 connect everything", 4,
               pk(0x10, v4, b"\xee\x00\x1e", s("all"), s("$will"), b(b"\x00\xff"), s("u"), b(b"")),
               Connect("all", 4, "MQTT", True, 30, "u", b"", Will("$will", b"\x00\xff", 1, True))),
        Vector("v3.1 connect MQIsdp", 3, pk(0x10, s("MQIsdp"), b"\x03\x02\x00\x0a", s("legacy")),
               Connect("legacy", 3, "MQIsdp", True, 10)),
        Vector("v3.1 connect with credentials", 3,
               pk(0x10, s("MQIsdp"), b"\x03\xc0\x00\x0a", s("legacy"), s("u"), b(b"p")),
               Connect("legacy", 3, "MQIsdp", False, 10, "u", b"p")),
        Vector("v5 connect minimal", 5, pk(0x10, v5, b"\x02\x00\x3c", NP, s("c5")), Connect("c5", 5, "MQTT", True, 60)),
        Vector("v5 connect with properties", 5, pk(0x10, v5, b"\x02\x00\x3c", c5_props, s("c5")),
               Connect("c5", 5, "MQTT", True, 60, properties=P(
                   session_expiry_interval=3600, authentication_method="SCRAM", authentication_data=b"\x01\x02",
                   request_problem_information=0, request_response_information=1, receive_maximum=20,
                   topic_alias_maximum=10, user_properties=(("k", "v"),), maximum_packet_size=65536))),
        Vector("v5 connect will with properties", 5,
               pk(0x10, v5, b"\x16\x00\x00", NP, s("c5"), will_props, s("will/t"), b(b"gone")),
               Connect("c5", 5, "MQTT", True, 0, will=Will("will/t", b"gone", 2, False, P(
                   payload_format_indicator=1, message_expiry_interval=60, content_type="text/plain",
                   response_topic="resp/t", correlation_data=b"cid", will_delay_interval=5,
                   user_properties=(("a", "b"),))))),
        Vector("v5 connect password without user name", 5, pk(0x10, v5, b"\x42\x00\x00", NP, s("c5"), b(b"secret")),
               Connect("c5", 5, "MQTT", True, 0, password=b"secret")),
        Vector("v5 connect repeated user properties", 5,
               pk(0x10, v5, b"\x00\x00\x00", props(b"\x26" + s("k") + s("1"), b"\x26" + s("k") + s("2")), s("c")),
               Connect("c", 5, "MQTT", False, 0, properties=P(user_properties=(("k", "1"), ("k", "2"))))),
        # Malformed CONNECTs.
        Vector("connect unknown protocol name", 4, pk(0x10, s("MQTX"), b"\x04\x02\x00\x00", s("c")), UNSUPPORTED),
        Vector("connect unknown level 6", 5, pk(0x10, s("MQTT"), b"\x06\x02\x00\x00", s("c")), UNSUPPORTED),
        Vector("connect unknown level 0", 5, pk(0x10, s("MQTT"), b"\x00\x02\x00\x00", s("c")), UNSUPPORTED),
        Vector("connect MQIsdp with level 4", 4, pk(0x10, s("MQIsdp"), b"\x04\x02\x00\x00", s("c")), UNSUPPORTED),
        Vector("connect MQTT with level 3", 3, pk(0x10, s("MQTT"), b"\x03\x02\x00\x00", s("c")), UNSUPPORTED),
        Vector("connect reserved fixed-header flags", 4, pk(0x11, v4, b"\x02\x00\x00", s("c")), MALFORMED),
        Vector("connect reserved flag bit", 4, pk(0x10, v4, b"\x03\x00\x00", s("c")), MALFORMED),
        Vector("connect will qos without will flag", 4, pk(0x10, v4, b"\x0a\x00\x00", s("c")), MALFORMED),
        Vector("connect will retain without will flag", 4, pk(0x10, v4, b"\x22\x00\x00", s("c")), MALFORMED),
        Vector("connect will qos 3", 4, pk(0x10, v4, b"\x1e\x00\x00", s("c"), s("w"), b(b"")), MALFORMED),
        Vector("v4 connect password without user name", 4, pk(0x10, v4, b"\x42\x00\x00", s("c"), b(b"pw")), MALFORMED),
        Vector("connect will topic with wildcard", 4, pk(0x10, v4, b"\x06\x00\x00", s("c"), s("w/#"), b(b"")),
               NAME_INVALID),
        Vector("connect trailing bytes", 4, pk(0x10, v4, b"\x02\x00\x00", s("c"), b"\x00"), MALFORMED),
        Vector("connect truncated client id", 4, pk(0x10, v4, b"\x02\x00\x00", b"\x00\x05ab"), MALFORMED),
        Vector("connect client id invalid utf-8", 4, pk(0x10, v4, b"\x02\x00\x00", b"\x00\x02\xc3\x28"), MALFORMED),
        Vector("connect client id with U+0000", 4, pk(0x10, v4, b"\x02\x00\x00", b"\x00\x03a\x00b"), MALFORMED),
        Vector("connect missing user name bytes", 4, pk(0x10, v4, b"\x82\x00\x00", s("c")), MALFORMED),
        Vector("connect missing will payload", 4, pk(0x10, v4, b"\x06\x00\x00", s("c"), s("w")), MALFORMED),
        Vector("connect truncated keep alive", 4, pk(0x10, v4, b"\x02\x00"), MALFORMED),
        Vector("v5 connect topic alias not allowed", 5, pk(0x10, v5, b"\x02\x00\x00", props(b"\x23\x00\x01"), s("c")),
               MALFORMED),
        Vector("v5 connect receive maximum 0", 5, pk(0x10, v5, b"\x02\x00\x00", props(b"\x21\x00\x00"), s("c")),
               PROTOCOL_ERROR),
        Vector("v5 connect maximum packet size 0", 5,
               pk(0x10, v5, b"\x02\x00\x00", props(b"\x27\x00\x00\x00\x00"), s("c")), PROTOCOL_ERROR),
        Vector("v5 connect session expiry twice", 5,
               pk(0x10, v5, b"\x02\x00\x00", props(b"\x11\x00\x00\x00\x01", b"\x11\x00\x00\x00\x02"), s("c")),
               PROTOCOL_ERROR),
        Vector("v5 connect auth data without method", 5,
               pk(0x10, v5, b"\x02\x00\x00", props(b"\x16" + b(b"x")), s("c")), PROTOCOL_ERROR),
        Vector("v5 connect request problem information 2", 5,
               pk(0x10, v5, b"\x02\x00\x00", props(b"\x17\x02"), s("c")), PROTOCOL_ERROR),
        Vector("v5 connect will delay outside will", 5,
               pk(0x10, v5, b"\x02\x00\x00", props(b"\x18\x00\x00\x00\x01"), s("c")), MALFORMED),
        Vector("v5 will properties session expiry not allowed", 5,
               pk(0x10, v5, b"\x06\x00\x00", NP, s("c"), props(b"\x11\x00\x00\x00\x01"), s("w"), b(b"")), MALFORMED),
        Vector("v5 connect property length past end", 5, pk(0x10, v5, b"\x02\x00\x00", b"\x09\x11\x00"), MALFORMED),
        Vector("v5 connect unknown property", 5, pk(0x10, v5, b"\x02\x00\x00", props(b"\x7f\x00"), s("c")), MALFORMED),
        Vector("v5 connect property identifier over four bytes", 5,
               pk(0x10, v5, b"\x02\x00\x00", props(b"\xff\xff\xff\xff\x01"), s("c")), MALFORMED),
    ]


def _connack_vectors() -> list[Vector]:
    full = props(
        b"\x11\x00\x00\x00\x78", b"\x12" + s("auto-1"), b"\x13\x00\x1e", b"\x15" + s("SCRAM"),
        b"\x16" + b(b"\x09"), b"\x1a" + s("info"), b"\x1c" + s("other:1883"), b"\x1f" + s("ok"),
        b"\x21\x00\x64", b"\x22\x00\x05", b"\x24\x01", b"\x25\x00", b"\x26" + s("k") + s("v"),
        b"\x27\x00\x00\x10\x00", b"\x28\x00", b"\x29\x00", b"\x2a\x01",
    )
    return [
        Vector("v4 connack session present", 4, b"\x20\x02\x01\x00", Connack(0, True)),
        Vector("v4 connack not authorized", 4, b"\x20\x02\x00\x05", Connack(5)),
        Vector("v3.1 connack unacceptable version", 3, b"\x20\x02\x00\x01", Connack(1)),
        Vector("v5 connack minimal", 5, b"\x20\x03\x00\x00\x00", Connack()),
        Vector("v5 connack session present", 5, b"\x20\x03\x01\x00\x00", Connack(0, True)),
        Vector("v5 connack unsupported version", 5, b"\x20\x03\x00\x84\x00", Connack(0x84)),
        Vector("v5 connack every property", 5, pk(0x20, b"\x00\x00", full), Connack(0, False, P(
            session_expiry_interval=120, assigned_client_identifier="auto-1", server_keep_alive=30,
            authentication_method="SCRAM", authentication_data=b"\x09", response_information="info",
            server_reference="other:1883", reason_string="ok", receive_maximum=100, topic_alias_maximum=5,
            maximum_qos=1, retain_available=0, user_properties=(("k", "v"),), maximum_packet_size=4096,
            wildcard_subscription_available=0, subscription_identifier_available=0,
            shared_subscription_available=1))),
        Vector("connack reserved flag bits", 4, b"\x20\x02\x02\x00", MALFORMED),
        Vector("connack reserved fixed-header flags", 4, b"\x21\x02\x00\x00", MALFORMED),
        Vector("v4 connack return code 6", 4, b"\x20\x02\x00\x06", MALFORMED),
        Vector("v4 connack trailing byte", 4, b"\x20\x03\x00\x00\x00", MALFORMED),
        Vector("v4 connack truncated", 4, b"\x20\x01\x00", MALFORMED),
        Vector("v5 connack reason 0x10 not allowed", 5, b"\x20\x03\x00\x10\x00", PROTOCOL_ERROR),
        Vector("v5 connack topic alias not allowed", 5, pk(0x20, b"\x00\x00", props(b"\x23\x00\x01")), MALFORMED),
        Vector("v5 connack maximum qos 2", 5, pk(0x20, b"\x00\x00", props(b"\x24\x02")), PROTOCOL_ERROR),
        Vector("v5 connack retain available 7", 5, pk(0x20, b"\x00\x00", props(b"\x25\x07")), PROTOCOL_ERROR),
        Vector("v5 connack missing properties", 5, b"\x20\x02\x00\x00", MALFORMED),
    ]


def _publish_vectors() -> list[Vector]:
    every = props(
        b"\x01\x01", b"\x02\x00\x00\x00\x78", b"\x03" + s("application/json"), b"\x08" + s("reply/x"),
        b"\x09" + b(b"\x00\x01"), b"\x0b\x05", b"\x0b\x80\x01", b"\x23\x00\x02",
        b"\x26" + s("k") + s("v1"), b"\x26" + s("k") + s("v2"),
    )
    return [
        Vector("v4 publish qos0", 4, pk(0x30, s("a/b"), b"hello"), Publish("a/b", b"hello")),
        Vector("v4 publish qos1", 4, pk(0x32, s("a/b"), b"\x00\x0a", b"hi"), Publish("a/b", b"hi", 1, packet_id=10)),
        Vector("v4 publish qos2 dup retain", 4, pk(0x3D, s("t"), b"\x12\x34", b"x"),
               Publish("t", b"x", 2, True, True, 0x1234)),
        Vector("v4 publish qos1 retain empty payload", 4, pk(0x33, s("r"), b"\x00\x01"),
               Publish("r", b"", 1, True, packet_id=1)),
        Vector("v4 publish qos1 dup", 4, pk(0x3A, s("r"), b"\xff\xff"), Publish("r", b"", 1, False, True, 65535)),
        Vector("v4 publish two-byte remaining length", 4, pk(0x30, s("big"), b"z" * 200), Publish("big", b"z" * 200)),
        Vector("v4 publish three-byte remaining length", 4, pk(0x30, s("big"), b"z" * 20000),
               Publish("big", b"z" * 20000)),
        Vector("v4 publish unicode topic", 4, pk(0x30, s("température/é/€"), b"1"), Publish("température/é/€", b"1")),
        Vector("v4 publish $SYS topic", 4, pk(0x30, s("$SYS/broker/load"), b""), Publish("$SYS/broker/load")),
        Vector("v4 publish topic with spaces and slashes", 4, pk(0x30, s("/a b//c/"), b"\x00"),
               Publish("/a b//c/", b"\x00")),
        Vector("v4 publish binary payload", 4, pk(0x30, s("bin"), bytes(range(256))), Publish("bin", bytes(range(256)))),
        Vector("v3.1 publish qos1", 3, pk(0x32, s("x"), b"\x00\x02", b"p"), Publish("x", b"p", 1, packet_id=2)),
        Vector("v5 publish qos0", 5, pk(0x30, s("a/b"), NP, b"hello"), Publish("a/b", b"hello")),
        Vector("v5 publish qos1", 5, pk(0x32, s("a/b"), b"\x00\x0a", NP, b"hi"), Publish("a/b", b"hi", 1, packet_id=10)),
        Vector("v5 publish alias only", 5, pk(0x30, s(""), props(b"\x23\x00\x03"), b"p"),
               Publish("", b"p", properties=P(topic_alias=3))),
        Vector("v5 publish topic and alias", 5, pk(0x31, s("long/topic"), props(b"\x23\x00\x03"), b"p"),
               Publish("long/topic", b"p", retain=True, properties=P(topic_alias=3))),
        Vector("v5 publish every property", 5, pk(0x32, s("a"), b"\x00\x05", every, b"{}"),
               Publish("a", b"{}", 1, packet_id=5, properties=P(
                   payload_format_indicator=1, message_expiry_interval=120, content_type="application/json",
                   response_topic="reply/x", correlation_data=b"\x00\x01", subscription_identifiers=(5, 128),
                   topic_alias=2, user_properties=(("k", "v1"), ("k", "v2"))))),
        Vector("v5 publish largest subscription identifier", 5, pk(0x30, s("a"), props(b"\x0b\xff\xff\xff\x7f")),
               Publish("a", properties=P(subscription_identifiers=(268_435_455,)))),
        Vector("v5 publish payload format 0", 5, pk(0x30, s("a"), props(b"\x01\x00"), b"\xff"),
               Publish("a", b"\xff", properties=P(payload_format_indicator=0))),
        Vector("v5 publish long property block", 5, pk(0x30, s("a"), props(b"\x26" + s("k") + s("v" * 200)), b"."),
               Publish("a", b".", properties=P(user_properties=(("k", "v" * 200),)))),
        # Malformed PUBLISH.
        Vector("publish qos 3", 4, pk(0x36, s("a"), b"\x00\x01"), MALFORMED),
        Vector("publish dup with qos 0", 4, pk(0x38, s("a"), b"x"), PROTOCOL_ERROR),
        Vector("publish qos1 packet id 0", 4, pk(0x32, s("a"), b"\x00\x00"), PROTOCOL_ERROR),
        Vector("publish qos2 packet id 0", 5, pk(0x34, s("a"), b"\x00\x00", NP), PROTOCOL_ERROR),
        Vector("publish topic with +", 4, pk(0x30, s("a/+/b"), b""), NAME_INVALID),
        Vector("publish topic with #", 5, pk(0x30, s("a/#"), NP), NAME_INVALID),
        Vector("publish topic that is a lone +", 4, pk(0x30, s("+"), b""), NAME_INVALID),
        Vector("v4 publish empty topic", 4, pk(0x30, s(""), b"x"), NAME_INVALID),
        Vector("v5 publish empty topic without alias", 5, pk(0x30, s(""), NP, b"x"), PROTOCOL_ERROR),
        Vector("publish topic invalid utf-8", 4, pk(0x30, b"\x00\x02\xc3\x28", b""), MALFORMED),
        Vector("publish topic with U+0000", 4, pk(0x30, b"\x00\x03a\x00b", b""), MALFORMED),
        Vector("publish topic with encoded surrogate", 4, pk(0x30, b"\x00\x03\xed\xa0\x80", b""), MALFORMED),
        Vector("publish topic overlong encoding", 4, pk(0x30, b"\x00\x02\xc0\xaf", b""), MALFORMED),
        Vector("publish topic code point over U+10FFFF", 4, pk(0x30, b"\x00\x04\xf4\x90\x80\x80", b""), MALFORMED),
        Vector("publish topic length past end", 4, pk(0x30, b"\x00\x09abc"), MALFORMED),
        Vector("publish with empty body", 4, b"\x30\x00", MALFORMED),
        Vector("publish with one-byte body", 4, b"\x30\x01\x00", MALFORMED),
        Vector("publish truncated packet id", 4, pk(0x32, s("a"), b"\x00"), MALFORMED),
        Vector("v5 publish missing property length", 5, pk(0x30, s("a")), MALFORMED),
        Vector("v5 publish session expiry not allowed", 5, pk(0x30, s("a"), props(b"\x11\x00\x00\x00\x01")), MALFORMED),
        Vector("v5 publish will delay not allowed", 5, pk(0x30, s("a"), props(b"\x18\x00\x00\x00\x01")), MALFORMED),
        Vector("v5 publish reason string not allowed", 5, pk(0x30, s("a"), props(b"\x1f" + s("x"))), MALFORMED),
        Vector("v5 publish topic alias twice", 5, pk(0x30, s("a"), props(b"\x23\x00\x01", b"\x23\x00\x02")),
               PROTOCOL_ERROR),
        Vector("v5 publish content type twice", 5, pk(0x30, s("a"), props(b"\x03" + s("x"), b"\x03" + s("y"))),
               PROTOCOL_ERROR),
        Vector("v5 publish topic alias 0", 5, pk(0x30, s("a"), props(b"\x23\x00\x00")), ALIAS_INVALID),
        Vector("v5 publish payload format indicator 2", 5, pk(0x30, s("a"), props(b"\x01\x02")), PROTOCOL_ERROR),
        Vector("v5 publish unknown property 0x7f", 5, pk(0x30, s("a"), props(b"\x7f\x00")), MALFORMED),
        Vector("v5 publish unknown property 0x00", 5, pk(0x30, s("a"), props(b"\x00\x00")), MALFORMED),
        Vector("v5 publish property length past end", 5, pk(0x30, s("a"), b"\x05\x23\x00"), MALFORMED),
        Vector("v5 publish subscription identifier 0", 5, pk(0x30, s("a"), props(b"\x0b\x00")), PROTOCOL_ERROR),
        Vector("v5 publish subscription identifier over four bytes", 5,
               pk(0x30, s("a"), props(b"\x0b\xff\xff\xff\xff\x01")), MALFORMED),
        Vector("v5 publish response topic with wildcard", 5, pk(0x30, s("a"), props(b"\x08" + s("r/+"))),
               PROTOCOL_ERROR),
        Vector("v5 publish truncated user property", 5, pk(0x30, s("a"), props(b"\x26" + s("k") + b"\x00\x05v")),
               MALFORMED),
        Vector("v5 publish content type invalid utf-8", 5, pk(0x30, s("a"), props(b"\x03\x00\x01\xff")), MALFORMED),
        Vector("v5 publish correlation data past end", 5, pk(0x30, s("a"), props(b"\x09\x00\x09")), MALFORMED),
        Vector("v5 publish message expiry truncated", 5, pk(0x30, s("a"), props(b"\x02\x00\x00")), MALFORMED),
    ]


def _ack_vectors() -> list[Vector]:
    vectors = [
        Vector("v4 puback", 4, b"\x40\x02\x00\x01", Puback(1)),
        Vector("v4 pubrec", 4, b"\x50\x02\x00\x02", Pubrec(2)),
        Vector("v4 pubrel", 4, b"\x62\x02\x00\x03", Pubrel(3)),
        Vector("v4 pubcomp", 4, b"\x70\x02\x00\x04", Pubcomp(4)),
        Vector("v3.1 puback", 3, b"\x40\x02\xff\xff", Puback(65535)),
        Vector("v5 puback short form", 5, b"\x40\x02\x00\x01", Puback(1)),
        Vector("v5 puback no matching subscribers", 5, b"\x40\x03\x00\x01\x10", Puback(1, 0x10)),
        Vector("v5 puback code and empty properties", 5, b"\x40\x04\x00\x01\x10\x00", Puback(1, 0x10),
               canonical=False),
        Vector("v5 puback explicit success", 5, b"\x40\x03\x00\x01\x00", Puback(1), canonical=False),
        Vector("v5 pubrec failure with reason string", 5, pk(0x50, b"\x00\x02\x80", props(b"\x1f" + s("quota"))),
               Pubrec(2, 0x80, P(reason_string="quota"))),
        Vector("v5 pubrel packet id not found", 5, b"\x62\x03\x00\x07\x92", Pubrel(7, 0x92)),
        Vector("v5 pubcomp success with user property", 5, pk(0x70, b"\x00\x09\x00", props(b"\x26" + s("x") + s("y"))),
               Pubcomp(9, 0, P(user_properties=(("x", "y"),)))),
        Vector("v5 puback payload format invalid", 5, b"\x40\x03\x00\x01\x99", Puback(1, 0x99)),
        Vector("puback packet id 0", 4, b"\x40\x02\x00\x00", PROTOCOL_ERROR),
        Vector("pubrec packet id 0", 5, b"\x50\x02\x00\x00", PROTOCOL_ERROR),
        Vector("pubrel packet id 0", 4, b"\x62\x02\x00\x00", PROTOCOL_ERROR),
        Vector("pubcomp packet id 0", 5, b"\x70\x02\x00\x00", PROTOCOL_ERROR),
        Vector("v4 puback with extra byte", 4, b"\x40\x03\x00\x01\x00", MALFORMED),
        Vector("puback truncated packet id", 4, b"\x40\x01\x00", MALFORMED),
        Vector("puback reserved flags", 4, b"\x41\x02\x00\x01", MALFORMED),
        Vector("pubrel without its required flags", 4, b"\x60\x02\x00\x01", MALFORMED),
        Vector("pubrec with pubrel flags", 4, b"\x52\x02\x00\x01", MALFORMED),
        Vector("v5 puback reason 0x92 not allowed", 5, b"\x40\x03\x00\x01\x92", PROTOCOL_ERROR),
        Vector("v5 pubrel reason 0x10 not allowed", 5, b"\x62\x03\x00\x01\x10", PROTOCOL_ERROR),
        Vector("v5 pubcomp reason 0x80 not allowed", 5, b"\x70\x03\x00\x01\x80", PROTOCOL_ERROR),
        Vector("v5 puback subscription identifier not allowed", 5, pk(0x40, b"\x00\x01\x00", props(b"\x0b\x01")),
               MALFORMED),
        Vector("v5 puback reason string twice", 5,
               pk(0x40, b"\x00\x01\x00", props(b"\x1f" + s("a"), b"\x1f" + s("b"))), PROTOCOL_ERROR),
        Vector("v5 pubrec property length past end", 5, b"\x50\x05\x00\x01\x00\x07\x1f", MALFORMED),
    ]
    return vectors


def _subscribe_vectors() -> list[Vector]:
    return [
        Vector("v4 subscribe one filter", 4, pk(0x82, b"\x00\x01", s("a/b"), b"\x01"),
               Subscribe(1, (Subscription("a/b", SO(1)),))),
        Vector("v4 subscribe several filters", 4, pk(0x82, b"\x00\x02", s("a/+"), b"\x00", s("b/#"), b"\x02",
                                                     s("$SYS/#"), b"\x01"),
               Subscribe(2, (Subscription("a/+", SO(0)), Subscription("b/#", SO(2)), Subscription("$SYS/#", SO(1))))),
        Vector("v4 subscribe to #", 4, pk(0x82, b"\x00\x03", s("#"), b"\x00"), Subscribe(3, (Subscription("#"),))),
        Vector("v3.1 subscribe", 3, pk(0x82, b"\x00\x04", s("x/+/y"), b"\x02"), Subscribe(4, (Subscription("x/+/y", SO(2)),))),
        Vector("v5 subscribe every option", 5, pk(0x82, b"\x00\x03", NP, s("x/y"), b"\x2d"),
               Subscribe(3, (Subscription("x/y", SO(1, True, True, 2)),))),
        Vector("v5 subscribe retain handling 1", 5, pk(0x82, b"\x00\x03", NP, s("x"), b"\x12"),
               Subscribe(3, (Subscription("x", SO(2, False, False, 1)),))),
        Vector("v5 subscribe with identifier and user property", 5,
               pk(0x82, b"\x00\x04", props(b"\x0b\x2a", b"\x26" + s("k") + s("v")), s("s/#"), b"\x00"),
               Subscribe(4, (Subscription("s/#"),), P(subscription_identifiers=(42,), user_properties=(("k", "v"),)))),
        Vector("v5 subscribe shared", 5, pk(0x82, b"\x00\x05", NP, s("$share/grp/a/+"), b"\x01"),
               Subscribe(5, (Subscription("$share/grp/a/+", SO(1)),))),
        Vector("v5 subscribe shared with retain as published", 5, pk(0x82, b"\x00\x05", NP, s("$share/g/#"), b"\x0a"),
               Subscribe(5, (Subscription("$share/g/#", SO(2, False, True)),))),
        Vector("subscribe without filters", 4, pk(0x82, b"\x00\x01"), PROTOCOL_ERROR),
        Vector("v5 subscribe without filters", 5, pk(0x82, b"\x00\x01", NP), PROTOCOL_ERROR),
        Vector("subscribe packet id 0", 4, pk(0x82, b"\x00\x00", s("a"), b"\x00"), PROTOCOL_ERROR),
        Vector("subscribe reserved fixed-header flags", 4, pk(0x80, b"\x00\x01", s("a"), b"\x00"), MALFORMED),
        Vector("v4 subscribe reserved option bits", 4, pk(0x82, b"\x00\x01", s("a"), b"\x04"), MALFORMED),
        Vector("v5 subscribe reserved option bits", 5, pk(0x82, b"\x00\x01", NP, s("a"), b"\x40"), MALFORMED),
        Vector("subscribe qos 3", 4, pk(0x82, b"\x00\x01", s("a"), b"\x03"), MALFORMED),
        Vector("v5 subscribe retain handling 3", 5, pk(0x82, b"\x00\x01", NP, s("a"), b"\x30"), PROTOCOL_ERROR),
        Vector("subscribe missing options byte", 4, pk(0x82, b"\x00\x01", s("a")), MALFORMED),
        Vector("subscribe filter length past end", 4, pk(0x82, b"\x00\x01", b"\x00\x08a"), MALFORMED),
        Vector("subscribe empty filter", 4, pk(0x82, b"\x00\x01", s(""), b"\x00"), FILTER_INVALID),
        Vector("subscribe # not last", 4, pk(0x82, b"\x00\x01", s("a/#/b"), b"\x00"), FILTER_INVALID),
        Vector("subscribe + inside a level", 4, pk(0x82, b"\x00\x01", s("a+"), b"\x00"), FILTER_INVALID),
        Vector("subscribe # inside a level", 5, pk(0x82, b"\x00\x01", NP, s("a/b#"), b"\x00"), FILTER_INVALID),
        Vector("subscribe $share without filter", 5, pk(0x82, b"\x00\x01", NP, s("$share/grp"), b"\x00"),
               FILTER_INVALID),
        Vector("subscribe $share with trailing slash only", 5, pk(0x82, b"\x00\x01", NP, s("$share/grp/"), b"\x00"),
               FILTER_INVALID),
        Vector("subscribe $share with empty group", 5, pk(0x82, b"\x00\x01", NP, s("$share//x"), b"\x00"),
               FILTER_INVALID),
        Vector("subscribe $share group with +", 5, pk(0x82, b"\x00\x01", NP, s("$share/g+/x"), b"\x00"),
               FILTER_INVALID),
        Vector("subscribe $share group with #", 5, pk(0x82, b"\x00\x01", NP, s("$share/#/x"), b"\x00"),
               FILTER_INVALID),
        Vector("subscribe $share with bad inner filter", 5, pk(0x82, b"\x00\x01", NP, s("$share/g/a/#/b"), b"\x00"),
               FILTER_INVALID),
        Vector("v5 subscribe no local on shared", 5, pk(0x82, b"\x00\x01", NP, s("$share/g/a"), b"\x04"),
               PROTOCOL_ERROR),
        Vector("v5 subscribe identifier twice", 5, pk(0x82, b"\x00\x01", props(b"\x0b\x01", b"\x0b\x02"), s("a"), b"\x00"),
               PROTOCOL_ERROR),
        Vector("v5 subscribe identifier 0", 5, pk(0x82, b"\x00\x01", props(b"\x0b\x00"), s("a"), b"\x00"),
               PROTOCOL_ERROR),
        Vector("v5 subscribe topic alias not allowed", 5, pk(0x82, b"\x00\x01", props(b"\x23\x00\x01"), s("a"), b"\x00"),
               MALFORMED),
        Vector("subscribe filter invalid utf-8", 4, pk(0x82, b"\x00\x01", b"\x00\x01\x80", b"\x00"), MALFORMED),
        # SUBACK.
        Vector("v4 suback", 4, pk(0x90, b"\x00\x05", b"\x00\x01\x02\x80"), Suback(5, (0, 1, 2, 0x80))),
        Vector("v5 suback with reason string", 5, pk(0x90, b"\x00\x06", props(b"\x1f" + s("why")), b"\x00\x87\x8f"),
               Suback(6, (0, 0x87, 0x8F), P(reason_string="why"))),
        Vector("v5 suback every refusal", 5, pk(0x90, b"\x00\x06", NP, b"\x80\x83\x91\x97\x9e\xa1\xa2"),
               Suback(6, (0x80, 0x83, 0x91, 0x97, 0x9E, 0xA1, 0xA2))),
        Vector("v4 suback code 3", 4, pk(0x90, b"\x00\x05", b"\x03"), PROTOCOL_ERROR),
        Vector("v5 suback code 0x10", 5, pk(0x90, b"\x00\x05", NP, b"\x10"), PROTOCOL_ERROR),
        Vector("suback without codes", 4, pk(0x90, b"\x00\x05"), PROTOCOL_ERROR),
        Vector("suback packet id 0", 4, pk(0x90, b"\x00\x00", b"\x00"), PROTOCOL_ERROR),
        Vector("suback reserved flags", 4, pk(0x92, b"\x00\x01", b"\x00"), MALFORMED),
    ]


def _unsubscribe_vectors() -> list[Vector]:
    return [
        Vector("v4 unsubscribe one filter", 4, pk(0xA2, b"\x00\x07", s("a/b")), Unsubscribe(7, ("a/b",))),
        Vector("v4 unsubscribe several filters", 4, pk(0xA2, b"\x00\x08", s("a/+"), s("$share/g/x"), s("#")),
               Unsubscribe(8, ("a/+", "$share/g/x", "#"))),
        Vector("v5 unsubscribe with user property", 5, pk(0xA2, b"\x00\x09", props(b"\x26" + s("k") + s("v")), s("a")),
               Unsubscribe(9, ("a",), P(user_properties=(("k", "v"),)))),
        Vector("v5 unsubscribe plain", 5, pk(0xA2, b"\x00\x09", NP, s("a"), s("b")), Unsubscribe(9, ("a", "b"))),
        Vector("unsubscribe without filters", 4, pk(0xA2, b"\x00\x01"), PROTOCOL_ERROR),
        Vector("v5 unsubscribe without filters", 5, pk(0xA2, b"\x00\x01", NP), PROTOCOL_ERROR),
        Vector("unsubscribe invalid filter", 4, pk(0xA2, b"\x00\x01", s("a/#/b")), FILTER_INVALID),
        Vector("unsubscribe malformed shared filter", 5, pk(0xA2, b"\x00\x01", NP, s("$share/g")), FILTER_INVALID),
        Vector("unsubscribe packet id 0", 4, pk(0xA2, b"\x00\x00", s("a")), PROTOCOL_ERROR),
        Vector("unsubscribe reserved flags", 4, pk(0xA0, b"\x00\x01", s("a")), MALFORMED),
        Vector("v5 unsubscribe subscription identifier not allowed", 5,
               pk(0xA2, b"\x00\x01", props(b"\x0b\x01"), s("a")), MALFORMED),
        Vector("unsubscribe truncated filter", 4, pk(0xA2, b"\x00\x01", b"\x00\x04ab"), MALFORMED),
        # UNSUBACK.
        Vector("v4 unsuback", 4, b"\xb0\x02\x00\x07", Unsuback(7)),
        Vector("v5 unsuback", 5, pk(0xB0, b"\x00\x08", NP, b"\x00\x11"), Unsuback(8, (0, 0x11))),
        Vector("v5 unsuback with reason string", 5, pk(0xB0, b"\x00\x08", props(b"\x1f" + s("no")), b"\x87"),
               Unsuback(8, (0x87,), P(reason_string="no"))),
        Vector("v4 unsuback trailing byte", 4, b"\xb0\x03\x00\x07\x00", MALFORMED),
        Vector("v5 unsuback code 0x03", 5, pk(0xB0, b"\x00\x08", NP, b"\x03"), PROTOCOL_ERROR),
        Vector("unsuback packet id 0", 4, b"\xb0\x02\x00\x00", PROTOCOL_ERROR),
        Vector("unsuback reserved flags", 4, b"\xb2\x02\x00\x01", MALFORMED),
    ]


def _other_vectors() -> list[Vector]:
    return [
        Vector("v4 pingreq", 4, b"\xc0\x00", Pingreq()),
        Vector("v5 pingreq", 5, b"\xc0\x00", Pingreq()),
        Vector("v4 pingresp", 4, b"\xd0\x00", Pingresp()),
        Vector("v5 pingresp", 5, b"\xd0\x00", Pingresp()),
        Vector("pingreq with body", 4, b"\xc0\x01\x00", MALFORMED),
        Vector("pingresp with body", 5, b"\xd0\x01\x00", MALFORMED),
        Vector("pingreq reserved flags", 4, b"\xc1\x00", MALFORMED),
        Vector("v4 disconnect", 4, b"\xe0\x00", Disconnect()),
        Vector("v5 disconnect short form", 5, b"\xe0\x00", Disconnect()),
        Vector("v5 disconnect with will", 5, b"\xe0\x01\x04", Disconnect(4)),
        Vector("v5 disconnect explicit success", 5, b"\xe0\x02\x00\x00", Disconnect(), canonical=False),
        Vector("v5 disconnect with properties", 5,
               pk(0xE0, b"\x8e", props(b"\x11\x00\x00\x00\x00", b"\x1c" + s("srv"), b"\x1f" + s("bye"))),
               Disconnect(0x8E, P(session_expiry_interval=0, server_reference="srv", reason_string="bye"))),
        Vector("v4 disconnect with body", 4, b"\xe0\x01\x00", MALFORMED),
        Vector("disconnect reserved flags", 4, b"\xe1\x00", MALFORMED),
        Vector("v5 disconnect reason 0x01 not allowed", 5, b"\xe0\x01\x01", PROTOCOL_ERROR),
        Vector("v5 disconnect topic alias not allowed", 5, pk(0xE0, b"\x00", props(b"\x23\x00\x01")), MALFORMED),
        Vector("v5 disconnect property length past end", 5, b"\xe0\x03\x00\x05\x1f", MALFORMED),
        Vector("v5 disconnect trailing bytes", 5, b"\xe0\x03\x00\x00\x00", MALFORMED),
        Vector("v5 auth short form", 5, b"\xf0\x00", Auth()),
        Vector("v5 auth continue", 5, pk(0xF0, b"\x18", props(b"\x15" + s("SCRAM"), b"\x16" + b(b"abc"))),
               Auth(0x18, P(authentication_method="SCRAM", authentication_data=b"abc"))),
        Vector("v5 auth re-authenticate", 5, pk(0xF0, b"\x19", props(b"\x15" + s("K"), b"\x1f" + s("again"))),
               Auth(0x19, P(authentication_method="K", reason_string="again"))),
        Vector("v4 auth does not exist", 4, b"\xf0\x00", MALFORMED),
        Vector("v5 auth reason 0x01 not allowed", 5, b"\xf0\x01\x01", PROTOCOL_ERROR),
        Vector("v5 auth session expiry not allowed", 5, pk(0xF0, b"\x18", props(b"\x11\x00\x00\x00\x01")), MALFORMED),
        Vector("v5 auth method twice", 5, pk(0xF0, b"\x18", props(b"\x15" + s("a"), b"\x15" + s("b"))), PROTOCOL_ERROR),
        Vector("auth reserved flags", 5, b"\xf1\x00", MALFORMED),
        # Fixed header.
        Vector("packet type 0", 4, b"\x00\x00", MALFORMED),
        Vector("remaining length over four bytes", 4, b"\x30\xff\xff\xff\xff\x7f", MALFORMED),
        Vector("packet larger than the maximum", 4, pk(0x30, s("a"), b"x" * 100), TOO_LARGE, max_packet_size=64),
        Vector("header alone larger than the maximum", 5, b"\x30\xff\xff\xff\x7f", TOO_LARGE, max_packet_size=1024),
        Vector("packet exactly at the maximum", 4, pk(0x30, s("a"), b"x" * 59), Publish("a", b"x" * 59),
               max_packet_size=64),
        Vector("publish before connect", 4, pk(0x30, s("a"), b"x"), PROTOCOL_ERROR, fresh=True),
        Vector("pingreq before connect", 4, b"\xc0\x00", PROTOCOL_ERROR, fresh=True),
        Vector("packet type 0 before connect", 4, b"\x00\x00", PROTOCOL_ERROR, fresh=True),
    ]


#: Every vector.
VECTORS: list[Vector] = [
    *_connect_vectors(),
    *_connack_vectors(),
    *_publish_vectors(),
    *_ack_vectors(),
    *_subscribe_vectors(),
    *_unsubscribe_vectors(),
    *_other_vectors(),
]
