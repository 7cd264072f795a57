"""Tests of the example plugin, with the fixtures hookmq ships (pytest11 plugin ``hookmq``)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import hookmq_example
import pytest

from hookmq.config import Config


@pytest.fixture
def broker_config(broker_config: Config, tmp_path: Path) -> Config:
    """hookmq's test configuration, plus this plugin's table."""
    broker_config.plugins["example"] = {"refuse_prefix": "forbidden/", "record_file": str(tmp_path / "events")}
    return broker_config


@pytest.fixture
def broker_plugins() -> dict[str, object]:
    """Register the plugin by its entry-point name (also works when it is not installed)."""
    return {"example": hookmq_example}


async def test_greets_and_counts(mqtt_client: Any, tmp_path: Path) -> None:
    client = await mqtt_client(client_id="alice")
    done = threading.Event()
    client.on_publish = lambda *args: done.set()
    client.publish("allowed/topic", b"1", qos=1)
    assert await asyncio.to_thread(done.wait, 10)
    events = (tmp_path / "events").read_text().splitlines()
    assert "hello alice" in events


async def test_refuses_prefix(mqtt_client: Any) -> None:
    client = await mqtt_client(protocol=5)
    acked = threading.Event()
    codes: list[Any] = []

    def on_publish(client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        codes.append(reason_code)
        acked.set()

    client.on_publish = on_publish
    client.publish("forbidden/x", b"1", qos=1)
    assert await asyncio.to_thread(acked.wait, 10)
    assert codes[0].value == hookmq_example.NOT_AUTHORIZED
