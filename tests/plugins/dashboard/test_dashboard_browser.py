"""The page in headless Chromium, driven over the Chrome DevTools protocol (no extra packages).

The browser logs in with the form, watches the connected-clients figure change when a paho
client connects, and takes a screenshot that must not be blank.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import statistics
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookmq.plugins.dashboard.server import Dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.timeout(90),
]

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1280,1000",
]


class DevTools:
    """A minimal CDP client: commands by id over one page's WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events arriving meanwhile are skipped)."""
        number = next(self._ids)
        await self._ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads((await self._ws.receive(timeout=30)).data)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll a JavaScript expression until it is truthy."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                where = await self.evaluate("location.href + ' :: ' + document.body.innerText.slice(0, 300)")
                raise AssertionError(f"{expression!r} stayed falsy for {timeout} s at {where}")
            await asyncio.sleep(0.1)


async def devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """Chromium writes its DevTools port into the profile once it listens."""
    marker = profile / "DevToolsActivePort"
    for _ in range(300):
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().splitlines()[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        await asyncio.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[DevTools]:
    profile = tmp_path / "profile"
    profile.mkdir()
    assert CHROMIUM is not None
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = await devtools_port(profile, process)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json(content_type=None)
            page = next(target for target in targets if target["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024) as ws:
                yield DevTools(ws)
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()


def png_pixels(data: bytes) -> tuple[int, int, list[int]]:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG into (width, height, grey levels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    width = height = channels = 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunk = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    grey: list[int] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        grey.extend((line[i] + line[i + 1] + line[i + 2]) // 3 for i in range(0, stride, channels))
        previous = line
    return width, height, grey


async def test_page_shows_live_figures(dashboard: Dashboard, mqtt_client: Any, tmp_path: Path) -> None:
    async with chromium(tmp_path) as browser:
        await browser.call("Page.enable")
        await browser.call("Page.navigate", url=dashboard.url)  # not logged in: sent to the form
        await browser.wait_for("location.pathname === '/login' && document.readyState === 'complete'")
        await browser.evaluate(
            f"document.getElementById('token').value = {json.dumps(dashboard.token)};"
            "document.querySelector('form').submit(); true"
        )
        await browser.wait_for("location.pathname === '/' && document.readyState === 'complete'")
        await browser.wait_for("document.getElementById('live-status').textContent === 'live'")
        await browser.wait_for("document.getElementById('stat-clients-connected').textContent === '0'")
        assert await browser.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts

        await mqtt_client(client_id="seen-by-the-browser")
        await browser.wait_for("document.getElementById('stat-clients-connected').textContent === '1'")
        await browser.wait_for("document.getElementById('clients-body').textContent.includes('seen-by-the-browser')")
        assert "clustering not enabled" in await browser.evaluate("document.getElementById('cluster').textContent")

        # The publish form goes through the cookie session and its CSRF token.
        await browser.evaluate(
            "const form = document.getElementById('publish-form');"
            "form.topic.value = 'from/the/browser'; form.payload.value = 'hi'; form.retain.checked = true;"
            "form.requestSubmit(); true"
        )
        await browser.wait_for("document.getElementById('publish-result').textContent.startsWith('Published')")
        await browser.wait_for("document.getElementById('retained-body').textContent.includes('from/the/browser')")

        shot = await browser.call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    (tmp_path / "dashboard.png").write_bytes(png)
    width, height, grey = png_pixels(png)
    assert width >= 800 and height >= 600
    assert statistics.pvariance(grey[::7]) > 50, "the screenshot is blank"
    assert len(set(grey)) > 10


async def log_in(browser: DevTools, dashboard: Dashboard) -> None:
    """Open the page, log in with the form and wait for the live feed."""
    await browser.call("Page.enable")
    await browser.call("Page.navigate", url=dashboard.url)
    await browser.wait_for("location.pathname === '/login' && document.readyState === 'complete'")
    await browser.evaluate(
        f"document.getElementById('token').value = {json.dumps(dashboard.token)};"
        "document.querySelector('form').submit(); true"
    )
    await browser.wait_for("location.pathname === '/' && document.readyState === 'complete'")
    await browser.wait_for("document.getElementById('live-status').textContent === 'live'")


def click_in_row(body_id: str, first_cell: str) -> str:
    """JavaScript: click the button of the row whose first cell is exactly `first_cell`."""
    return (
        f"(() => {{ const row = [...document.querySelectorAll('#{body_id} tr')]"
        f".find((r) => r.cells[0] && r.cells[0].textContent === {json.dumps(first_cell)});"
        " if (!row) return false; row.querySelector('button').click(); return true; })()"
    )


async def test_buttons_aim_at_the_named_topic_and_client(dashboard: Dashboard, broker: Any, tmp_path: Path) -> None:
    """Issue 19 §4: a retained topic `../clients/victim` is deleted without disconnecting `victim`,
    and a client whose id is `..` can be disconnected from the page."""
    from hookmq.testing.raw import RawClient

    port = int(broker.listeners[0].address[1])
    victim, _ = await RawClient.connect("127.0.0.1", port, "victim", level=5)
    dots, _ = await RawClient.connect("127.0.0.1", port, "..", level=5)
    await broker.publish("../clients/victim", b"bait", retain=True)
    async with chromium(tmp_path) as browser:
        await log_in(browser, dashboard)
        await browser.wait_for("document.getElementById('retained-body').textContent.includes('../clients/victim')")
        assert await browser.evaluate(click_in_row("retained-body", "../clients/victim"))
        await browser.wait_for("!document.getElementById('retained-body').textContent.includes('../clients/victim')")
        assert broker.retained.get("../clients/victim") is None
        assert "victim" in broker.connected
        assert await victim.nothing_within(0.3)  # no DISCONNECT 0x98 reached the victim

        await browser.wait_for(click_in_row("clients-body", ".."))
        assert await dots.closed_within(5) is not None
        for _ in range(50):
            if ".." not in broker.connected:
                break
            await asyncio.sleep(0.1)
        assert ".." not in broker.connected and "victim" in broker.connected

        # Issue 19 §2: the publish form cannot write a `$` topic either.
        await browser.evaluate(
            "const form = document.getElementById('publish-form');"
            "form.topic.value = '$SYS/broker/version'; form.payload.value = 'forged'; form.retain.checked = true;"
            "form.requestSubmit(); true"
        )
        await browser.wait_for("document.getElementById('publish-result').className === 'error'")
        assert "reserved" in await browser.evaluate("document.getElementById('publish-result').textContent")
        version = broker.retained.get("$SYS/broker/version")
        assert version is None or version.payload != b"forged"
    await victim.close()
