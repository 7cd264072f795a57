"""Filter algebra used by ACL rules: match, cover and overlap, with the `$` rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookmq.mqtt.topics import topic_matches
from hookmq.plugins.auth.filters import covers, matches, overlaps, split


@pytest.mark.parametrize(
    ("rule", "name", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("a/b", "a", False),
        ("+", "", True),
    ],
)
def test_matches(rule: str, name: str, expected: bool) -> None:
    assert matches(split(rule), split(name)) is expected


@pytest.mark.parametrize(
    ("rule", "requested", "expected"),
    [
        ("a/#", "a/+/b", True),
        ("a/#", "a/#", True),
        ("a/#", "a", True),
        ("a/+", "a/#", False),
        ("a/+", "a/+", True),
        ("a/+", "a/b", True),
        ("a/b", "a/+", False),
        ("+/+", "a/+", True),
        ("#", "+/+", True),
        ("#", "$SYS/#", False),
        ("$SYS/#", "$SYS/broker/+", True),
        ("a/+/c", "a/b/#", False),
        ("a/b/c", "a/b", False),
    ],
)
def test_covers(rule: str, requested: str, expected: bool) -> None:
    assert covers(split(rule), split(requested)) is expected


@pytest.mark.parametrize(
    ("rule", "requested", "expected"),
    [
        ("test/nosubscribe", "#", True),
        ("test/nosubscribe", "+/+", True),
        ("test/nosubscribe", "test/+/x", False),
        ("a/#", "a", True),
        ("a", "a/#", True),
        ("a/b", "a/c", False),
        ("a/+", "+/b", True),
        ("a", "a/b", False),
        ("$SYS/x", "#", False),
        ("#", "$SYS/x", False),
    ],
)
def test_overlaps(rule: str, requested: str, expected: bool) -> None:
    assert overlaps(split(rule), split(requested)) is expected


# Property checks against brute force: every topic name of up to four levels over a small
# alphabet (with a `$` level) is enough to tell filters of up to three levels apart.
_LEVELS = ("a", "b", "$s")
_NAMES = [
    name
    for depth in range(1, 5)
    for name in ("/".join(parts) for parts in itertools.product(_LEVELS, repeat=depth))
]
_filters = st.lists(st.sampled_from(("a", "b", "$s", "+")), min_size=0, max_size=3).flatmap(
    lambda head: st.sampled_from(
        ["/".join([*head, "#"])] + (["/".join(head)] if head else [])
    )
)


def _matching(topic_filter: str) -> set[str]:
    return {name for name in _NAMES if topic_matches(topic_filter, name)}


@given(_filters, st.sampled_from(_NAMES))
def test_matches_agrees_with_the_protocol_layer(rule: str, name: str) -> None:
    assert matches(split(rule), split(name)) is topic_matches(rule, name)


@given(_filters, _filters)
def test_covers_is_set_inclusion(rule: str, requested: str) -> None:
    if covers(split(rule), split(requested)):
        assert _matching(requested) <= _matching(rule)
    elif _matching(requested):
        assert not _matching(requested) <= _matching(rule)


@given(_filters, _filters)
def test_overlaps_is_a_shared_topic(rule: str, requested: str) -> None:
    assert overlaps(split(rule), split(requested)) is bool(_matching(rule) & _matching(requested))
