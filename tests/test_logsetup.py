"""The JSON log format: one object per line, with the structured fields of connection events."""

from __future__ import annotations

import json
import logging

from hookmq.logsetup import JsonFormatter


def record(message: str, *, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    item = logging.LogRecord("hookmq.connection", logging.INFO, __file__, 1, message, (), exc_info)
    for key, value in extra.items():
        setattr(item, key, value)
    return item


def test_a_record_is_one_json_object_on_one_line() -> None:
    text = JsonFormatter().format(record("multi\nline message", exc=True))
    assert "\n" not in text
    document = json.loads(text)
    assert document["level"] == "INFO"
    assert document["logger"] == "hookmq.connection"
    assert document["message"] == "multi\nline message"
    assert document["time"].endswith("+00:00")
    assert "ValueError: boom" in document["exception"]


def test_event_fields_become_keys_without_overwriting_the_standard_ones() -> None:
    text = JsonFormatter().format(record(
        "connected: client_id=c", event="connected",
        fields={"client_id": "c", "keep_alive": 60, "message": "spoofed", "level": "spoofed"},
    ))
    document = json.loads(text)
    assert document["event"] == "connected"
    assert document["client_id"] == "c"
    assert document["keep_alive"] == 60
    assert document["message"] == "connected: client_id=c"
    assert document["level"] == "INFO"
