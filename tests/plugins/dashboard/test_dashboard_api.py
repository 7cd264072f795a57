"""The JSON API against a real broker with real paho clients."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
import pytest

from hookmq.engine.message import Message
from hookmq.plugins.dashboard.server import Dashboard


async def get_json(http: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with http.get(path) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def test_info_is_the_brokers_figures(http: aiohttp.ClientSession, broker: Any) -> None:
    info = await get_json(http, "/info")
    assert info["version"] == broker.info()["version"]
    assert info["clients_connected"] == 0
    assert "messages_received" in info


async def test_probes(http: aiohttp.ClientSession, anonymous: aiohttp.ClientSession, broker: Any) -> None:
    assert (await get_json(anonymous, "/healthz")) == {"status": "ok"}
    ready = await get_json(anonymous, "/readyz")
    assert ready["status"] == "ready"
    assert ready["listeners"][0]["address"][1] == broker.listeners[0].address[1]


async def test_readyz_is_503_until_the_broker_serves(dashboard: Dashboard, anonymous: aiohttp.ClientSession) -> None:
    dashboard.ready = False
    async with anonymous.get("/readyz") as response:
        assert response.status == 503
    dashboard.ready = True
    async with anonymous.get("/readyz") as response:
        assert response.status == 200


async def test_clients_listing_search_and_protocol_filter(http: aiohttp.ClientSession, mqtt_client: Any) -> None:
    await mqtt_client(client_id="kitchen-sensor", protocol=5, username="alice")
    await mqtt_client(client_id="garage-door", protocol=4)
    await mqtt_client(client_id="old-thing", protocol=3)

    page = await get_json(http, "/api/clients")
    assert page["total"] == 3
    assert [c["client_id"] for c in page["items"]] == ["garage-door", "kitchen-sensor", "old-thing"]
    kitchen = next(c for c in page["items"] if c["client_id"] == "kitchen-sensor")
    assert kitchen["connected"] is True and kitchen["protocol"] == "5.0" and kitchen["username"] == "alice"
    assert kitchen["remote_address"].startswith("127.0.0.1")

    assert [c["client_id"] for c in (await get_json(http, "/api/clients?q=ALICE"))["items"]] == ["kitchen-sensor"]
    assert [c["client_id"] for c in (await get_json(http, "/api/clients?protocol=3.1.1"))["items"]] == ["garage-door"]
    assert [c["client_id"] for c in (await get_json(http, "/api/clients?protocol=3"))["items"]] == ["old-thing"]
    assert (await get_json(http, "/api/clients?q=127.0.0.1"))["total"] == 3

    second = await get_json(http, "/api/clients?offset=1&limit=1")
    assert second["total"] == 3 and second["offset"] == 1 and second["limit"] == 1
    assert [c["client_id"] for c in second["items"]] == ["kitchen-sensor"]


async def test_bad_queries_are_400(http: aiohttp.ClientSession) -> None:
    for path in ("/api/clients?limit=0", "/api/clients?offset=x", "/api/clients?protocol=6",
                 "/api/subscriptions?offset=-1", "/api/retained?limit=z"):
        body = await get_json(http, path, status=400)
        assert body["error"] == "bad_query"


async def test_client_detail_and_subscriptions(http: aiohttp.ClientSession, mqtt_client: Any,
                                               eventually: Any) -> None:
    client = await mqtt_client(client_id="sub/with/slashes", protocol=5)
    client.subscribe([("home/+/temp", 1), ("$share/g1/jobs/#", 0)])
    await eventually(lambda: get_json(http, "/api/subscriptions"), timeout=5)

    async def two_subscriptions() -> Any:
        page = await get_json(http, "/api/subscriptions")
        return page if page["total"] == 2 else None

    page = await eventually(two_subscriptions)
    filters = {item["topic_filter"]: item for item in page["items"]}
    assert filters["home/+/temp"]["qos"] == 1
    assert filters["home/+/temp"]["client_id"] == "sub/with/slashes"
    assert filters["$share/g1/jobs/#"]["share_group"] == "g1"
    assert (await get_json(http, "/api/subscriptions?q=home"))["total"] == 1

    detail = await get_json(http, "/api/clients/sub%2Fwith%2Fslashes")
    assert detail["client_id"] == "sub/with/slashes"
    assert {s["topic_filter"] for s in detail["subscriptions"]} == {"home/+/temp", "$share/g1/jobs/#"}
    missing = await get_json(http, "/api/clients/nobody", status=404)
    assert missing["error"] == "not_found"


async def test_delete_client_disconnects_it(http: aiohttp.ClientSession, mqtt_client: Any) -> None:
    client = await mqtt_client(client_id="to-kick", protocol=5)
    gone = threading.Event()
    reasons: list[Any] = []

    def on_disconnect(client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        reasons.append(reason_code)
        gone.set()

    client.on_disconnect = on_disconnect
    async with http.delete("/api/clients/to-kick") as response:
        assert response.status == 200
        assert (await response.json()) == {"client_id": "to-kick", "disconnected": True}
    assert await asyncio.to_thread(gone.wait, 5)
    assert reasons[0].value == 0x98  # administrative action
    async with http.delete("/api/clients/to-kick") as response:
        assert response.status == 404


async def test_publish_reaches_a_subscriber(http: aiohttp.ClientSession, mqtt_client: Any, eventually: Any) -> None:
    subscriber = await mqtt_client(client_id="listener", protocol=5)
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    subscriber.on_message = lambda c, u, message: received.append((message.topic, message.payload))
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.subscribe("lab/#", qos=1)
    assert await asyncio.to_thread(subscribed.wait, 5)

    async with http.post("/api/publish", json={"topic": "lab/one", "payload": "hello", "qos": 1}) as response:
        assert response.status == 200, await response.text()
        assert (await response.json()) == {"topic": "lab/one", "delivered": 1}
    async with http.post("/api/publish", json={"topic": "lab/bin", "payload": "AAH/", "payload_encoding": "base64"}) as r:
        assert r.status == 200
    await eventually(lambda: len(received) == 2)
    assert received == [("lab/one", b"hello"), ("lab/bin", b"\x00\x01\xff")]


async def test_publish_validation(http: aiohttp.ClientSession) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"topic": "a/+/b"}, 400, "bad_topic"),
        ({"topic": "$SYS/x"}, 400, "bad_topic"),
        ({"topic": "a", "qos": 3}, 400, "bad_body"),
        ({"topic": "a", "extra": 1}, 400, "bad_body"),
        ({"topic": "a", "payload": "!!", "payload_encoding": "base64"}, 400, "bad_body"),
        ({"payload": "no topic"}, 400, "bad_body"),
    ]
    for body, status, code in cases:
        async with http.post("/api/publish", json=body) as response:
            assert response.status == status, body
            assert (await response.json())["error"] == code, body
    async with http.post("/api/publish", data="topic=a", headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415


async def test_retained_listing_and_delete_with_slashes(http: aiohttp.ClientSession, broker: Any) -> None:
    await broker.publish("plant/a/level", b"42", retain=True)
    await broker.publish("/leading/slash", b"\xff\xfe", retain=True)
    await broker.publish("odd topic %1?", b"x", retain=True)

    page = await get_json(http, "/api/retained")
    by_topic = {item["topic"]: item for item in page["items"]}
    assert set(by_topic) == {"plant/a/level", "/leading/slash", "odd topic %1?"}
    assert by_topic["plant/a/level"]["payload"] == "42"
    assert by_topic["/leading/slash"]["payload_encoding"] == "base64"
    assert by_topic["/leading/slash"]["size"] == 2
    assert (await get_json(http, "/api/retained?q=PLANT"))["total"] == 1

    async with http.delete("/api/retained/plant/a/level") as response:
        assert response.status == 200
        assert (await response.json()) == {"topic": "plant/a/level", "deleted": True}
    async with http.delete("/api/retained//leading/slash") as response:
        assert response.status == 200, await response.text()
    async with http.delete("/api/retained/odd%20topic%20%251%3F") as response:
        assert response.status == 200, await response.text()
    assert [m.topic for m in broker.retained_messages() if not m.topic.startswith("$")] == []
    async with http.delete("/api/retained/plant/a/level") as response:
        assert response.status == 404
    async with http.delete("/api/retained", params={"topic": "nothing"}) as response:
        assert response.status == 404


async def test_system_topics_hidden_unless_asked(http: aiohttp.ClientSession, broker: Any) -> None:
    broker.retained.store(Message("$internal/x", b"1", 0, True))  # as $SYS is: broker.publish refuses '$'
    await broker.publish("visible", b"1", retain=True)
    listed = await get_json(http, "/api/retained")
    with_system = await get_json(http, "/api/retained?system=true")
    assert all(not item["topic"].startswith("$") for item in listed["items"])
    assert listed["total"] == 1
    assert {item["topic"] for item in with_system["items"]} >= {"$internal/x", "visible"}


async def test_openapi_describes_every_documented_route(http: aiohttp.ClientSession) -> None:
    document = await get_json(http, "/api/openapi.json")
    assert document["openapi"].startswith("3.")
    for path in ("/info", "/api/clients", "/api/clients/{client_id}", "/api/subscriptions", "/api/retained",
                 "/api/retained/{topic}", "/api/publish", "/healthz", "/readyz", "/metrics"):
        assert path in document["paths"], path
    assert set(document["paths"]["/api/clients/{client_id}"]) >= {"get", "delete"}


async def test_cluster_placeholder(http: aiohttp.ClientSession) -> None:
    assert (await get_json(http, "/api/cluster"))["enabled"] is False


@pytest.mark.parametrize("path", ["/api/history", "/api/history?since=0"])
async def test_history_has_samples_with_rates(http: aiohttp.ClientSession, broker: Any, path: str,
                                              eventually: Any) -> None:
    async def three_samples() -> Any:
        body = await get_json(http, path)
        return body if len(body["samples"]) >= 3 else None

    body = await eventually(three_samples)
    assert body["interval"] == pytest.approx(0.1)
    latest = body["samples"][-1]
    assert "clients_connected" in latest["figures"]
    assert "messages_received_per_second" in latest["rates"]
