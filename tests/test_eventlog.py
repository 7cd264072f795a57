"""Connection event lines: readable, unforgeable by a peer, bounded, rate-limited, structured."""

from __future__ import annotations

import json
import logging

import pytest

from hookmq.eventlog import LOGGER_NAME, MAX_VALUE_LENGTH, log_event, new_limiter, render
from hookmq.ratelimit import LogLimiter


def test_plain_values_stay_bare_and_others_are_quoted() -> None:
    line = render("connected", {"client_id": "sensor-1", "remote": "[::1]:5555", "username": None,
                                "keep_alive": 60, "duration": 1.25, "retained": True})
    assert line == "connected: client_id=sensor-1 remote=[::1]:5555 keep_alive=60 duration=1.2 retained=true"


def test_a_peer_cannot_forge_a_line_or_a_field() -> None:
    line = render("connected", {"client_id": "evil\ncause=server-shutdown", "username": 'a "b"'})
    assert "\n" not in line
    assert line == 'connected: client_id="evil\\ncause=server-shutdown" username="a \\"b\\""'


def test_long_values_are_cut() -> None:
    line = render("connected", {"client_id": "x" * 10_000})
    value = json.loads(line.removeprefix("connected: client_id="))
    assert len(value) == MAX_VALUE_LENGTH
    assert value.endswith("…")


def test_event_names_read_as_words() -> None:
    assert render("tls_handshake_failed", {"remote": "1.2.3.4:5"}) == "tls handshake failed: remote=1.2.3.4:5"


def test_log_event_carries_the_fields_on_the_record(caplog: pytest.LogCaptureFixture) -> None:
    limiter = new_limiter()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert log_event(limiter, logging.INFO, "refused", {"client_id": "c", "reason": "0x86 bad", "detail": None})
    (record,) = caplog.records
    assert record.name == LOGGER_NAME
    assert record.event == "refused"  # type: ignore[attr-defined]
    assert record.fields == {"client_id": "c", "reason": "0x86 bad"}  # type: ignore[attr-defined]
    json.dumps(record.fields)  # type: ignore[attr-defined]


def test_a_flood_writes_the_burst_then_counts(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limiter = LogLimiter(logging.getLogger(LOGGER_NAME), burst=5, per_second=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        for index in range(50):
            log_event(limiter, logging.INFO, "closed", {"remote": f"10.0.0.{index}:1"}, key="closed:protocol-error")
        log_event(limiter, logging.INFO, "connected", {"client_id": "other kind"})
        now[0] = 1.0
        log_event(limiter, logging.INFO, "closed", {"remote": "10.0.0.99:1"}, key="closed:protocol-error")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 5 + 1 + 1
    assert limiter.suppressed_total == 45
    assert lines[-1].endswith("(45 similar messages suppressed)")
    assert any("other kind" in line for line in lines)  # one kind's flood does not silence another


def test_nothing_is_formatted_below_the_level(caplog: pytest.LogCaptureFixture) -> None:
    limiter = new_limiter()
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert not log_event(limiter, logging.INFO, "connected", {"client_id": "c"})
    assert not caplog.records
    assert limiter.suppressed_total == 0
