"""The bodies cluster routing sends over the data links, sans-I/O: encode to bytes, decode or raise `FrameError`.

Every body is a msgpack array whose shape depends on its *kind* (the link layer carries the
kind beside the body). Kinds 32–63 are cluster routing's; the link layer's own control
frames use another range. A forwarded message carries its PUBLISH in MQTT 5 form (the bytes
local v5 subscribers get, from the message's own cache, with the *remaining* expiry interval),
so the one MQTT decoder the broker trusts for clients decodes it on the other side.

========================  ==========================================================
kind                      body
========================  ==========================================================
``ROUTES_BEGIN``  32      ``[snapshot_id]``: a full snapshot of the sender's filters starts
``ROUTES_CHUNK``  33      ``[snapshot_id, [[filter, count], ...]]``: part of it
``ROUTES_END``    34      ``[snapshot_id]``: filters not named since BEGIN are gone
``ROUTES_DELTA``  35      ``[[filter, count], ...]``: filters whose count changed (0: gone)
``FORWARD``       36      ``[forward_id, origin, [[group, filter], ...], hops, publish(, identity)]``
``RETAINED``      37      ``[[topic, version, publish or nil], ...]``: retained states (nil: cleared)
========================  ==========================================================

A QoS 1/2 ``FORWARD`` carries the message's ``identity`` (at most `MAX_IDENTITY` bytes, given by
the node that first forwarded it and kept when it is re-routed): the receiving node stores it
with each session's copy, so a copy sent again after a node's crash is recognised there.

A ``count`` is how many local sessions hold the filter (for ``$share/<group>/<filter>``: how
many members the group has on the sender), so deltas are absolute values: applying one twice,
or a snapshot chunk after a delta of the same moment, gives the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]

from hookmq.mqtt.codec import Decoder
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import Publish

__all__ = [
    "FORWARD", "KINDS", "RETAINED", "ROUTES_BEGIN", "ROUTES_CHUNK", "ROUTES_DELTA", "ROUTES_END",
    "Forward", "FrameError", "RetainedState", "RoutesBegin", "RoutesChunk", "RoutesDelta", "RoutesEnd",
    "decode", "encode_forward", "encode_publish_body", "encode_retained", "encode_routes_begin",
    "encode_routes_chunk", "encode_routes_delta", "encode_routes_end",
]

ROUTES_BEGIN = 32
ROUTES_CHUNK = 33
ROUTES_END = 34
ROUTES_DELTA = 35
FORWARD = 36
RETAINED = 37
KINDS = frozenset({ROUTES_BEGIN, ROUTES_CHUNK, ROUTES_END, ROUTES_DELTA, FORWARD, RETAINED})

#: A body is at most this long (a 1 MiB payload and its properties fit many times over; the
#: broker's own `max_packet_size` limits what a client can publish in the first place).
MAX_BODY = 268_435_460
#: Filters are MQTT strings: at most 65 535 UTF-8 bytes.
MAX_FILTER = 65_535
#: A message identity is short (the first forwarder's boot nonce and its forward id).
MAX_IDENTITY = 64

RouteCounts = tuple[tuple[str, int], ...]


class FrameError(ValueError):
    """A body that cannot be read: wrong shape, wrong types, or a PUBLISH the MQTT decoder refuses."""


@dataclass(frozen=True, slots=True)
class RoutesBegin:
    """A snapshot of the sender's filters starts."""

    snapshot_id: int


@dataclass(frozen=True, slots=True)
class RoutesChunk:
    """Part of a snapshot: filters and their counts."""

    snapshot_id: int
    routes: RouteCounts


@dataclass(frozen=True, slots=True)
class RoutesEnd:
    """The snapshot is complete: every filter of the sender was named since its BEGIN."""

    snapshot_id: int


@dataclass(frozen=True, slots=True)
class RoutesDelta:
    """Filters whose count changed on the sender (count 0: the filter is gone)."""

    routes: RouteCounts


@dataclass(frozen=True, slots=True)
class Forward:
    """A message for the receiver's sessions (and the share groups it was chosen to serve)."""

    forward_id: int
    origin: str | None
    shares: tuple[tuple[str, str], ...]
    hops: int
    publish: Publish
    #: The message's cluster-wide identity (QoS 1/2), None from a sender that gives none.
    identity: bytes | None = None


@dataclass(frozen=True, slots=True)
class RetainedState:
    """One topic's retained state as the sender holds it (``publish`` None: cleared)."""

    topic: str
    version: int
    publish: Publish | None


Frame = RoutesBegin | RoutesChunk | RoutesEnd | RoutesDelta | Forward | tuple[RetainedState, ...]


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def encode_routes_begin(snapshot_id: int) -> bytes:
    """The body of ``ROUTES_BEGIN``."""
    return _pack([snapshot_id])


