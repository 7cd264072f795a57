"""Where the ``hookmq`` command's log goes and how it looks: text lines, or one JSON object per line.

``[log] format = "json"`` is for log shippers: each record becomes one JSON object with
``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus the structured fields
of connection events (``event``, ``client_id``, ``remote``, ``cause``, ...) and ``exception``
(the traceback as text) when there is one. Embedders that configure `logging` themselves
get the same records; this module is only used by the command line.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from typing import IO, Any, Literal

__all__ = ["TEXT_FORMAT", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The text format: time, level, logger, message."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (with ``worker``: its index, under ``hookmq --workers``)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object (newlines inside values are escaped, so one line)."""
        document: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if isinstance(event, str):
            document["event"] = event
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                document.setdefault(str(key), value)
        if self.worker is not None:
            document["worker"] = self.worker
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(level: str, format: Literal["text", "json"] = "text", stream: IO[str] | None = None) -> None:
    """Send records at `level` and above to `stream` (standard error) in the chosen format.

    Like `logging.basicConfig` (which it calls), it does nothing when the root logger
    already has handlers: an embedding application, or pytest, keeps its own set-up.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    worker = _worker_index()
    text = TEXT_FORMAT if worker is None else TEXT_FORMAT.replace("%(levelname)s", f"w{worker} %(levelname)s")
    handler.setFormatter(JsonFormatter(worker) if format == "json" else logging.Formatter(text))
    logging.basicConfig(level=level, handlers=[handler])


def _worker_index() -> int | None:
    """The worker's index under ``hookmq --workers`` (``HOOKMQ_WORKER_INDEX``, set by the supervisor), else None."""
    text = os.environ.get("HOOKMQ_WORKER_INDEX", "")
    return int(text) if text.isdigit() else None
