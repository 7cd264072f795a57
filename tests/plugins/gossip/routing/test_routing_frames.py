"""The routing bodies and the route tables, sans-I/O: round trips, random bytes, and the counting rules."""

from __future__ import annotations

import contextlib

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.mqtt.packets import Properties, Publish
from hookmq.plugins.gossip.routing import frames
from hookmq.plugins.gossip.routing.frames import (
    FORWARD,
    KINDS,
    RETAINED,
    ROUTES_BEGIN,
    ROUTES_CHUNK,
    ROUTES_DELTA,
    ROUTES_END,
    Forward,
    FrameError,
    RoutesBegin,
    RoutesChunk,
    RoutesDelta,
    RoutesEnd,
    decode,
)
from hookmq.plugins.gossip.routing.interest import LocalInterest
from hookmq.plugins.gossip.routing.remote import RemoteRoutes

words = st.text(st.characters(blacklist_characters="\x00/+#", blacklist_categories=("Cs",)), min_size=1, max_size=8)
filters = st.lists(st.one_of(words, st.just("+")), min_size=1, max_size=4).map("/".join)
counts = st.integers(0, 1000)


def test_every_kind_round_trips() -> None:
    assert decode(ROUTES_BEGIN, frames.encode_routes_begin(7)) == RoutesBegin(7)
    assert decode(ROUTES_END, frames.encode_routes_end(7)) == RoutesEnd(7)
    assert decode(ROUTES_CHUNK, frames.encode_routes_chunk(7, [("a/#", 2), ("$share/g/b", 1)])) == \
        RoutesChunk(7, (("a/#", 2), ("$share/g/b", 1)))
    assert decode(ROUTES_DELTA, frames.encode_routes_delta([("x", 0)])) == RoutesDelta((("x", 0),))
    packet = Publish("t/1", b"\x00payload", 1, True, packet_id=1,
                     properties=Properties(message_expiry_interval=9, user_properties=(("k", "v"),),
                                           content_type="c", response_topic="r", correlation_data=b"d",
                                           payload_format_indicator=1))
    forward = decode(FORWARD, frames.encode_forward(3, "origin", (("g", "t/#"),), 1, frames.encode_publish_body(packet)))
    assert forward == Forward(3, "origin", (("g", "t/#"),), 1, packet)
    [state] = decode(RETAINED, frames.encode_retained([("t/1", 10**18, frames.encode_publish_body(packet))]))  # type: ignore[misc]
    assert (state.topic, state.version, state.publish) == ("t/1", 10**18, packet)
    [cleared] = decode(RETAINED, frames.encode_retained([("t/1", 5, None)]))  # type: ignore[misc]
    assert cleared.publish is None


@pytest.mark.parametrize(("kind", "value"), [
    (ROUTES_BEGIN, []), (ROUTES_BEGIN, ["x"]), (ROUTES_BEGIN, [-1]), (ROUTES_BEGIN, [True]),
    (ROUTES_CHUNK, [1, [["a"]]]), (ROUTES_CHUNK, [1, [["a", -2]]]), (ROUTES_CHUNK, [1, [[b"a", 1]]]),
    (ROUTES_DELTA, {"a": 1}), (ROUTES_DELTA, [["a", 2**40]]),
    (FORWARD, [1, None, [], 0, b"not mqtt"]), (FORWARD, [1, None, [], 0, "text"]), (FORWARD, [1, 5, [], 0, b""]),
    (FORWARD, [1, None, [["g"]], 0, b""]), (FORWARD, [1, None, [], 999, b""]),
    (RETAINED, [["t", 1]]), (RETAINED, [["t", "1", None]]), (RETAINED, [["t", 1, b"\x30"]]), (99, [1]),
])
def test_malformed_bodies_are_refused(kind: int, value: object) -> None:
    with pytest.raises(FrameError):
        decode(kind, msgpack.packb(value, use_bin_type=True))


