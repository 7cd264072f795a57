"""The dashboard and the MQTT listeners share one open-file limit and cannot starve each other
(issue 19 §1): a real broker process with `ulimit -n 200`, flooded from one side, then the other."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from hookmq.testing.process import BrokerProcess
from hookmq.testing.raw import RawClient

TOKEN = "descriptor-test-token-0123456789"
OPEN_FILES = 200


def config(idle_timeout: float) -> str:
    return (
        "[mqtt]\nsys_interval = 0\n"
        '[[listeners]]\nname = "tcp"\ntype = "tcp"\naddress = "127.0.0.1:0"\n'
        f'[plugins.dashboard]\naddress = "127.0.0.1:0"\ntoken = "{TOKEN}"\n'
        f"idle_timeout = {idle_timeout}\nheader_timeout = {idle_timeout}\n"
        # Caps high enough that only the descriptor reserves decide.
        "max_connections = 5000\nmax_connections_per_address = 5000\n"
        "mqtt_descriptor_reserve = 40\ndescriptor_reserve = 16\n"
    )


async def healthz(port: int) -> int:
    async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as response):
        return response.status


async def still_open(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return bool(await reader.read(1))
    except TimeoutError:
        return True
    except ConnectionError:
        return False


async def test_idle_dashboard_connections_cannot_take_mqtts_descriptors(tmp_path: Path) -> None:
    async with BrokerProcess(tmp_path, config(idle_timeout=3), open_files=OPEN_FILES,
                             expect_dashboard=True) as broker:
        held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            for _ in range(300):  # more than the whole limit, each sending nothing
                held.append(await asyncio.open_connection("127.0.0.1", broker.dashboard_port))
            alive = await asyncio.gather(*(still_open(reader, 0.5) for reader, _ in held))
            assert 0 < alive.count(True) < OPEN_FILES - 40, alive.count(True)
            # MQTT still has its reserve: 30 clients connect and are answered.
            clients = [await RawClient.connect("127.0.0.1", broker.mqtt_port, f"c{i}", level=5) for i in range(30)]
            assert all(connack.reason_code == 0 for _, connack in clients)
            # The idle dashboard connections are then closed by the idle timeout.
            remaining = await asyncio.gather(*(still_open(reader, 8) for reader, _ in held))
            assert remaining.count(True) == 0
            assert await healthz(broker.dashboard_port) == 200
            for client, _ in clients:
                await client.close()
        finally:
            for _, writer in held:
                writer.close()
        assert "dashboard connection refused" in broker.log()
        assert "reserved for mqtt" in broker.log()


async def test_mqtt_connections_cannot_take_the_dashboards_descriptors(tmp_path: Path) -> None:
    async with BrokerProcess(tmp_path, config(idle_timeout=30), open_files=OPEN_FILES,
                             expect_dashboard=True) as broker:
        clients: list[RawClient] = []
        refused = 0
        try:
            for i in range(250):
                try:
                    client, connack = await RawClient.connect("127.0.0.1", broker.mqtt_port, f"m{i}", level=5)
                except (EOFError, ConnectionError, TimeoutError):
                    refused += 1
                    continue
                assert connack.reason_code == 0
                clients.append(client)
            assert refused > 0 and len(clients) < OPEN_FILES
            # The dashboard's reserve is left: its health and API endpoints answer.
            assert await healthz(broker.dashboard_port) == 200
            async with (aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"},
                                              timeout=aiohttp.ClientTimeout(total=10)) as http,
                        http.get(f"http://127.0.0.1:{broker.dashboard_port}/api/clients") as response):
                assert response.status == 200
                assert (await response.json())["total"] == len(clients)
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()
        assert "mqtt connection refused" in broker.log()
        assert "reserved for dashboard" in broker.log()
