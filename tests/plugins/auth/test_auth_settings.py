"""Validation of the [plugins.auth] table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hookmq.plugins.auth.passwords import hash_password
from hookmq.plugins.auth.settings import AclRule, AuthSettings

HASH = hash_password("pw", n=2**10)


def test_defaults_are_closed() -> None:
    settings = AuthSettings()
    assert settings.allow_anonymous is False
    assert settings.source == "file"
    assert settings.tls_identity == "none"


def test_plain_text_password_is_refused_naming_the_user() -> None:
    with pytest.raises(ValidationError) as info:
        AuthSettings.model_validate({"users": {"alice": {"password": HASH}, "bob": {"password": "hunter2"}}})
    message = str(info.value)
    assert "'bob'" in message and "plain-text" in message and "hookmq passwd" in message
    assert [error["loc"] for error in info.value.errors()] == [("users", "bob", "password")]


def test_refused_password_is_never_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        AuthSettings.model_validate({"users": {"bob": {"password": "hunter2"}}})
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.errors())


def test_bare_string_is_the_password_hash() -> None:
    settings = AuthSettings.model_validate({"users": {"alice": HASH}})
    assert settings.users["alice"].password == HASH


def test_bare_plain_string_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="'carol'"):
        AuthSettings.model_validate({"users": {"carol": "secret"}})


def test_certificate_only_user_has_no_password() -> None:
    assert AuthSettings.model_validate({"users": {"device-1": {}}}).users["device-1"].password is None


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValidationError, match="allow_anonymus"):
        AuthSettings.model_validate({"allow_anonymus": True})


def test_redis_source_refuses_file_users() -> None:
    with pytest.raises(ValidationError, match="live in Redis"):
        AuthSettings.model_validate({"source": "redis", "users": {"alice": HASH}})


@pytest.mark.parametrize("topic", ["a/#/b", "a/b+", "a#"])
def test_acl_topic_wildcards_must_fill_levels(topic: str) -> None:
    with pytest.raises(ValidationError, match="ACL topic"):
        AclRule(topic=topic)


def test_acl_rule_defaults() -> None:
    rule = AclRule(topic="x/#")
    assert (rule.access, rule.effect, rule.user, rule.client_id) == ("readwrite", "allow", None, None)
