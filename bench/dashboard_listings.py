"""How long the dashboard's listings hold the broker's event loop (issue 19 §5).

Fills a broker with 300 000 subscriptions (three clients of 100 000 each, so one client's
detail page is the worst case) and 100 000 retained messages, then requests each listing and
reports the request's duration and the longest stretch the event loop was held meanwhile (a
1 ms ticker measures it). Run from a checkout: `python bench/dashboard_listings.py`.
"""

from __future__ import annotations

import asyncio
import gc
import time

import aiohttp

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import Subscribe, Subscription
from hookmq.plugins.dashboard import dashboard_of
from hookmq.testing.raw import RawClient

TOKEN = "listing-benchmark-token-0123456789"
SUBSCRIBERS = 3
FILTERS_EACH = 100_000
RETAINED = 100_000


async def longest_hold(stop: asyncio.Event) -> float:
    """The longest gap between two 1 ms ticks until `stop` is set."""
    worst = 0.0
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        worst = max(worst, now - last - 0.001)
        last = now
    return worst


async def fill(broker: Broker) -> list[RawClient]:
    port = int(broker.listeners[0].address[1])
    clients = []
    for number in range(SUBSCRIBERS):
        client, _ = await RawClient.connect("127.0.0.1", port, f"subscriber-{number}", level=5)
        for start in range(0, FILTERS_EACH, 500):
            filters = tuple(Subscription(f"s{number}/{i}/+") for i in range(start, start + 500))
            await client.send(Subscribe(client.packet_id(), filters))
            await client.recv(60)
        clients.append(client)
    for n in range(RETAINED):
        await broker.publish(f"r/{n}", b"value", retain=True)
    return clients


async def measure(http: aiohttp.ClientSession, path: str) -> tuple[float, float, int]:
    stop = asyncio.Event()
    ticker = asyncio.create_task(longest_hold(stop))
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    async with http.get(path) as response:
        body = await response.read()
        status = response.status
    elapsed = time.perf_counter() - started
    stop.set()
    held = await ticker
    assert status == 200, (path, status, body[:200])
    return elapsed, held, len(body)


async def main() -> None:
    config = Config.model_validate({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "mqtt": {"sys_interval": 0, "max_subscriptions_per_client": 0},
        "plugins": {"dashboard": {"address": "127.0.0.1:0", "token": TOKEN}},
    })
    broker = Broker(config)
    await broker.start()
    try:
        clients = await fill(broker)
        dashboard = dashboard_of(broker)
        assert dashboard is not None
        gc.collect()  # a collection of the fill's garbage would be charged to the first request
        print(f"{len(broker.trie)} subscriptions, {len(broker.retained)} retained messages")
        async with aiohttp.ClientSession(base_url=dashboard.url, headers={"Authorization": f"Bearer {TOKEN}"},
                                         timeout=aiohttp.ClientTimeout(total=120)) as http:
            for path in ("/healthz", "/api/subscriptions", "/api/subscriptions", "/api/subscriptions?offset=299000", "/api/subscriptions?q=no-match",
                         "/api/retained", "/api/retained?offset=99000", "/api/retained?q=no-match",
                         "/api/clients", "/api/clients/subscriber-0"):
                elapsed, held, size = await measure(http, path)
                print(f"{path:40} {elapsed * 1000:8.1f} ms, loop held at most {held * 1000:7.1f} ms, {size:>10} bytes")
        for client in clients:
            await client.close()
    finally:
        await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
