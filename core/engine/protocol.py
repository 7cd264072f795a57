"""One connection's MQTT protocol state, without I/O: bytes and a clock in, packets, bytes and deadlines out.

What h11's ``Connection`` is to HTTP, `ProtocolState` is to one MQTT client connection: it
holds the decoder, the protocol level, what the client's CONNECT negotiated (its Receive
Maximum, Maximum Packet Size, Topic Alias Maximum, keep-alive) and the topic aliases in both
directions. It turns received bytes into checked packets, packets and messages into the bytes
this client must get, and says when the keep-alive has run out at a ``now`` handed in. It knows
no socket, no event loop and no clock of its own.

State owned: everything above. Who changes it: the connection that owns it (the CONNECT
handshake sets the negotiated values once; the read loop feeds it bytes), and the delivery
path when it assigns an outgoing topic alias in `publish_bytes`.
"""

from __future__ import annotations

from dataclasses import replace

from ..mqtt.codec import Decoder, encode, encode_publish
from ..mqtt.errors import ProtocolError, ProtocolViolation
from ..mqtt.packets import NO_PROPERTIES, Connect, Packet, Publish
from ..mqtt.reason_codes import ReasonCode
from .message import Message, with_packet_id
from .settings import MqttSettings

#: Largest packet read before CONNECT is accepted (a CONNECT with a large will still fits).
PRE_CONNECT_MAX_PACKET = 1 << 20


