"""Filtering, paging and JSON shapes of the listings (objects or dictionaries from the engine)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hookmq.mqtt.packets import Publish, SubscriptionOptions
from hookmq.plugins.dashboard import views


@dataclass
class Entry:
    client_id: str
    topic_filter: str
    options: SubscriptionOptions = field(default_factory=SubscriptionOptions)
    identifier: int | None = None
    share_group: str | None = None


def test_subscription_view_reads_entries_and_summaries() -> None:
    entry = Entry("c1", "a/#", SubscriptionOptions(qos=2, no_local=True), identifier=7)
    assert views.subscription_view(entry) == {
        "client_id": "c1", "topic_filter": "a/#", "share_group": None, "identifier": 7, "qos": 2,
        "no_local": True, "retain_as_published": False, "retain_handling": 0,
    }
    summary = views.subscription_view({"topic_filter": "b", "qos": 1, "identifier": None}, client_id="c2")
    assert summary["client_id"] == "c2" and summary["qos"] == 1


def test_client_views_from_dicts_and_objects() -> None:
    as_dict = {"client_id": "d", "protocol_level": 4, "connected": True, "subscriptions": 2, "inflight": [1, 2]}
    view = views.client_view(as_dict)
    assert view["protocol"] == "3.1.1" and view["subscriptions"] == 2 and view["inflight"] == 2

    @dataclass
    class ClientView:
        client_id: str = "o"
        protocol_level: int = 5
        subscriptions: list[Entry] = field(default_factory=lambda: [Entry("o", "x")])

    detail = views.client_detail(ClientView())
    assert detail["protocol"] == "5.0"
    assert [s["topic_filter"] for s in detail["subscriptions"]] == ["x"]


async def test_filters_and_paging() -> None:
    clients = {name: {"client_id": name, "username": user, "remote_address": "10.0.0.1:5", "protocol_level": level}
               for name, user, level in [("b", "bob", 5), ("a", None, 4), ("c", "carol", 5)]}
    ids = sorted(clients)
    assert views.client_filter(None, None, clients.get) is None
    keep = views.client_filter("CAROL", None, clients.get)
    assert await views.scan_page(ids, keep, 0, 10) == (1, ["c"])
    assert await views.scan_page(ids, views.client_filter(None, 5, clients.get), 1, 10) == (2, ["c"])
    numbers = list(range(5 * views.SCAN_SLICE))
    total, page = await views.scan_page(numbers, lambda n: n % 2 == 0, 3, 4)
    assert (total, page) == (len(numbers) // 2, [6, 8, 10, 12])
    page_view = views.paginate(list(range(5)), 3, 10, lambda n: {"n": n})
    assert page_view.as_json() == {"total": 5, "offset": 3, "limit": 10, "items": [{"n": 3}, {"n": 4}]}
    assert views.is_dot_segment_path("../clients/victim") and views.is_dot_segment_path("a/./b")
    assert not views.is_dot_segment_path("a/..b/c...")


def test_query_parsing() -> None:
    assert views.parse_paging(None, None) == (0, views.DEFAULT_LIMIT)
    assert views.parse_paging("5", "100000") == (5, views.MAX_LIMIT)
    assert views.parse_protocol("MQTTv5") == 5 and views.parse_protocol("") is None
    with pytest.raises(views.BadQuery):
        views.parse_paging("-1", "1")
    with pytest.raises(views.BadQuery):
        views.parse_protocol("2")


def test_payloads_round_trip() -> None:
    for payload in (b"text", b"\x00\xff", "ünï".encode()):
        text, encoding = views.decode_payload(payload)
        assert views.encode_payload(text, encoding) == payload
    retained = views.retained_view(Publish("t", b"\x80", 1, True))
    assert retained["payload_encoding"] == "base64" and retained["size"] == 1 and retained["qos"] == 1
