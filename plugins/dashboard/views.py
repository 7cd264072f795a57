"""JSON views of the broker's objects (clients, subscriptions, retained messages) and the
filtering and paging the API applies to them.

Kept apart from the HTTP handlers so the shapes are testable without a server. The views
read attributes named in the Broker API contract (docs/architecture.md); a missing optional
attribute reads as null rather than failing the whole listing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hookmq.mqtt.packets import Publish

T = TypeVar("T")

PROTOCOL_NAMES: dict[int, str] = {3: "3.1", 4: "3.1.1", 5: "5.0"}
"""MQTT protocol level (CONNECT byte) to the version name people use."""

PROTOCOL_ALIASES: dict[str, int] = {
    "3": 3, "3.1": 3, "mqttv3.1": 3, "4": 4, "3.1.1": 4, "mqttv3.1.1": 4, "5": 5, "5.0": 5, "mqttv5": 5,
}
"""Spellings accepted by `?protocol=`."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class SubscriberEntryLike(Protocol):
    """The subscription-trie entry the broker hands out (hookmq.mqtt.trie.SubscriberEntry)."""

    client_id: str
    topic_filter: str
    share_group: str | None


class BadQuery(ValueError):
    """A query parameter the API cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a filtered listing."""

    total: int
    offset: int
    limit: int
    items: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        """The page as the API sends it."""
        return {"total": self.total, "offset": self.offset, "limit": self.limit, "items": self.items}


def paginate(items: Sequence[T], offset: int, limit: int, render: Callable[[T], dict[str, Any]]) -> Page:
    """Render only the requested slice (rendering every client to show 50 would be wasted work)."""
    return Page(len(items), offset, limit, [render(item) for item in items[offset:offset + limit]])


def parse_paging(offset: str | None, limit: str | None) -> tuple[int, int]:
    """Validate `?offset=&limit=`; the limit is capped so one request cannot ask for everything."""
    try:
        start = int(offset) if offset else 0
        size = int(limit) if limit else DEFAULT_LIMIT
    except ValueError:
        raise BadQuery("offset and limit must be whole numbers") from None
    if start < 0 or size < 1:
        raise BadQuery("offset must be >= 0 and limit >= 1")
    return start, min(size, MAX_LIMIT)


def parse_protocol(value: str | None) -> int | None:
    """Turn `?protocol=` (3, 4, 5, 3.1, 3.1.1, 5.0) into a protocol level."""
    if not value:
        return None
    level = PROTOCOL_ALIASES.get(value.strip().lower())
    if level is None:
        raise BadQuery(f"protocol {value!r} is not one of 3.1, 3.1.1, 5.0 (or levels 3, 4, 5)")
    return level


def _attr(obj: object, name: str, default: Any = None) -> Any:
    """Read a field of a view object or of a plain dictionary (the engine may hand out either)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _subscription_list(client: object) -> Sequence[object]:
    """A client's subscriptions, whether given as entries or as a separate list of summaries."""
    entries = _attr(client, "subscriptions")
    if isinstance(entries, Sequence) and not isinstance(entries, str):
        return entries
    listed = _attr(client, "subscription_list")
    return listed if isinstance(listed, Sequence) else ()


