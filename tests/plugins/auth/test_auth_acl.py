"""ACL precedence, patterns, `$SYS` and subscription coverage."""

from __future__ import annotations

from typing import Any

import pytest

from hookmq.plugins.auth.acl import AclIndex
from hookmq.plugins.auth.settings import AclRule


def index(*rules: dict[str, Any], overlap: bool = False) -> AclIndex:
    return AclIndex([AclRule.model_validate(rule) for rule in rules], deny_overlapping_subscriptions=overlap)


def can_publish(acl: AclIndex, topic: str, user: str | None = "alice", client_id: str = "c1") -> bool | None:
    return acl.decide(user=user, client_id=client_id, topic=topic, write=True)


def can_subscribe(acl: AclIndex, topic: str, user: str | None = "alice", client_id: str = "c1") -> bool | None:
    return acl.decide(user=user, client_id=client_id, topic=topic, write=False)


def test_no_rule_abstains() -> None:
    acl = index()
    assert can_publish(acl, "a") is None
    assert can_subscribe(acl, "a") is None


def test_access_kinds() -> None:
    acl = index(
        {"topic": "r/#", "access": "read"},
        {"topic": "w/#", "access": "write"},
        {"topic": "rw/#", "access": "readwrite"},
    )
    assert can_subscribe(acl, "r/x") is True and can_publish(acl, "r/x") is None
    assert can_publish(acl, "w/x") is True and can_subscribe(acl, "w/x") is None
    assert can_publish(acl, "rw/x") is True and can_subscribe(acl, "rw/#") is True


def test_interop_nosubscribe_config() -> None:
    acl = index({"topic": "#"}, {"topic": "test/nosubscribe", "effect": "deny"})
    assert can_subscribe(acl, "test/nosubscribe") is False
    assert can_publish(acl, "test/nosubscribe") is False
    assert can_subscribe(acl, "TopicA/+") is True
    assert can_publish(acl, "TopicA/B") is True
    # Wider wildcard subscriptions stay possible by default (the interop suite subscribes to "#").
    assert can_subscribe(acl, "#") is True
    assert can_subscribe(acl, "+/+") is True


def test_overlap_mode_refuses_wildcards_reaching_a_denied_topic() -> None:
    acl = index({"topic": "#"}, {"topic": "test/nosubscribe", "effect": "deny"}, overlap=True)
    assert can_subscribe(acl, "#") is False
    assert can_subscribe(acl, "+/+") is False
    assert can_subscribe(acl, "TopicA/+") is True


def test_deny_beats_allow_in_the_same_tier() -> None:
    acl = index(
        {"topic": "secret/public", "user": "alice"},
        {"topic": "secret/#", "user": "alice", "effect": "deny"},
    )
    assert can_publish(acl, "secret/public") is False


def test_user_rules_come_before_general_rules() -> None:
    acl = index(
        {"topic": "plant/#", "effect": "deny"},
        {"topic": "plant/#", "user": "alice"},
    )
    assert can_publish(acl, "plant/1") is True
    assert can_publish(acl, "plant/1", user="bob") is False


def test_user_deny_beats_general_allow() -> None:
    acl = index({"topic": "#"}, {"topic": "admin/#", "user": "alice", "effect": "deny"})
    assert can_publish(acl, "admin/x") is False
    assert can_publish(acl, "admin/x", user="bob") is True


def test_client_rules_come_before_user_rules() -> None:
    acl = index(
        {"topic": "cmd/#", "user": "alice", "effect": "deny"},
        {"topic": "cmd/#", "client_id": "console"},
    )
    assert can_publish(acl, "cmd/reboot", client_id="console") is True
    assert can_publish(acl, "cmd/reboot", client_id="phone") is False


def test_client_rule_with_user_needs_both() -> None:
    acl = index({"topic": "x", "client_id": "c1", "user": "alice"})
    assert can_publish(acl, "x") is True
    assert can_publish(acl, "x", user="mallory") is None


def test_a_tier_without_an_applying_rule_passes_to_the_next() -> None:
    acl = index({"topic": "mine/#", "user": "alice"}, {"topic": "public/#"})
    assert can_publish(acl, "public/x") is True


def test_user_pattern() -> None:
    acl = index({"topic": "users/%u/#"})
    assert can_publish(acl, "users/alice/temp") is True
    assert can_publish(acl, "users/bob/temp") is None
    assert can_subscribe(acl, "users/alice/#") is True
    assert can_subscribe(acl, "users/+/#") is None


def test_client_pattern() -> None:
    acl = index({"topic": "devices/%c/+", "access": "write"}, {"topic": "dev-%c/in", "access": "read"})
    assert can_publish(acl, "devices/c1/state") is True
    assert can_publish(acl, "devices/c2/state") is None
    assert can_subscribe(acl, "dev-c1/in") is True


def test_anonymous_clients_get_no_user_pattern() -> None:
    acl = index({"topic": "users/%u/#"})
    assert can_publish(acl, "users//x", user=None) is None
    assert can_publish(acl, "users/None/x", user=None) is None


@pytest.mark.parametrize("user", ["+", "#", "a/b"])
def test_names_with_wildcards_or_slashes_do_not_widen_patterns(user: str) -> None:
    acl = index({"topic": "users/%u/#"})
    assert can_subscribe(acl, "users/+/#", user=user) is None
    assert can_publish(acl, "users/a/b/x", user=user) is None


def test_sys_needs_an_explicit_rule() -> None:
    acl = index({"topic": "#"}, {"topic": "$SYS/#", "access": "read", "user": "ops"})
    assert can_subscribe(acl, "$SYS/#") is None
    assert can_subscribe(acl, "$SYS/broker/uptime") is None
    assert can_publish(acl, "$SYS/broker/uptime") is None
    assert can_subscribe(acl, "$SYS/#", user="ops") is True
    assert can_subscribe(acl, "#", user="ops") is True


def test_subscription_must_be_covered_by_an_allow() -> None:
    acl = index({"topic": "a/+", "access": "read"})
    assert can_subscribe(acl, "a/b") is True
    assert can_subscribe(acl, "a/+") is True
    assert can_subscribe(acl, "a/#") is None
    assert can_subscribe(acl, "#") is None


def test_shared_subscription_is_checked_on_its_filter() -> None:
    acl = index({"topic": "jobs/#", "access": "read"})
    assert can_subscribe(acl, "$share/workers/jobs/+") is True
    assert can_subscribe(acl, "$share/workers/other/+") is None


def test_delivery_check_with_a_topic_name_uses_the_same_rules() -> None:
    acl = index({"topic": "#"}, {"topic": "test/nosubscribe", "effect": "deny"})
    assert can_subscribe(acl, "test/nosubscribe") is False
    assert can_subscribe(acl, "test/other") is True


def test_repeated_decisions_are_stable() -> None:
    acl = index({"topic": "a/#"}, {"topic": "a/x", "effect": "deny"})
    answers = [can_publish(acl, topic) for topic in ("a/x", "a/y", "a/x", "a/y")]
    assert answers == [False, True, False, True]
