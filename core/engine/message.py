"""Application messages as the engine routes them, with their encoded forms cached.

A message is encoded once per distinct wire form (protocol level, QoS, retain flag,
subscription identifiers, remaining expiry) and the bytes are shared by every subscriber that
needs that form; QoS 1/2 copies only patch in their own packet identifier.

State owned: each message's fields and its cache of encoded forms. Who changes it: nobody once
the message is routed (the cache fills as forms are first asked for); build a new message
rather than change one.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..mqtt.codec import encode_publish_fields, patch_packet_id
from ..mqtt.packets import NO_PROPERTIES, Properties, Publish

#: (bytes, offset of the packet identifier or -1)
Wire = tuple[bytes, int]
#: The cached forms differ only in level, QoS and retain (forms with subscription identifiers or an
#: expiry are encoded per subscriber, never cached): ``level * 8 + qos * 2 + retain``.
WireKey = int


class Message:
    """One application message inside the broker; treat it as immutable once routed."""

    __slots__ = ("_wire", "_wire_key", "_wire_one", "expiry_at", "identity", "origin", "payload", "properties", "qos", "redelivered", "retain",
                 "topic")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: Properties = NO_PROPERTIES,
        expiry_at: float | None = None,
        origin: str | None = None,
        identity: bytes | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        #: Properties forwarded to v5 subscribers (topic alias and subscription ids removed).
        self.properties = properties
        #: Wall-clock time after which the message must not be delivered, or None.
        self.expiry_at = expiry_at
        #: Client id of the publisher (None for the broker itself), for no-local.
        self.origin = origin
        #: Cluster-wide identity given by the node that forwarded it (None for a local publish).
        self.identity = identity
        #: Sent again after a node's crash: sessions holding a copy with the same identity skip it.
        self.redelivered = False
        #: The first form encoded, kept without a dictionary: most messages reach one subscriber.
        self._wire_key: WireKey = -1
        self._wire_one: Wire = (b"", -1)
        #: Further forms, once a second one is encoded.
        self._wire: dict[WireKey, Wire] | None = None

    @classmethod
    def from_publish(cls, packet: Publish, origin: str | None, now: float, max_expiry: int | None) -> Message:
        """Build a message from a received PUBLISH, resolving its expiry interval to a deadline."""
        props = packet.properties
        expiry_at: float | None = None
        if props is not NO_PROPERTIES:
            interval = props.message_expiry_interval
            if max_expiry is not None and (interval is None or interval > max_expiry):
                interval = max_expiry
            if interval is not None:
                expiry_at = now + interval
            if props.topic_alias is not None or props.subscription_identifiers or props.message_expiry_interval:
                props = replace(props, topic_alias=None, subscription_identifiers=(), message_expiry_interval=None)
                if props == NO_PROPERTIES:
                    props = NO_PROPERTIES
        elif max_expiry is not None:
            expiry_at = now + max_expiry
        # Message(...), not cls(...): compiled, a direct constructor call skips parsing the arguments.
        return Message(packet.topic, packet.payload, packet.qos, packet.retain, props, expiry_at, origin)

    def expired(self, now: float) -> bool:
        """Whether the message's expiry interval has passed."""
        return self.expiry_at is not None and now >= self.expiry_at

    def remaining_expiry(self, now: float) -> int | None:
        """The expiry interval left, rounded up to whole seconds, or None."""
        if self.expiry_at is None:
            return None
        return max(1, math.ceil(self.expiry_at - now))

    def to_publish(self, qos: int, retain: bool, packet_id: int = 0, now: float | None = None,
                   subscription_ids: tuple[int, ...] = (), dup: bool = False) -> Publish:
        """The PUBLISH packet for one recipient (used where bytes are not cached)."""
        props = self.properties
        remaining = self.remaining_expiry(now) if now is not None else None
        if subscription_ids or remaining is not None:
            props = replace(props, subscription_identifiers=subscription_ids, message_expiry_interval=remaining)
        return Publish(self.topic, self.payload, qos, retain, dup, packet_id if qos else 0, props)

    def wire(self, level: int, qos: int, retain: bool, subscription_ids: tuple[int, ...], now: float) -> Wire:
        """The encoded PUBLISH for this wire form, from the cache when another subscriber shared it."""
        remaining: int | None = self.remaining_expiry(now) if self.expiry_at is not None else None
        if level != 5:
            subscription_ids = ()
            remaining = None
        if subscription_ids or remaining is not None:
            # Forms that vary per subscriber or per second are not cached: a retained message
            # lives long, and its cache must not grow with every new subscription identifier.
            props = replace(self.properties, subscription_identifiers=subscription_ids,
                            message_expiry_interval=remaining)
            return encode_publish_fields(self.topic, self.payload, qos, retain, False, 1 if qos else 0, props, level)
        key = level * 8 + qos * 2 + (1 if retain else 0)
        if key == self._wire_key:
            return self._wire_one
        cache = self._wire
        if cache is not None:
            found = cache.get(key)
            if found is not None:
                return found
        props = self.properties if level == 5 else NO_PROPERTIES
        # From the fields: a Publish built here only to be encoded cost an (interpreted) dataclass __init__ per message.
        wire = encode_publish_fields(self.topic, self.payload, qos, retain, False, 1 if qos else 0, props, level)
        if self._wire_key < 0:
            self._wire_key = key
            self._wire_one = wire
        else:
            if cache is None:
                cache = self._wire = {}
            cache[key] = wire
        return wire


def with_packet_id(wire: Wire, packet_id: int, dup: bool = False) -> bytes:
    """The cached bytes with this recipient's packet identifier (and DUP flag) patched in."""
    data, offset = wire
    if offset < 0:
        return data
    patched = patch_packet_id(data, offset, packet_id)
    if dup:
        return bytes((patched[0] | 0x08,)) + patched[1:]
    return patched