def _count(value: Any) -> int:
    """Inflight and queued may be given as counts or as the collections themselves."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        return len(value)
    except TypeError:
        return 0


def subscription_view(entry: object, client_id: str | None = None) -> dict[str, Any]:
    """One subscription as JSON (options read from `entry.options`, or flat in a summary)."""
    options = _attr(entry, "options", entry)
    return {
        "client_id": _attr(entry, "client_id", client_id),
        "topic_filter": _attr(entry, "topic_filter"),
        "share_group": _attr(entry, "share_group"),
        "identifier": _attr(entry, "identifier"),
        "qos": _attr(options, "qos", 0),
        "no_local": bool(_attr(options, "no_local", False)),
        "retain_as_published": bool(_attr(options, "retain_as_published", False)),
        "retain_handling": _attr(options, "retain_handling", 0),
    }


def client_view(client: object) -> dict[str, Any]:
    """One client as the listing shows it."""
    level = _attr(client, "protocol_level")
    return {
        "client_id": _attr(client, "client_id"),
        "username": _attr(client, "username"),
        "remote_address": _attr(client, "remote_address"),
        "listener": _attr(client, "listener"),
        "protocol_level": level,
        "protocol": PROTOCOL_NAMES.get(level) if isinstance(level, int) else None,
        "connected": bool(_attr(client, "connected", False)),
        "connected_at": _attr(client, "connected_at"),
        "keep_alive": _attr(client, "keep_alive"),
        "clean_start": _attr(client, "clean_start"),
        "subscriptions": _count(_attr(client, "subscriptions")),
        "inflight": _count(_attr(client, "inflight")),
        "queued": _count(_attr(client, "queued")),
    }


def client_detail(client: object, offset: int = 0, limit: int = DEFAULT_LIMIT,
                  entries: Sequence[object] | None = None) -> dict[str, Any]:
    """One client with one page of its subscriptions spelt out (`subscriptions_total` says how many)."""
    detail = client_view(client)
    listed = _subscription_list(client) if entries is None else entries
    detail["subscriptions_total"] = len(listed)
    detail["subscriptions_offset"] = offset
    detail["subscriptions_limit"] = limit
    detail["subscriptions"] = [subscription_view(entry, detail["client_id"]) for entry in listed[offset:offset + limit]]
    return detail


def decode_payload(payload: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 text when the payload is text, base64 otherwise."""
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def encode_payload(text: str, encoding: str) -> bytes:
    """Inverse of decode_payload, for the publish form; raises BadQuery on bad base64."""
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BadQuery("payload is not valid base64") from None
    return text.encode("utf-8")


def retained_view(packet: Publish) -> dict[str, Any]:
    """One retained message as JSON (payload as text, or base64 when it is binary)."""
    payload, encoding = decode_payload(packet.payload)
    return {
        "topic": packet.topic,
        "qos": packet.qos,
        "payload": payload,
        "payload_encoding": encoding,
        "size": len(packet.payload),
    }


def _contains(needle: str, *fields: object) -> bool:
    return any(isinstance(value, str) and needle in value.lower() for value in fields)


SCAN_SLICE = 2048
"""Entries a listing examines between two yields to the event loop (a few milliseconds of work)."""


async def scan_page(items: Sequence[T], keep: Callable[[T], bool] | None, offset: int, limit: int,
                    ) -> tuple[int, list[T]]:
    """(how many items `keep` accepts, the page of them at offset/limit) from a snapshot.

    Without a filter this is a slice. With one, the snapshot is walked once, SCAN_SLICE items
    at a time with a yield to the event loop between, so a listing of 300 000 entries never
    holds the broker's loop for more than a few milliseconds at once.
    """
    if keep is None:
        return len(items), list(items[offset:offset + limit])
    total = 0
    page: list[T] = []
    end = offset + limit
    for start in range(0, len(items), SCAN_SLICE):
        for item in items[start:start + SCAN_SLICE]:
            if keep(item):
                if offset <= total < end:
                    page.append(item)
                total += 1
        await asyncio.sleep(0)
    return total, page


def client_filter(query: str | None, level: int | None, lookup: Callable[[str], object | None]
                  ) -> Callable[[str], bool] | None:
    """A test on client ids: id, username or remote address contains `query` (case-insensitive),
    and the client speaks protocol `level`; None when nothing is filtered."""
    needle = (query or "").strip().lower()
    if not needle and level is None:
        return None

    def keep(client_id: str) -> bool:
        client = lookup(client_id)
        if client is None or (level is not None and _attr(client, "protocol_level") != level):
            return False
        return not needle or _contains(needle, client_id, _attr(client, "username"), _attr(client, "remote_address"))

    return keep


def subscription_filter(query: str | None) -> Callable[[SubscriberEntryLike], bool] | None:
    """A test on subscriptions: filter or client id contains `query`; None when nothing is filtered."""
    needle = (query or "").strip().lower()
    if not needle:
        return None
    return lambda entry: _contains(needle, entry.topic_filter, entry.client_id)


def retained_filter(query: str | None, include_system: bool) -> Callable[[str], bool] | None:
    """A test on retained topics: contains `query`; `$`-topics ($SYS) only when asked for."""
    needle = (query or "").strip().lower()
    if not needle and include_system:
        return None
    return lambda topic: (include_system or not topic.startswith("$")) and (not needle or needle in topic.lower())


def is_dot_segment_path(value: str) -> bool:
    """Whether a value taken from a URL path has a `.` or `..` segment (a browser would have
    resolved it, so the request cannot mean what it says)."""
    return any(segment in (".", "..") for segment in value.split("/"))
