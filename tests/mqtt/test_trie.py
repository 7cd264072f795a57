"""The subscription trie: matching, replacing, removing, pruning and shared groups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.mqtt.packets import SubscriptionOptions
from hookmq.mqtt.topics import topic_matches, validate_topic_filter, validate_topic_name
from hookmq.mqtt.trie import Matches, SubscriberEntry, SubscriptionTrie

QOS0 = SubscriptionOptions()
QOS1 = SubscriptionOptions(qos=1)


def entry(client_id: str, topic_filter: str, options: SubscriptionOptions = QOS0) -> SubscriberEntry:
    return SubscriberEntry(client_id, topic_filter, options)


def direct_pairs(matches: Matches) -> set[tuple[str, str]]:
    return {(e.client_id, e.topic_filter) for e in matches.direct}


def shared_members(matches: Matches) -> dict[tuple[str, str], set[str]]:
    return {key: {e.client_id for e in members} for key, members in matches.shared.items()}


def trie_with(*pairs: tuple[str, str]) -> SubscriptionTrie:
    trie = SubscriptionTrie()
    for client_id, topic_filter in pairs:
        trie.subscribe(entry(client_id, topic_filter))
    return trie


# --- matching -------------------------------------------------------------------------------


SPEC_FILTERS = [
    "sport/tennis/player1/#",
    "sport/#",
    "sport/tennis/+",
    "sport/+",
    "+/+",
    "/+",
    "+",
    "#",
    "+/monitor/Clients",
    "$SYS/#",
    "$SYS/monitor/+",
    "/finance",
    "finance",
]


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("sport", {"sport/#", "+", "#"}),
        ("sport/", {"sport/#", "sport/+", "+/+", "#"}),
        ("sport/tennis/player1", {"sport/tennis/player1/#", "sport/#", "sport/tennis/+", "#"}),
        ("sport/tennis/player1/ranking", {"sport/tennis/player1/#", "sport/#", "#"}),
        ("/finance", {"+/+", "/+", "#", "/finance"}),
        ("finance", {"+", "#", "finance"}),
        ("$SYS/monitor/Clients", {"$SYS/#", "$SYS/monitor/+"}),
        ("$SYS", {"$SYS/#"}),
        ("other/monitor/Clients", {"+/monitor/Clients", "#"}),
    ],
)
def test_match_spec_examples(topic: str, expected: set[str]) -> None:
    trie = trie_with(*(("c", f) for f in SPEC_FILTERS))
    assert {e.topic_filter for e in trie.match(topic).direct} == expected


def test_match_on_an_empty_trie_is_empty() -> None:
    matches = SubscriptionTrie().match("a/b")
    assert matches.direct == [] and matches.shared == {}
    assert not matches


def test_every_matching_subscription_of_a_client_is_returned() -> None:
    trie = trie_with(("c", "a/+"), ("c", "a/#"), ("d", "a/b"))
    assert direct_pairs(trie.match("a/b")) == {("c", "a/+"), ("c", "a/#"), ("d", "a/b")}


def test_filter_parent_of_hash_matches_once() -> None:
    trie = trie_with(("c", "a/#"), ("c", "a/b/#"))
    assert sorted(e.topic_filter for e in trie.match("a/b").direct) == ["a/#", "a/b/#"]


def test_match_result_is_independent_of_later_changes() -> None:
    trie = trie_with(("c", "a/+"), ("d", "$share/g/a/+"))
    matches = trie.match("a/b")
    trie.remove_client("c")
    trie.remove_client("d")
    assert direct_pairs(matches) == {("c", "a/+")}
    assert shared_members(matches) == {("g", "a/+"): {"d"}}


# --- subscribe, replace, unsubscribe, remove_client ----------------------------------------


def test_subscribe_returns_none_then_the_replaced_entry() -> None:
    trie = SubscriptionTrie()
    first = entry("c", "a/b", QOS0)
    second = entry("c", "a/b", QOS1)
    assert trie.subscribe(first) is None
    assert trie.subscribe(second) is first
    assert len(trie) == 1
    assert trie.match("a/b").direct == [second]
    assert trie.subscriptions_of("c") == [second]
    assert trie.get("c", "a/b") is second


def test_distinct_filters_and_clients_are_distinct_subscriptions() -> None:
    trie = trie_with(("c", "a"), ("c", "$share/g/a"), ("c", "$share/h/a"), ("d", "a"))
    assert len(trie) == 4
    assert [e.topic_filter for e in trie.subscriptions_of("c")] == ["a", "$share/g/a", "$share/h/a"]
    assert {(e.client_id, e.topic_filter) for e in trie} == {
        ("c", "a"),
        ("c", "$share/g/a"),
        ("c", "$share/h/a"),
        ("d", "a"),
    }


def test_unsubscribe_returns_the_entry_or_none() -> None:
    trie = trie_with(("c", "a/+"), ("d", "a/+"))
    removed = trie.unsubscribe("c", "a/+")
    assert removed is not None and removed.client_id == "c"
    assert trie.unsubscribe("c", "a/+") is None
    assert trie.unsubscribe("nobody", "a/+") is None
    assert trie.unsubscribe("d", "a/#") is None
    assert direct_pairs(trie.match("a/b")) == {("d", "a/+")}
    assert len(trie) == 1


def test_remove_client_removes_only_its_subscriptions() -> None:
    trie = trie_with(("c", "a/#"), ("c", "$share/g/a/#"), ("c", "b"), ("d", "a/#"), ("d", "$share/g/a/#"))
    removed = trie.remove_client("c")
    assert {e.topic_filter for e in removed} == {"a/#", "$share/g/a/#", "b"}
    assert trie.subscriptions_of("c") == []
    assert trie.remove_client("c") == []
    assert direct_pairs(trie.match("a/x")) == {("d", "a/#")}
    assert shared_members(trie.match("a/x")) == {("g", "a/#"): {"d"}}
    assert trie.match("b").direct == []
    assert len(trie) == 2


def test_subscriptions_of_unknown_client_is_empty() -> None:
    assert SubscriptionTrie().subscriptions_of("ghost") == []


# --- pruning --------------------------------------------------------------------------------


def test_unsubscribing_everything_prunes_every_node() -> None:
    filters = ["a/b/c", "a/b/#", "a/+/c", "#", "+", "$SYS/#", "/x", "a//b", "$share/g/a/b/c", "$share/h/+/#"]
    trie = SubscriptionTrie()
    for client in ("c1", "c2"):
        for topic_filter in filters:
            trie.subscribe(entry(client, topic_filter))
    assert trie.node_count() > 0
    for topic_filter in filters:
        trie.unsubscribe("c1", topic_filter)
    assert len(trie) == len(filters)
    trie.remove_client("c2")
    assert len(trie) == 0
    assert trie.node_count() == 0
    assert list(trie) == []


def test_pruning_keeps_nodes_other_filters_need() -> None:
    trie = trie_with(("c", "a/b/c/d"), ("c", "a/b"))
    before = trie.node_count()
    trie.unsubscribe("c", "a/b/c/d")
    assert trie.node_count() == before - 2
    assert direct_pairs(trie.match("a/b")) == {("c", "a/b")}
    trie.unsubscribe("c", "a/b")
    assert trie.node_count() == 0


def test_a_shared_member_leaving_keeps_the_group_until_the_last() -> None:
    trie = trie_with(("c", "$share/g/a"), ("d", "$share/g/a"))
    trie.unsubscribe("c", "$share/g/a")
    assert shared_members(trie.match("a")) == {("g", "a"): {"d"}}
    trie.unsubscribe("d", "$share/g/a")
    assert trie.match("a").shared == {}
    assert trie.node_count() == 0


# --- shared groups --------------------------------------------------------------------------


def test_one_group_collects_every_member() -> None:
    trie = trie_with(
        ("c1", "$share/consumer1/sport/tennis/+"),
        ("c2", "$share/consumer1/sport/tennis/+"),
        ("c3", "$share/consumer2/sport/tennis/+"),
        ("c4", "sport/tennis/+"),
        ("c5", "$share/consumer1/sport/#"),
    )
    matches = trie.match("sport/tennis/player1")
    assert shared_members(matches) == {
        ("consumer1", "sport/tennis/+"): {"c1", "c2"},
        ("consumer2", "sport/tennis/+"): {"c3"},
        ("consumer1", "sport/#"): {"c5"},
    }
    assert direct_pairs(matches) == {("c4", "sport/tennis/+")}


def test_shared_entries_keep_their_full_filter_and_group() -> None:
    trie = trie_with(("c", "$share/g//finance"))
    [member] = trie.match("/finance").shared[("g", "/finance")]
    assert member.topic_filter == "$share/g//finance"
    assert member.share_group == "g"


def test_shared_wildcard_does_not_match_dollar_topics() -> None:
    trie = trie_with(("c", "$share/g/#"), ("d", "$share/g/$SYS/#"))
    assert shared_members(trie.match("$SYS/uptime")) == {("g", "$SYS/#"): {"d"}}


def test_share_group_is_derived_and_checked() -> None:
    assert entry("c", "$share/g/a").share_group == "g"
    assert entry("c", "a").share_group is None
    with pytest.raises(ValueError):
        SubscriberEntry("c", "$share/g/a", QOS0, share_group="h")
    with pytest.raises(ValueError):
        SubscriberEntry("c", "a", QOS0, share_group="g")


def test_replacing_a_shared_subscription_keeps_one_member() -> None:
    trie = SubscriptionTrie()
    old = entry("c", "$share/g/a", QOS0)
    new = entry("c", "$share/g/a", QOS1)
    trie.subscribe(old)
    assert trie.subscribe(new) is old
    assert trie.match("a").shared == {("g", "a"): [new]}


# --- property: the trie agrees with the naive matcher ---------------------------------------

TOPIC_LEVELS = st.sampled_from(["a", "b", "c", "", "$s", "$SYS"])
FILTER_LEVELS = st.sampled_from(["a", "b", "", "$s", "+", "+"])
topics = st.lists(TOPIC_LEVELS, min_size=1, max_size=5).map("/".join).filter(bool)


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(FILTER_LEVELS, min_size=0, max_size=4))
    if not "/".join(levels) or draw(st.booleans()):
        levels.append("#")
    real_filter = "/".join(levels)
    group = draw(st.sampled_from([None, None, "g", "h"]))
    return real_filter if group is None else f"$share/{group}/{real_filter}"


subscriptions = st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), topic_filters()), max_size=25)


def naive(pairs: set[tuple[str, str]], topic: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    matching = {(c, f) for c, f in pairs if topic_matches(f, topic)}
    direct = {(c, f) for c, f in matching if not f.startswith("$share/")}
    return direct, matching - direct


def trie_result(trie: SubscriptionTrie, topic: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    matches = trie.match(topic)
    shared = {(e.client_id, e.topic_filter) for members in matches.shared.values() for e in members}
    for (group, real_filter), members in matches.shared.items():
        assert all(e.topic_filter == f"$share/{group}/{real_filter}" for e in members)
    return direct_pairs(matches), shared


@settings(max_examples=300, deadline=None, database=None)
@given(pairs=subscriptions, probe_topics=st.lists(topics, min_size=1, max_size=8))
def test_trie_agrees_with_topic_matches(pairs: list[tuple[str, str]], probe_topics: list[str]) -> None:
    trie = SubscriptionTrie()
    for client_id, topic_filter in pairs:
        validate_topic_filter(topic_filter)
        trie.subscribe(entry(client_id, topic_filter))
    for topic in probe_topics:
        validate_topic_name(topic)
        assert trie_result(trie, topic) == naive(set(pairs), topic)


@settings(max_examples=200, deadline=None, database=None)
@given(pairs=subscriptions, drop=st.lists(st.integers(min_value=0, max_value=24)), probe=topics)
def test_unsubscribing_keeps_the_trie_consistent(
    pairs: list[tuple[str, str]], drop: list[int], probe: str
) -> None:
    trie = SubscriptionTrie()
    for client_id, topic_filter in pairs:
        trie.subscribe(entry(client_id, topic_filter))
    remaining = set(pairs)
    for index in drop:
        if index < len(pairs):
            client_id, topic_filter = pairs[index]
            removed = trie.unsubscribe(client_id, topic_filter)
            assert (removed is not None) == ((client_id, topic_filter) in remaining)
            remaining.discard((client_id, topic_filter))
    assert len(trie) == len(remaining)
    assert {(e.client_id, e.topic_filter) for e in trie} == remaining
    assert trie_result(trie, probe) == naive(remaining, probe)
    for client_id in ("c1", "c2", "c3"):
        trie.remove_client(client_id)
    assert len(trie) == 0
    assert trie.node_count() == 0


# --- the micro-benchmark measures what it claims --------------------------------------------


def test_benchmark_bystanders_do_not_match_the_probe() -> None:
    from hookmq.bench.micro_trie import MATCHING_FILTERS, PROBE_TOPIC, build_trie, unrelated_filters

    assert not any(topic_matches(f, PROBE_TOPIC) for f in unrelated_filters(1_000))
    trie = build_trie(1_000)
    matches = trie.match(PROBE_TOPIC)
    found = {e.topic_filter for e in matches.direct} | {
        e.topic_filter for members in matches.shared.values() for e in members
    }
    assert found == set(MATCHING_FILTERS)
    assert len(trie) == 1_000 + len(MATCHING_FILTERS)
