"""Filter algebra used by ACL rules: match, cover and overlap, with the `$` rule."""

from __future__ import annotations

import pytest
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
