"""Live updates pushed to browsers over a WebSocket, with a bounded queue per browser.

Each sample is serialised once and the same text is offered to every browser. A browser's
queue holds at most `queue_frames` frames: when it is full the oldest frame is dropped (a
slow browser simply skips samples; each frame carries absolute figures, so nothing is lost
but resolution). A browser whose socket accepts no frame for `stuck_seconds` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from aiohttp import WSCloseCode, web

log = logging.getLogger("hookmq.plugins.dashboard")


class LiveBrowser:
    """One connected browser: its pending frames and a wake-up for its sender."""

    def __init__(self, ws: web.WebSocketResponse, queue_frames: int) -> None:
        self.ws = ws
        self._frames: deque[str] = deque(maxlen=queue_frames)
        self._ready = asyncio.Event()
        #: Frames dropped because this browser fell behind.
        self.dropped = 0

    def offer(self, frame: str) -> None:
        """Queue a frame, evicting the oldest when the queue is full. Never blocks."""
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    async def next_frame(self) -> str:
        """Wait for the oldest pending frame."""
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()


class LiveHub:
    """Every connected browser, and the fan-out of frames to them."""

    def __init__(self, queue_frames: int, stuck_seconds: float) -> None:
        self._queue_frames = queue_frames
        self._stuck_seconds = stuck_seconds
        self._browsers: set[LiveBrowser] = set()

    def __len__(self) -> int:
        return len(self._browsers)

    @property
    def dropped(self) -> int:
        """Frames dropped for the browsers connected now."""
        return sum(browser.dropped for browser in self._browsers)

    def broadcast(self, frame: str) -> None:
        """Offer one already-serialised frame to every browser."""
        for browser in self._browsers:
            browser.offer(frame)

    async def serve(self, request: web.Request, first_frame: str) -> web.WebSocketResponse:
        """Run one browser's WebSocket until it leaves, gets stuck or the hub closes."""
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        browser = LiveBrowser(ws, self._queue_frames)
        browser.offer(first_frame)
        self._browsers.add(browser)
        reader = asyncio.ensure_future(self._drain_incoming(ws))
        try:
            await self._send_loop(browser, reader)
        finally:
            self._browsers.discard(browser)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), self._stuck_seconds)
        return ws

    async def _send_loop(self, browser: LiveBrowser, reader: asyncio.Future[None]) -> None:
        while not reader.done() and not browser.ws.closed:
            frame_task = asyncio.ensure_future(browser.next_frame())
            waited: set[asyncio.Future[Any]] = {frame_task, reader}
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            if not frame_task.done():
                frame_task.cancel()
                return
            try:
                await asyncio.wait_for(browser.ws.send_str(frame_task.result()), self._stuck_seconds)
            except TimeoutError:
                log.info("dashboard: closing a browser that took no update for %ss", self._stuck_seconds)
                await browser.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                return
            except ConnectionError:
                return

    @staticmethod
    async def _drain_incoming(ws: web.WebSocketResponse) -> None:
        """Browsers send nothing we act on; reading is what notices that they left."""
        async for _message in ws:
            pass

    async def close(self) -> None:
        """Close every browser (the dashboard is stopping)."""
        for browser in list(self._browsers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    browser.ws.close(code=WSCloseCode.GOING_AWAY, message=b"dashboard stopping"), 2.0
                )