class ProtocolState:
    """The protocol side of one client connection (sans-I/O)."""

    # Thousands of idle connections each carry one of these.
    __slots__ = (
        "alias_out", "alias_out_max", "decoder", "keep_alive", "last_seen", "level", "max_packet_out",
        "partial_reserved", "request_problem_information", "send_quota", "topic_aliases",
    )

    def __init__(self, settings: MqttSettings, now: float) -> None:
        # Until CONNECT is accepted, nobody may make the broker buffer more than a CONNECT needs.
        self.decoder = Decoder(max_packet_size=min(settings.max_packet_size, PRE_CONNECT_MAX_PACKET))
        self.level = 4
        self.keep_alive = 0
        #: Monotonic time of the last bytes received after CONNECT (``now`` of `receive`).
        self.last_seen = now
        #: How many QoS 1/2 messages may be unacknowledged towards the client.
        self.send_quota = settings.max_inflight
        #: The client's Maximum Packet Size (v5), 0 when it set none.
        self.max_packet_out = 0
        #: Inbound topic aliases the client set (alias → topic name), created on first use.
        self.topic_aliases: dict[int, str] | None = None
        #: Topic aliases the broker assigned towards this client (MQTT 5), created on first use.
        self.alias_out: dict[str, int] | None = None
        #: The client's Topic Alias Maximum: how many aliases the broker may assign (0: none).
        self.alias_out_max = 0
        self.request_problem_information = True
        #: Bytes of the broker-wide partial-packet budget this connection holds (`hookmq.engine.partial`).
        self.partial_reserved = 0

    # ------------------------------------------------------------------ bytes in

    def feed(self, data: bytes) -> list[Packet]:
        """Decode received bytes (raises `ProtocolError`; the decoder is unusable after one)."""
        return self.decoder.feed(data)

    def receive(self, data: bytes, now: float) -> list[Packet]:
        """Decode bytes received at monotonic time ``now``; they count as a sign of life.

        (The connection handler's read loop does exactly this inline, once per chunk read.)
        """
        self.last_seen = now
        return self.decoder.feed(data)

    def keep_alive_expired(self, now: float) -> bool:
        """Whether 1.5 × keep-alive has passed without a packet (``now`` is monotonic)."""
        return self.keep_alive > 0 and now - self.last_seen > self.keep_alive * 1.5

    # ------------------------------------------------------------------ CONNECT

    def accept_connect(self, connect: Connect, settings: MqttSettings) -> None:
        """Take what a CONNECT says about the client: its level and its limits towards us."""
        self.level = connect.protocol_level
        props = connect.properties
        self.request_problem_information = props.request_problem_information != 0
        if props.receive_maximum is not None:
            self.send_quota = min(props.receive_maximum, settings.max_inflight)
        self.max_packet_out = props.maximum_packet_size or 0
        self.alias_out_max = props.topic_alias_maximum or 0

    def established(self, connect: Connect, settings: MqttSettings) -> None:
        """CONNECT accepted: lift the pre-CONNECT packet limit, grant the keep-alive."""
        self.decoder.max_packet_size = settings.max_packet_size
        maximum = settings.max_keepalive
        keep_alive = connect.keep_alive
        if maximum and (keep_alive > maximum or (keep_alive == 0 and maximum < 65_535)):
            keep_alive = maximum
        self.keep_alive = keep_alive

    # ------------------------------------------------------------------ inbound PUBLISH

    def check_publish(self, packet: Publish, settings: MqttSettings) -> Publish:
        """A client's PUBLISH with its topic alias resolved; raises `ProtocolError` for a broken rule.

        The connection handler inlines the checks of a PUBLISH without properties (the common
        case) and calls `resolve_topic_alias` only for one with properties; this is the same
        check in one call, for tests and other drivers.
        """
        if packet.properties is not NO_PROPERTIES:
            packet = self.resolve_topic_alias(packet, settings)
        elif not packet.topic:
            raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, "PUBLISH without a topic name")
        check_capabilities(packet, settings)
        return packet

    def resolve_topic_alias(self, packet: Publish, settings: MqttSettings) -> Publish:
        """A PUBLISH with properties: refuse what only a server may send, apply its topic alias (set or use)."""
        if packet.properties.subscription_identifiers:
            raise ProtocolViolation("a client's PUBLISH may not carry a Subscription Identifier")
        alias = packet.properties.topic_alias
        if alias is None:
            if not packet.topic:
                raise ProtocolError(ReasonCode.TOPIC_NAME_INVALID, "PUBLISH without a topic name or alias")
            return packet
        if alias == 0 or alias > settings.topic_alias_maximum:
            raise ProtocolError(ReasonCode.TOPIC_ALIAS_INVALID, f"topic alias {alias} is out of range")
        aliases = self.topic_aliases
        if packet.topic:
            if aliases is None:
                aliases = self.topic_aliases = {}
            aliases[alias] = packet.topic
            return packet
        topic = aliases.get(alias) if aliases is not None else None
        if topic is None:
            raise ProtocolError(ReasonCode.PROTOCOL_ERROR, f"topic alias {alias} was never set")
        return Publish(topic, packet.payload, packet.qos, packet.retain, packet.dup, packet.packet_id, packet.properties)

    # ------------------------------------------------------------------ bytes out

    def encode(self, packet: Packet) -> bytes:
        """One control packet as this client's protocol level writes it."""
        return encode(packet, self.level)

    def publish_bytes(self, message: Message, qos: int, retain: bool, ids: tuple[int, ...], now: float,
                      packet_id: int = 0, dup: bool = False) -> bytes | None:
        """The PUBLISH bytes for this client, or None when larger than its Maximum Packet Size.

        Without topic aliases they come from the message's shared encoding. A v5 client that
        accepts aliases gets one per topic (the first message carries the topic and the alias,
        later ones the alias alone) until its Topic Alias Maximum is used up.
        """
        if self.alias_out_max:
            data = self._aliased_publish(message, qos, retain, ids, now, packet_id, dup)
            if data is not None:
                return data
        wire = message.wire(self.level, qos, retain, ids, now)
        data = with_packet_id(wire, packet_id, dup) if qos else wire[0]
        if self.max_packet_out and len(data) > self.max_packet_out:
            return None
        return data

    def _aliased_publish(self, message: Message, qos: int, retain: bool, ids: tuple[int, ...], now: float,
                         packet_id: int, dup: bool) -> bytes | None:
        """The PUBLISH with a topic alias, or None when no alias is free (or it would not fit)."""
        aliases = self.alias_out
        if aliases is None:
            aliases = self.alias_out = {}
        alias = aliases.get(message.topic)
        known = alias is not None
        if alias is None:
            if len(aliases) >= self.alias_out_max:
                return None
            alias = len(aliases) + 1
        packet = message.to_publish(qos, retain, packet_id, now, ids, dup)
        packet = replace(packet, topic="" if known else packet.topic,
                         properties=replace(packet.properties, topic_alias=alias))
        data = encode_publish(packet, 5)[0]
        if self.max_packet_out and len(data) > self.max_packet_out:
            return None
        if not known:
            aliases[message.topic] = alias  # only once the client is sure to learn it
        return data


def check_capabilities(packet: Publish, settings: MqttSettings) -> None:
    """Raise `ProtocolError` for a PUBLISH asking for a QoS or retain the server does not offer."""
    if packet.qos > settings.maximum_qos:
        raise ProtocolError(ReasonCode.QOS_NOT_SUPPORTED, f"QoS {packet.qos} is above the maximum")
    if packet.retain and not settings.retain_available:
        raise ProtocolError(ReasonCode.RETAIN_NOT_SUPPORTED, "retained messages are not available")


__all__ = ["PRE_CONNECT_MAX_PACKET", "ProtocolState", "check_capabilities"]
