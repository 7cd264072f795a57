"""Soak: a broker process under sustained load with clients that never read keeps its memory bounded.

Marked slow (about a minute): run with ``python -m pytest -m slow tests/engine/test_soak.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hookmq.mqtt.packets import Properties
from hookmq.testing.raw import RawClient

pytestmark = pytest.mark.slow


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match.group(1))


async def start_broker(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    config = tmp_path / "soak.toml"
    config.write_text(
        'disabled_plugins = ["dashboard"]\n'
        "[mqtt]\nmax_queued_messages = 1000\nmax_write_buffer = 262144\nsys_interval = 1\n"
        '[[listeners]]\nname = "tcp"\ntype = "tcp"\naddress = "127.0.0.1:0"\n'
    )
    log = (tmp_path / "broker.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "hookmq", "-c", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for _ in range(200):
        text = (tmp_path / "broker.log").read_text()
        found = re.search(r"mqtt://127\.0\.0\.1:(\d+)", text)
        if found:
            return process, int(found.group(1))
        await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("the broker did not start")


@pytest.mark.timeout(180)
async def test_memory_stays_bounded_with_subscribers_that_never_read(tmp_path: Path) -> None:
    process, port = await start_broker(tmp_path)
    try:
        # Stuck readers: a QoS 0 subscriber and a persistent QoS 1 subscriber that never read.
        stuck = []
        for level, qos, props in ((4, 0, Properties()), (5, 1, Properties(session_expiry_interval=600))):
            client, _ = await RawClient.connect("127.0.0.1", port, f"stuck-{qos}", level=level,
                                                clean_start=not qos, properties=props)
            await client.subscribe("soak/#", qos)
            stuck.append(client)
        healthy, _ = await RawClient.connect("127.0.0.1", port, "healthy", level=5)
        await healthy.subscribe("soak/ping", 0)
        publisher, _ = await RawClient.connect("127.0.0.1", port, "soak-pub", level=4)
        payload = b"x" * 1024
        samples: list[int] = []
        deadline = time.monotonic() + 40
        sent = 0
        while time.monotonic() < deadline:
            for _ in range(500):
                await publisher.publish(f"soak/{sent % 50}", payload, qos=1)
                sent += 1
            samples.append(rss_kib(process.pid))
            await publisher.publish("soak/ping", b"alive")
            while True:  # drain the healthy subscriber: it sees everything under soak/ping
                message = await healthy.receive_message(5)
                if message.topic == "soak/ping":
                    break
        # Many more bytes were published than the bounds allow to keep (~2 queues of 1000 + buffers).
        assert sent * len(payload) > 50 * 1024 * 1024
        warm = samples[len(samples) // 4]
        print(f"soak: {sent} messages, RSS KiB warm {warm}, max {max(samples)}, last {samples[-1]}")
        assert max(samples[len(samples) // 4:]) - warm < 16 * 1024, (warm, max(samples))
        for client in (*stuck, healthy, publisher):
            await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(15) == 0
        except subprocess.TimeoutExpired:
            process.kill()
            raise
