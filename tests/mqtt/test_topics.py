"""Topic name and filter validation and matching (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7-4.8)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import Subscription, SubscriptionOptions
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.mqtt.topics import (
    MAX_TOPIC_BYTES,
    is_wildcard,
    parse_shared,
    topic_matches,
    validate_subscription,
    validate_topic_filter,
    validate_topic_name,
)

VALID_NAMES = [
    "sport/tennis/player1",
    "/finance",
    "finance/",
    "/",
    "//",
    "Accounts payable",
    "$SYS/broker/uptime",
    "$share/group/a",  # a name that merely looks like a shared filter is an ordinary name
    "日本/東京",
    "a" * MAX_TOPIC_BYTES,
    "é" * (MAX_TOPIC_BYTES // 2),  # 65 534 bytes
]

INVALID_NAMES = [
    "",
    "sport/+",
    "sport/#",
    "+",
    "#",
    "sport+",
    "a\x00b",
    "a" * (MAX_TOPIC_BYTES + 1),
    "é" * (MAX_TOPIC_BYTES // 2 + 1),  # short in characters, too long in UTF-8 bytes
]

VALID_FILTERS = [
    "#",
    "+",
    "sport/tennis/#",
    "+/tennis/#",
    "sport/+/player1",
    "+/+",
    "/+",
    "sport/",
    "/",
    "$SYS/#",
    "$SYS/monitor/+",
    "$share",  # no trailing '/': an ordinary one-level filter
    "$shared/x",
    "$share/consumer1/sport/tennis/+",
    "$share/consumer2/sport/tennis/+",
    "$share/g/#",
    "$share/g//finance",
    "$share/g/$SYS/#",
    "a" * MAX_TOPIC_BYTES,
]

INVALID_FILTERS = [
    "",
    "sport/tennis#",
    "sport/tennis/#/ranking",
    "sport+",
    "sport/+tennis",
    "##",
    "#/",
    "++",
    "a\x00",
    "a" * (MAX_TOPIC_BYTES + 1),
    "$share/",
    "$share//a",
    "$share/g",
    "$share/g/",
    "$share/g+/a",
    "$share/g#/a",
    "$share/+/a",
    "$share/#/a",
    "$share/g/a/#/b",
    "$share/g/a+",
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_topic_names_pass(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_topic_names_raise_topic_name_invalid(name: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_topic_name(name)
    assert caught.value.reason_code == ReasonCode.TOPIC_NAME_INVALID


@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_valid_topic_filters_pass(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", INVALID_FILTERS)
def test_invalid_topic_filters_raise_topic_filter_invalid(topic_filter: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_topic_filter(topic_filter)
    assert caught.value.reason_code == ReasonCode.TOPIC_FILTER_INVALID


def test_no_local_on_a_shared_subscription_is_a_protocol_error() -> None:
    shared = Subscription("$share/g/a", SubscriptionOptions(no_local=True))
    with pytest.raises(ProtocolError) as caught:
        validate_subscription(shared)
    assert caught.value.reason_code == ReasonCode.PROTOCOL_ERROR


def test_no_local_on_an_ordinary_subscription_is_fine() -> None:
    validate_subscription(Subscription("a/+", SubscriptionOptions(no_local=True)))
    validate_subscription(Subscription("$share/g/a", SubscriptionOptions(qos=2)))


def test_validate_subscription_checks_the_filter_too() -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_subscription(Subscription("a/#/b"))
    assert caught.value.reason_code == ReasonCode.TOPIC_FILTER_INVALID


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("sport/#", (None, "sport/#")),
        ("$share/consumer1/sport/tennis/+", ("consumer1", "sport/tennis/+")),
        ("$share/g//finance", ("g", "/finance")),
        ("$share/g/#", ("g", "#")),
        ("$share", (None, "$share")),
        ("$SYS/#", (None, "$SYS/#")),
    ],
)
def test_parse_shared(topic_filter: str, expected: tuple[str | None, str]) -> None:
    assert parse_shared(topic_filter) == expected


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [("a/b", False), ("a/+", True), ("#", True), ("$share/g/a", False), ("$share/g/+/a", True)],
)
def test_is_wildcard(topic_filter: str, expected: bool) -> None:
    assert is_wildcard(topic_filter) is expected


# (filter, topic, matches): the examples of MQTT 3.1.1 §4.7 and MQTT 5.0 §4.7/§4.8, then edge cases.
MATCH_TABLE = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player2", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+", "finance", True),
    ("sport/+/player1", "sport/tennis/player1", True),
    ("+/tennis/#", "sport/tennis", True),
    ("+/tennis/#", "sport/golf", False),
    ("ACCOUNTS", "Accounts", False),
    ("Accounts payable", "Accounts payable", True),
    ("/finance", "finance", False),
    ("finance", "finance", True),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
    # '$' topics: a leading wildcard never matches them (MQTT-4.7.2-1).
    ("#", "$SYS/monitor/Clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("+", "$SYS", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("a/+", "a/$b", True),  # only the first level is special
    ("a/#", "a/$b/c", True),
    # Shared subscriptions match on their real filter.
    ("$share/consumer1/sport/tennis/+", "sport/tennis/player1", True),
    ("$share/consumer1/sport/tennis/+", "sport/tennis", False),
    ("$share/g/#", "anything/at/all", True),
    ("$share/g/#", "$SYS/x", False),
    ("$share/g//finance", "/finance", True),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), MATCH_TABLE)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    validate_topic_filter(topic_filter)
    validate_topic_name(topic)
    assert topic_matches(topic_filter, topic) is expected


def _as_regex(topic_filter: str) -> re.Pattern[str]:
    """An independent oracle: the filter translated to a regular expression."""
    levels = topic_filter.split("/")
    if levels[-1] == "#":
        prefix = "/".join("[^/]*" if level == "+" else re.escape(level) for level in levels[:-1])
        pattern = f"{prefix}(/.*)?" if len(levels) > 1 else ".*"
    else:
        pattern = "/".join("[^/]*" if level == "+" else re.escape(level) for level in levels)
    if levels[0] in ("+", "#"):
        pattern = f"(?!\\$){pattern}"
    return re.compile(pattern, re.DOTALL)


_levels = st.sampled_from(["a", "b", "", "$a", "ab"])


@st.composite
def _filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.one_of(_levels, st.just("+")), max_size=4))
    if not "/".join(levels) or draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


@settings(max_examples=500, deadline=None, database=None)
@given(topic_filter=_filters(), topic=st.lists(_levels, min_size=1, max_size=5).map("/".join).filter(bool))
def test_topic_matches_agrees_with_a_regular_expression(topic_filter: str, topic: str) -> None:
    validate_topic_filter(topic_filter)
    expected = _as_regex(topic_filter).fullmatch(topic) is not None
    assert topic_matches(topic_filter, topic) is expected
    assert topic_matches(f"$share/g/{topic_filter}", topic) is expected
