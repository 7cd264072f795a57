"""The plugin's life with a real broker: start, stop, one dashboard per broker, missing extras."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

import hookmq.plugins.dashboard as plugin
from hookmq.config import Config
from hookmq.engine import Broker


async def test_each_broker_has_its_own_dashboard(make_config: Callable[..., Config]) -> None:
    first, second = Broker(make_config()), Broker(make_config())
    await first.start()
    await second.start()
    try:
        one, two = plugin.dashboard_of(first), plugin.dashboard_of(second)
        assert one is not None and two is not None and one is not two
        assert one.bound_address != two.bound_address
        assert one.registry is not two.registry
        assert one.ready and two.ready
        await first.publish("only/on/first", b"x", retain=True)
        headers = {"Authorization": f"Bearer {one.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(one.url + "api/retained") as response:
                assert (await response.json())["total"] == 1
            async with http.get(two.url + "api/retained") as response:
                assert (await response.json())["total"] == 0
    finally:
        await first.stop()
        await second.stop()


async def test_stop_closes_the_server(make_config: Callable[..., Config]) -> None:
    broker = Broker(make_config())
    await broker.start()
    dashboard = plugin.dashboard_of(broker)
    assert dashboard is not None
    url = dashboard.url
    await broker.stop()
    assert plugin.dashboard_of(broker) is None
    assert dashboard.ready is False
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(url + "healthz"):
                pass


async def test_missing_extras_only_disable_the_dashboard(make_config: Callable[..., Config],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(plugin, "missing_dependencies", lambda: ["aiohttp"])
    caplog.set_level(logging.WARNING, logger="hookmq.plugins.dashboard")
    broker = Broker(make_config())
    await broker.start()
    try:
        assert plugin.dashboard_of(broker) is None
        assert broker.listeners, "the broker still serves MQTT"
        assert any("dashboard disabled" in record.getMessage() for record in caplog.records)
    finally:
        await broker.stop()


async def test_a_taken_port_fails_the_start_loudly(make_config: Callable[..., Config], dashboard: Any) -> None:
    host, port = dashboard.bound_address
    broker = Broker(make_config(address=f"{host}:{port}"))
    with pytest.raises(Exception, match=str(port)):
        await broker.start()
    await broker.stop()


def test_importing_the_plugin_needs_no_extras() -> None:
    # The broker imports every enabled plugin; the extras are only imported at plugin_start.
    code = "import sys, hookmq.plugins.dashboard; print('aiohttp' in sys.modules, 'prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["False", "False"]


async def test_banner_line_gives_the_url_on_the_bound_address(make_config: Callable[..., Config]) -> None:
    from hookmq.engine.banner import banner

    for address, wildcard in (("127.0.0.1:0", False), (":0", True)):
        broker = Broker(make_config(address=address))
        await broker.start()
        try:
            (line,) = [text for _, text in await banner(broker) if text.startswith("dashboard: ")]
            found = re.fullmatch(r"dashboard: (http://127\.0\.0\.1:(\d+)/) \((.*)\)", line)
            assert found, line
            assert found.group(3) == ("all interfaces" if wildcard else "bound to 127.0.0.1")
            assert found.group(2) != "0"
            async with aiohttp.ClientSession() as http, http.get(found.group(1) + "healthz") as response:
                assert response.status == 200  # the URL reaches the server
        finally:
            await broker.stop()
