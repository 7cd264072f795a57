"""The cluster panel in headless Chromium with two real hookmq processes: the second node appears,
a client connected to it is listed on the first node's page and disconnected from there, then the
second node is killed with SIGKILL and turns failed, with the join and the failure in the event list."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from dashboard_nodes import TOKEN, ClusterNode
from test_dashboard_browser import CHROMIUM, DevTools, chromium

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.timeout(150),
]

ROW = ("(() => {{ const row = [...document.querySelectorAll('#cluster-body tr')]"
       ".find((r) => r.cells[0] && r.cells[0].textContent === {name}); return row ? "
       "[...row.cells].map((c) => c.textContent) : null; }})()")


CLIENT_ROW = ("(() => {{ const row = [...document.querySelectorAll('#cluster-clients-body tr')]"
              ".find((r) => r.cells[0] && r.cells[0].textContent === {name}); return row ? "
              "[...row.cells].map((c) => c.textContent) : null; }})()")
CLICK = ("(() => {{ const row = [...document.querySelectorAll('#cluster-clients-body tr')]"
         ".find((r) => r.cells[0] && r.cells[0].textContent === {name}); row.querySelector('button').click(); "
         "return true; }})()")


async def row(browser: DevTools, name: str) -> list[str] | None:
    found = await browser.evaluate(ROW.format(name=json.dumps(name)))
    return found if isinstance(found, list) else None


async def test_the_cluster_panel_follows_a_node_that_joins_and_is_killed(tmp_path: Path) -> None:
    alpha = ClusterNode(tmp_path, "alpha")
    beta: ClusterNode | None = None
    try:
        url = await asyncio.to_thread(lambda: alpha.url)
        gossip = await asyncio.to_thread(lambda: alpha.gossip)
        async with chromium(tmp_path) as browser:
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=url)
            await browser.wait_for("location.pathname === '/login' && document.readyState === 'complete'")
            await browser.evaluate(f"document.getElementById('token').value = {json.dumps(TOKEN)};"
                                   "document.querySelector('form').submit(); true")
            await browser.wait_for("location.pathname === '/' && document.readyState === 'complete'")
            await browser.wait_for("document.getElementById('live-status').textContent === 'live'")
            await browser.wait_for("!document.getElementById('cluster-view').hidden")
            assert await browser.evaluate("document.getElementById('cluster-empty').hidden") is True
            local = await row(browser, "alpha (this node)")
            assert local is not None and local[1] == "alive" and local[3] == gossip, local

            beta = ClusterNode(tmp_path, "beta", members=[gossip])
            await browser.wait_for(f"{ROW.format(name=json.dumps('beta'))}?.[5] === 'up'", timeout=30)
            cells = await row(browser, "beta")
            assert cells is not None and cells[1] == "alive" and cells[3] == await asyncio.to_thread(lambda: beta.gossip)
            # The link's round trip once a ping came back: on loopback well under 1 ms, yet not shown as 0.
            await browser.wait_for(f"{ROW.format(name=json.dumps('beta'))}?.[9].endsWith(' ms')", timeout=30)
            rtt = (await row(browser, "beta") or [""] * 10)[9]
            assert re.fullmatch(r"\d+(\.\d+)? ms", rtt) and float(rtt.split()[0]) > 0, rtt
            await browser.wait_for("document.getElementById('cluster-events').textContent.includes('beta join')")
            await browser.wait_for("document.getElementById('cluster-summary').textContent.startsWith('2 alive')")

            # A client of beta, listed on alpha's page with its node, disconnected from there.
            port = await asyncio.to_thread(beta.mqtt_port)
            gone = threading.Event()
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seen-from-alpha")
            client.on_disconnect = lambda *_: gone.set()
            client.connect("127.0.0.1", port)
            client.loop_start()
            try:
                listed = CLIENT_ROW.format(name=json.dumps("seen-from-alpha"))
                await browser.wait_for(f"{listed}?.[1] === 'beta'", timeout=20)
                await browser.evaluate(CLICK.format(name=json.dumps("seen-from-alpha")))
                assert await asyncio.to_thread(gone.wait, 10)
                await browser.wait_for(f"{listed} === null", timeout=20)
            finally:
                client.loop_stop()

            await asyncio.to_thread(beta.kill)
            await browser.wait_for(f"{ROW.format(name=json.dumps('beta'))}?.[1] === 'failed'", timeout=40)
            await browser.wait_for("document.getElementById('cluster-events').textContent.includes('beta failed')")
            summary = await browser.evaluate("document.getElementById('cluster-summary').textContent")
            assert summary.startswith("1 alive · 0 suspect · 1 failed"), summary
            shot = await browser.call("Page.captureScreenshot", format="png")
            assert len(shot["data"]) > 1000
    finally:
        for node in (beta, alpha):
            if node is not None:
                await asyncio.to_thread(node.stop)
