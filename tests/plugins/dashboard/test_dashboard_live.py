"""The live feed: history first, then one frame per sample; bounded per-browser queues."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from hookmq.plugins.dashboard.live import LiveBrowser, LiveHub
from hookmq.plugins.dashboard.server import Dashboard


async def test_history_then_samples(http: aiohttp.ClientSession, dashboard: Dashboard, mqtt_client: Any) -> None:
    async with http.ws_connect("/api/live") as ws:
        first = json.loads((await ws.receive(timeout=5)).data)
        assert first["type"] == "history"
        assert first["samples"] and first["interval"] > 0
        await mqtt_client(client_id="live-watcher")
        connected = 0
        for _ in range(100):
            frame = json.loads((await ws.receive(timeout=5)).data)
            assert frame["type"] == "sample"
            connected = frame["figures"]["clients_connected"]
            if connected == 1:
                break
        assert connected == 1
        assert len(dashboard.hub) == 1


async def test_browser_leaving_is_forgotten(http: aiohttp.ClientSession, dashboard: Dashboard,
                                            eventually: Any) -> None:
    async with http.ws_connect("/api/live") as ws:
        await ws.receive(timeout=5)
        assert len(dashboard.hub) == 1
    await eventually(lambda: len(dashboard.hub) == 0)


async def test_a_slow_browser_skips_old_frames() -> None:
    browser = LiveBrowser(ws=None, queue_frames=3)  # type: ignore[arg-type]  # the queue never touches it
    for number in range(10):
        browser.offer(str(number))
    assert browser.dropped == 7
    assert [await browser.next_frame() for _ in range(3)] == ["7", "8", "9"]


async def test_next_frame_waits_for_an_offer() -> None:
    browser = LiveBrowser(ws=None, queue_frames=2)  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(browser.next_frame())
    await asyncio.sleep(0)
    assert not waiting.done()
    browser.offer("x")
    assert await asyncio.wait_for(waiting, 5) == "x"


class StuckSocket:
    """A WebSocket whose peer never reads: every send waits forever."""

    def __init__(self) -> None:
        self.closed = False
        self.close_code: int | None = None

    async def send_str(self, data: str) -> None:
        await asyncio.Event().wait()

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        self.close_code = code
        return True


async def test_a_stuck_browser_is_closed() -> None:
    # A real stuck peer needs megabytes in the kernel's socket buffers before a send blocks;
    # this stand-in blocks at once, which is the condition being tested.
    hub = LiveHub(queue_frames=2, stuck_seconds=0.05)
    socket = StuckSocket()
    browser = LiveBrowser(socket, 2)  # type: ignore[arg-type]
    browser.offer("frame")
    never_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await asyncio.wait_for(hub._send_loop(browser, never_done), 5)
    assert socket.closed and socket.close_code == 1013
