"""The auth service: logins (passwords, anonymous, certificates, throttling) and ACL checks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from auth_helpers import ClientRecord

from hookmq.mqtt.packets import Connect
from hookmq.plugins.auth.service import AuthService
from hookmq.plugins.auth.settings import AuthSettings

CERT = {"subject": ((("commonName", "sensor-7"),),), "subjectAltName": (("DNS", "sensor-7.example"),)}


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(alice_hash: str, clock: ManualClock | None = None, **overrides: Any) -> AuthService:
    table: dict[str, Any] = {
        "users": {"alice": alice_hash, "sensor-7": {}},
        "acl": [
            {"topic": "users/%u/#"},
            {"topic": "public/#", "access": "read"},
            {"topic": "test/nosubscribe", "effect": "deny"},
        ],
        **overrides,
    }
    return AuthService(AuthSettings.model_validate(table), clock=clock or ManualClock())


def login(username: str | None, password: bytes | None, client_id: str = "c1") -> tuple[ClientRecord, Connect]:
    connect = Connect(client_id=client_id, username=username, password=password)
    return ClientRecord(client_id=client_id, username=username, connect=connect), connect


async def test_good_password(alice_hash: str) -> None:
    assert await service(alice_hash).authenticate(*login("alice", b"wonderland")) is True


async def test_bad_password_unknown_user_and_missing_password(alice_hash: str) -> None:
    auth = service(alice_hash)
    assert await auth.authenticate(*login("alice", b"looking-glass")) is False
    assert await auth.authenticate(*login("mallory", b"wonderland")) is False
    assert await auth.authenticate(*login("alice", None)) is False
    # A certificate-only user cannot log in with a password.
    assert await auth.authenticate(*login("sensor-7", b"anything")) is False


async def test_anonymous_follows_the_setting(alice_hash: str) -> None:
    assert await service(alice_hash).authenticate(*login(None, None)) is False
    assert await service(alice_hash, allow_anonymous=True).authenticate(*login(None, None)) is True


async def test_password_without_user_name_is_refused(alice_hash: str) -> None:
    assert await service(alice_hash, allow_anonymous=True).authenticate(*login(None, b"wonderland")) is False


async def test_failed_logins_lock_the_host_and_are_logged_without_the_password(
    alice_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    auth = service(alice_hash, clock, max_failed_logins=2, lockout_base=10.0)
    caplog.set_level(logging.INFO, logger="hookmq.plugins.auth")
    for _ in range(3):
        assert await auth.authenticate(*login("alice", b"guess-123")) is False
    # Locked out: even the right password is refused until the lockout ends.
    assert await auth.authenticate(*login("alice", b"wonderland")) is False
    clock.now += 11
    assert await auth.authenticate(*login("alice", b"wonderland")) is True
    assert "locked out" in caplog.text
    assert "'alice'" in caplog.text
    assert "guess-123" not in caplog.text and "wonderland" not in caplog.text


async def test_certificate_identity_without_password(alice_hash: str) -> None:
    auth = service(alice_hash, tls_identity="cn")
    client, connect = login(None, None)
    client.tls_peer_certificate = CERT
    assert await auth.authenticate(client, connect) is True
    assert auth.identity(client) == "sensor-7"
    assert await auth.authorise(client, "users/sensor-7/temp", True) is True


async def test_certificate_identity_must_agree_with_a_given_user_name(alice_hash: str) -> None:
    auth = service(alice_hash, tls_identity="cn")
    client, connect = login("alice", b"wonderland")
    client.tls_peer_certificate = CERT
    assert await auth.authenticate(client, connect) is False


async def test_certificate_identity_with_required_password(alice_hash: str) -> None:
    auth = service(alice_hash, tls_identity="san_dns", tls_identity_requires_password=True,
                   users={"sensor-7.example": alice_hash})
    client, connect = login(None, b"wonderland")
    client.tls_peer_certificate = CERT
    assert await auth.authenticate(client, connect) is True
    client, connect = login(None, b"wrong")
    client.tls_peer_certificate = CERT
    assert await auth.authenticate(client, connect) is False


async def test_identity_is_the_user_name_without_a_certificate_setting(alice_hash: str) -> None:
    auth = service(alice_hash)
    client, _ = login("alice", b"wonderland")
    client.tls_peer_certificate = CERT
    assert auth.identity(client) == "alice"


async def test_acl_decisions(alice_hash: str) -> None:
    auth = service(alice_hash)
    alice, _ = login("alice", b"")
    assert await auth.authorise(alice, "users/alice/x", True) is True
    assert await auth.authorise(alice, "users/bob/x", True) is None
    assert await auth.authorise(alice, "public/news", False) is True
    assert await auth.authorise(alice, "public/news", True) is None
    assert await auth.authorise(alice, "test/nosubscribe", False) is False
