"""Typed, immutable MQTT control packets for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0).

Every packet is a frozen dataclass. Fields that only exist in MQTT 5 default to their "absent"
value, so the same classes serve all three protocol levels; the codec decides which fields
reach the wire for a given level. Use :func:`dataclasses.replace` to derive a changed copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum


class PacketType(IntEnum):
    """The control packet type, the high nibble of the first fixed-header byte."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class ProtocolLevel(IntEnum):
    """The protocol level byte of CONNECT."""

    MQTT_3_1 = 3
    MQTT_3_1_1 = 4
    MQTT_5 = 5


#: A user property: an ordered name/value pair; order and repetition are significant.
UserProperty = tuple[str, str]


@dataclass(frozen=True, slots=True, repr=False)
class Properties:
    """MQTT 5 properties. ``None`` (or an empty tuple) means the property is absent.

    One class holds every property; the codec checks that a packet only carries the ones the
    specification allows for it (see :mod:`hookmq.mqtt.properties`).
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    #: PUBLISH may carry several subscription identifiers; SUBSCRIBE carries at most one.
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: tuple[UserProperty, ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __bool__(self) -> bool:
        """True when at least one property is present."""
        return self != NO_PROPERTIES

    def __repr__(self) -> str:
        """Only the properties that are present, so packets print readably."""
        # By the dataclass's fields: a compiled class has no ``__slots__`` attribute to read.
        values = ((item.name, getattr(self, item.name)) for item in fields(self))
        present = (f"{name}={value!r}" for name, value in values if value not in (None, ()))
        return f"Properties({', '.join(present)})"


#: The shared "no properties" value; packets default to it, so absent properties cost nothing.
NO_PROPERTIES = Properties()


# The written-out __init__ of a frozen packet class sets its fields with ``object.__setattr__``
# called by that name, with the field's name as a literal: mypyc compiles exactly that form to
# a native store (through a global alias it stays a generic call: a type lookup and a
# descriptor per field, 5 % of the broker's CPU per QoS 1 message when PUBLISH and PUBACK are
# decoded); the interpreter runs it as the dataclass-generated __init__ would.


@dataclass(frozen=True, slots=True)
class Will:
    """The will message carried by CONNECT."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT: the first packet a client sends."""

    client_id: str = ""
    protocol_level: int = ProtocolLevel.MQTT_3_1_1
    protocol_name: str = "MQTT"
    clean_start: bool = True
    keep_alive: int = 0
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = NO_PROPERTIES

    def __init__(self, client_id: str = "", protocol_level: int = ProtocolLevel.MQTT_3_1_1,
                 protocol_name: str = "MQTT", clean_start: bool = True, keep_alive: int = 0,
                 username: str | None = None, password: bytes | None = None, will: Will | None = None,
                 properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "client_id", client_id)  # written out for mypyc, as Publish's: one per connection
        object.__setattr__(self, "protocol_level", protocol_level)
        object.__setattr__(self, "protocol_name", protocol_name)
        object.__setattr__(self, "clean_start", clean_start)
        object.__setattr__(self, "keep_alive", keep_alive)
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "password", password)
        object.__setattr__(self, "will", will)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK: the server's answer to CONNECT (v3 return codes share the field)."""

    reason_code: int = 0
    session_present: bool = False
    properties: Properties = NO_PROPERTIES

    def __init__(self, reason_code: int = 0, session_present: bool = False,
                 properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "reason_code", reason_code)  # written out for mypyc, as Publish's: one per connection
        object.__setattr__(self, "session_present", session_present)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH: an application message in either direction."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    #: 0 for QoS 0, where no packet identifier is on the wire.
    packet_id: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False, dup: bool = False,
                 packet_id: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        # Written out (dataclass keeps a class's own __init__) so that mypyc compiles it; the one
        # dataclass generates stays interpreted, and a PUBLISH is decoded per message.
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "qos", qos)
        object.__setattr__(self, "retain", retain)
        object.__setattr__(self, "dup", dup)
        object.__setattr__(self, "packet_id", packet_id)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Puback:
    """PUBACK: QoS 1 acknowledgement."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, packet_id: int, reason_code: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "packet_id", packet_id)  # written out for mypyc, as Publish's
        object.__setattr__(self, "reason_code", reason_code)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Pubrec:
    """PUBREC: QoS 2 delivery, part 1."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, packet_id: int, reason_code: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "packet_id", packet_id)  # written out for mypyc, as Publish's
        object.__setattr__(self, "reason_code", reason_code)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Pubrel:
    """PUBREL: QoS 2 delivery, part 2."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, packet_id: int, reason_code: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "packet_id", packet_id)  # written out for mypyc, as Publish's
        object.__setattr__(self, "reason_code", reason_code)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Pubcomp:
    """PUBCOMP: QoS 2 delivery, part 3."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, packet_id: int, reason_code: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "packet_id", packet_id)  # written out for mypyc, as Publish's
        object.__setattr__(self, "reason_code", reason_code)
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """The options byte of one SUBSCRIBE entry (v3 uses only ``qos``)."""

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    #: 0: send retained at subscribe; 1: only if the subscription is new; 2: never.
    retain_handling: int = 0


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter of a SUBSCRIBE packet with its options."""

    topic_filter: str
    options: SubscriptionOptions = field(default_factory=SubscriptionOptions)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE: one or more filters; the subscription identifier is in ``properties``."""

    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK: one reason code (v3: return code) per requested filter."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE: one or more filters."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsuback:
    """UNSUBACK: v5 carries one reason code per filter; v3 carries none."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ: keep-alive probe from the client."""


@dataclass(frozen=True, slots=True)
class Pingresp:
    """PINGRESP: the server's answer to PINGREQ."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT: either direction in v5, client to server only in v3."""

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES

    def __init__(self, reason_code: int = 0, properties: Properties = NO_PROPERTIES) -> None:
        object.__setattr__(self, "reason_code", reason_code)  # written out for mypyc, as Publish's: one per connection
        object.__setattr__(self, "properties", properties)


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH: the MQTT 5 enhanced-authentication exchange."""

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


#: Any control packet.
Packet = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)

#: The packet type of each packet class.
PACKET_TYPES: dict[type[Packet], PacketType] = {
    Connect: PacketType.CONNECT,
    Connack: PacketType.CONNACK,
    Publish: PacketType.PUBLISH,
    Puback: PacketType.PUBACK,
    Pubrec: PacketType.PUBREC,
    Pubrel: PacketType.PUBREL,
    Pubcomp: PacketType.PUBCOMP,
    Subscribe: PacketType.SUBSCRIBE,
    Suback: PacketType.SUBACK,
    Unsubscribe: PacketType.UNSUBSCRIBE,
    Unsuback: PacketType.UNSUBACK,
    Pingreq: PacketType.PINGREQ,
    Pingresp: PacketType.PINGRESP,
    Disconnect: PacketType.DISCONNECT,
    Auth: PacketType.AUTH,
}