def encode_routes_chunk(snapshot_id: int, routes: list[tuple[str, int]]) -> bytes:
    """The body of ``ROUTES_CHUNK``."""
    return _pack([snapshot_id, routes])


def encode_routes_end(snapshot_id: int) -> bytes:
    """The body of ``ROUTES_END``."""
    return _pack([snapshot_id])


def encode_routes_delta(routes: list[tuple[str, int]]) -> bytes:
    """The body of ``ROUTES_DELTA``."""
    return _pack(routes)


def encode_forward(forward_id: int, origin: str | None, shares: tuple[tuple[str, str], ...], hops: int,
                   publish: bytes, identity: bytes | None = None) -> bytes:
    """The body of ``FORWARD``; ``publish`` is an encoded MQTT 5 PUBLISH."""
    fields = [forward_id, origin, [list(share) for share in shares] if shares else [], hops, publish]
    if identity is not None:
        fields.append(identity)
    return _pack(fields)


def encode_publish_body(packet: Publish) -> bytes:
    """An MQTT 5 PUBLISH as a body field (packet identifier 1 for QoS 1/2: the receiver ignores it)."""
    from dataclasses import replace

    from hookmq.mqtt.codec import encode

    if packet.qos and not packet.packet_id:
        packet = replace(packet, packet_id=1)
    return encode(packet, 5)


def encode_retained(states: list[tuple[str, int, bytes | None]]) -> bytes:
    """The body of ``RETAINED``: ``(topic, version, encoded PUBLISH or None)`` each."""
    return _pack([list(state) for state in states])


# ------------------------------------------------------------------------------ decoding


def decode(kind: int, body: bytes) -> Frame:
    """Read one body of a routing kind; raises `FrameError` for anything else."""
    if len(body) > MAX_BODY:
        raise FrameError(f"body of {len(body)} bytes")
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except Exception as error:  # msgpack raises several types for bad bytes
        raise FrameError(f"not msgpack: {error}") from None
    if kind == ROUTES_BEGIN:
        return RoutesBegin(_snapshot_id(value, 1))
    if kind == ROUTES_CHUNK:
        return RoutesChunk(_snapshot_id(value, 2), _route_counts(value[1]))
    if kind == ROUTES_END:
        return RoutesEnd(_snapshot_id(value, 1))
    if kind == ROUTES_DELTA:
        return RoutesDelta(_route_counts(value))
    if kind == FORWARD:
        return _forward(value)
    if kind == RETAINED:
        return _retained(value)
    raise FrameError(f"unknown kind {kind}")


def _array(value: object, length: int) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise FrameError(f"expected an array of {length}")
    return value


def _int(value: object, low: int = 0, high: int = 2**63 - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FrameError(f"expected an integer in [{low}, {high}]")
    return value


def _str(value: object, limit: int = MAX_FILTER) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise FrameError("expected a string")
    return value


def _snapshot_id(value: object, length: int) -> int:
    return _int(_array(value, length)[0])


def _route_counts(value: object) -> RouteCounts:
    if not isinstance(value, list):
        raise FrameError("expected an array of routes")
    routes = []
    for item in value:
        topic_filter, count = _array(item, 2)
        routes.append((_str(topic_filter), _int(count, 0, 2**32)))
    return tuple(routes)


def _publish(value: object) -> Publish:
    if not isinstance(value, bytes):
        raise FrameError("expected a PUBLISH as bytes")
    decoder = Decoder(protocol_level=5)
    try:
        packets = decoder.feed(value)
    except ProtocolError as error:
        raise FrameError(f"bad PUBLISH: {error}") from None
    if len(packets) != 1 or not isinstance(packets[0], Publish) or decoder.buffered:
        raise FrameError("expected exactly one PUBLISH")
    return packets[0]


def _forward(value: object) -> Forward:
    identity: bytes | None = None
    if isinstance(value, list) and len(value) == 6:
        identity = value[5]
        if not isinstance(identity, bytes) or len(identity) > MAX_IDENTITY:
            raise FrameError("expected a message identity as bytes")
        value = value[:5]
    forward_id, origin, shares, hops, publish = _array(value, 5)
    if origin is not None:
        origin = _str(origin)
    if not isinstance(shares, list):
        raise FrameError("expected an array of share groups")
    keys = []
    for share in shares:
        group, topic_filter = _array(share, 2)
        keys.append((_str(group), _str(topic_filter)))
    return Forward(_int(forward_id), origin, tuple(keys), _int(hops, 0, 255), _publish(publish), identity)


def _retained(value: object) -> tuple[RetainedState, ...]:
    if not isinstance(value, list):
        raise FrameError("expected an array of retained states")
    states = []
    for item in value:
        topic, version, publish = _array(item, 3)
        states.append(RetainedState(_str(topic), _int(version), None if publish is None else _publish(publish)))
    return tuple(states)
