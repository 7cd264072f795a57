"""One log line per connection event, readable by people and by log shippers.

A line is the event's name and ``key=value`` fields, e.g.::

    connected: client_id=sensor-1 username=alice remote=10.0.0.7:53422 listener=tcp protocol=5.0 ...

Values a peer chooses (client ids, user names, what was wrong with a packet) are quoted with
JSON escapes whenever they hold anything but plain characters, and cut at `MAX_VALUE_LENGTH`,
so a client cannot forge log lines or make them huge. The same fields travel on the log
record (``record.event``, ``record.fields``), which is what the JSON log format writes
(`hookmq.logsetup`). Every line goes through a `LogLimiter`, one bucket per kind of event.
"""

from __future__ import annotations

import json
import logging
import re

from .ratelimit import LogLimiter

__all__ = ["LOGGER_NAME", "MAX_VALUE_LENGTH", "log_event", "new_limiter", "render"]

LOGGER_NAME = "hookmq.connection"
"""The logger of every per-connection line (the engine's and the listeners')."""

MAX_VALUE_LENGTH = 200
"""Longest value written; longer ones end in "…"."""

_PLAIN = re.compile(r"[A-Za-z0-9_.:/@\[\]+-]+")

Field = str | int | float | bool | None


def new_limiter(per_second: float = 10.0, burst: int = 100) -> LogLimiter:
    """A limiter over the connection logger: `burst` lines per kind of event, refilled at `per_second`."""
    return LogLimiter(logging.getLogger(LOGGER_NAME), burst=burst, per_second=per_second)


def render(event: str, fields: dict[str, Field]) -> str:
    """``event words: key=value ...`` (``tls_handshake_failed`` reads "tls handshake failed"); None fields left out."""
    parts = [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
    label = event.replace("_", " ")
    return f"{label}: {' '.join(parts)}" if parts else label


def _value(value: Field) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int):
        return str(value)
    text = _cut(str(value))
    return text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def log_event(limiter: LogLimiter, level: int, event: str, fields: dict[str, Field], key: str | None = None) -> bool:
    """Write one event line through `limiter` (bucket `key`, default the event); True when written."""
    if not limiter.logger.isEnabledFor(level):
        return False
    safe = {name: _cut(value) if isinstance(value, str) else value for name, value in fields.items() if value is not None}
    return limiter.log(key or event, level, "%s", render(event, fields), extra={"event": event, "fields": safe})