def test_a_forward_must_carry_exactly_one_publish() -> None:
    one = frames.encode_publish_body(Publish("t", b"x", 0))
    with pytest.raises(FrameError):
        decode(FORWARD, frames.encode_forward(1, None, (), 0, one + one))
    with pytest.raises(FrameError):
        decode(FORWARD, frames.encode_forward(1, None, (), 0, one[:-1]))


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), body=st.binary(max_size=200))
def test_random_bytes_never_escape_as_another_error(kind: int, body: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode(kind, body)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), value=st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text(max_size=5) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20))
def test_random_msgpack_values_never_escape_as_another_error(kind: int, value: object) -> None:
    with contextlib.suppress(FrameError):
        decode(kind, msgpack.packb(value, use_bin_type=True))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(filters, counts), max_size=20))
def test_route_counts_round_trip(routes: list[tuple[str, int]]) -> None:
    assert decode(ROUTES_DELTA, frames.encode_routes_delta(routes)) == RoutesDelta(tuple(routes))


def test_local_interest_announces_first_and_last_and_every_share_count() -> None:
    interest = LocalInterest()
    assert interest.added("a/#") == ("a/#", 1)
    assert interest.added("a/#") is None  # a second subscriber changes nothing elsewhere
    assert interest.removed("a/#") is None
    assert interest.removed("a/#") == ("a/#", 0)
    assert interest.removed("a/#") is None  # never counted: nothing to take back
    assert interest.added("$share/g/s") == ("$share/g/s", 1)
    assert interest.added("$share/g/s") == ("$share/g/s", 2)  # the others weigh us by it
    assert interest.removed("$share/g/s") == ("$share/g/s", 1)
    interest.reset(["x", "x", "y"])
    assert (interest.count("x"), interest.count("y"), len(interest)) == (2, 1, 2)


class Sink:
    def __init__(self) -> None:
        self.routes: set[tuple[str, str]] = set()

    def add_route(self, destination: str, topic_filter: str) -> bool:
        if "#" in topic_filter and not topic_filter.endswith("#"):
            raise ValueError("bad filter")
        added = (destination, topic_filter) not in self.routes
        self.routes.add((destination, topic_filter))
        return added

    def remove_route(self, destination: str, topic_filter: str) -> bool:
        present = (destination, topic_filter) in self.routes
        self.routes.discard((destination, topic_filter))
        return present

    def remove_destination(self, destination: str) -> int:
        mine = {route for route in self.routes if route[0] == destination}
        self.routes -= mine
        return len(mine)


def test_remote_routes_snapshot_deltas_and_stale_routes() -> None:
    sink = Sink()
    remote = RemoteRoutes(sink)
    remote.delta("B", (("old", 1), ("kept", 1)))
    remote.begin("B", 5)
    remote.chunk("B", 5, (("kept", 1), ("$share/g/s", 3)))
    remote.delta("B", (("new", 1),))  # a delta during the snapshot counts as named
    remote.chunk("B", 4, (("superseded", 1),))  # a chunk of an older snapshot is ignored
    assert remote.receiving_snapshot("B")
    assert remote.end("B", 5) == 1  # "old" was named by neither: stale
    assert sink.routes == {("B", "kept"), ("B", "$share/g/s"), ("B", "new")}
    assert remote.share_weight(("g", "s"), "B") == 3
    remote.delta("B", (("$share/g/s", 0), ("bad/#/x", 1)))
    assert remote.share_holders(("g", "s")) == {} and ("B", "bad/#/x") not in sink.routes
    assert remote.forget("B") == 2 and sink.routes == set()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["B", "C"]), st.lists(st.tuples(filters, counts), max_size=5)),
                max_size=20))
def test_remote_routes_mirror_the_last_word_about_each_filter(steps: list[tuple[str, list[tuple[str, int]]]]) -> None:
    sink = Sink()
    remote = RemoteRoutes(sink)
    expected: dict[tuple[str, str], int] = {}
    for node, routes in steps:
        remote.delta(node, tuple(routes))
        for topic_filter, count in routes:
            expected[(node, topic_filter)] = count
    assert sink.routes == {key for key, count in expected.items() if count > 0}
