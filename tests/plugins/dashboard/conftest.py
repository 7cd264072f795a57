"""Fixtures for the dashboard tests: a real broker with its dashboard on 127.0.0.1, port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hookmq.config import Config
from hookmq.plugins.dashboard import dashboard_of
from hookmq.plugins.dashboard.server import Dashboard

TOKEN = "test-token-0123456789abcdef"


def dashboard_config(**dashboard: Any) -> Config:
    """Loopback listeners on free ports and the dashboard on a free loopback port."""
    table = {"address": "127.0.0.1:0", "token": TOKEN, "sample_interval": 0.1, **dashboard}
    if table["token"] is None:
        del table["token"]
    return Config.from_mapping(
        {
            "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
            "storage": {"backend": "memory"},
            "plugins": {"dashboard": table},
        },
        source="<dashboard tests>",
    )


@pytest.fixture
def dashboard_settings() -> dict[str, Any]:
    """Extra `[plugins.dashboard]` keys; override in a test module to change them."""
    return {}


@pytest.fixture
def broker_config(dashboard_settings: dict[str, Any]) -> Config:
    """The shared `broker` fixture starts this configuration (dashboard enabled)."""
    return dashboard_config(**dashboard_settings)


@pytest.fixture
def dashboard(broker: Any) -> Dashboard:
    """The running dashboard of the `broker` fixture."""
    found = dashboard_of(broker)
    assert found is not None, "the dashboard plugin did not start"
    return found


@pytest_asyncio.fixture
async def http(dashboard: Dashboard) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that sends the dashboard token as a Bearer header."""
    async with aiohttp.ClientSession(
        base_url=dashboard.url, headers={"Authorization": f"Bearer {dashboard.token}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as session:
        yield session


@pytest_asyncio.fixture
async def anonymous(dashboard: Dashboard) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client with no credentials (it keeps cookies, like a browser)."""
    async with aiohttp.ClientSession(
        base_url=dashboard.url, timeout=aiohttp.ClientTimeout(total=10),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    ) as session:
        yield session


async def _eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """`await eventually(check, timeout=5)`: poll a sync or async check until it is truthy, else fail."""
    return _eventually


@pytest.fixture
def make_config() -> Callable[..., Config]:
    """`make_config(**dashboard_keys)`: a Config like the `broker` fixture's, with other dashboard keys."""
    return dashboard_config
