"""Expiry arithmetic of the store records."""

from __future__ import annotations

from hookmq.mqtt.packets import Publish, Will
from hookmq.store.records import NEVER_EXPIRES, SessionRecord, StoredMessage


def test_connected_session_never_expires() -> None:
    record = SessionRecord("c", expiry_interval=10)
    assert record.connected and record.expires_at() is None and not record.is_expired(1e12)


def test_disconnected_session_expires_after_its_interval() -> None:
    record = SessionRecord("c", expiry_interval=10, disconnected_at=100.0)
    assert record.expires_at() == 110.0
    assert not record.is_expired(109.999) and record.is_expired(110.0)


def test_never_expiring_session() -> None:
    record = SessionRecord("c", expiry_interval=NEVER_EXPIRES, disconnected_at=100.0)
    assert record.expires_at() is None and not record.is_expired(1e15)


def test_will_is_due_after_its_delay_or_at_session_end() -> None:
    will = Will("w")
    assert SessionRecord("c", will=will, will_delay=5, expiry_interval=60, disconnected_at=10.0).will_due_at() == 15.0
    assert SessionRecord("c", will=will, will_delay=500, expiry_interval=60, disconnected_at=10.0).will_due_at() == 70.0
    assert SessionRecord("c", will=will, will_delay=5, disconnected_at=None).will_due_at() is None
    assert SessionRecord("c", will=None, disconnected_at=10.0).will_due_at() is None


def test_message_expiry() -> None:
    message = StoredMessage(Publish("t"), received_at=100.0, expiry_at=130.0)
    assert not message.is_expired(129.9) and message.is_expired(130.0)
    assert message.remaining_expiry(100.0) == 30
    assert message.remaining_expiry(129.2) == 1  # rounded up: never announce 0 for a live message
    assert message.remaining_expiry(200.0) == 0
    forever = StoredMessage(Publish("t"), received_at=100.0)
    assert forever.remaining_expiry(1e12) is None and not forever.is_expired(1e12)
