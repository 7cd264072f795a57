"""/metrics: the sampled figures in the Prometheus text format, one registry per broker."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from hookmq.plugins.dashboard.server import Dashboard


async def scrape(http: aiohttp.ClientSession) -> dict[str, float]:
    async with http.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_metrics_follow_the_sampled_figures(http: aiohttp.ClientSession, dashboard: Dashboard,
                                                  mqtt_client: Any, eventually: Any) -> None:
    before = await scrape(http)
    assert before["hookmq_clients_connected"] == 0
    assert "hookmq_messages_received_total" in before
    assert before["hookmq_ready"] == 1

    await mqtt_client(client_id="metrics-client")

    async def one_client() -> bool:
        return (await scrape(http))["hookmq_clients_connected"] == 1

    await eventually(one_client)
    after = await scrape(http)
    assert after["hookmq_clients_total"] >= 1
    assert after["hookmq_sample_timestamp_seconds"] >= before["hookmq_sample_timestamp_seconds"]


async def test_text_figures_are_an_info_metric(http: aiohttp.ClientSession, broker: Any) -> None:
    async with http.get("/metrics") as response:
        text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    info = families["hookmq_broker_info"]  # the text format exposes info metrics as a gauge of 1
    assert info.samples[0].value == 1
    assert info.samples[0].labels["version"] == broker.info()["version"]


async def test_the_global_registry_is_untouched(dashboard: Dashboard) -> None:
    assert dashboard.registry is not REGISTRY
    names = {metric.name for metric in REGISTRY.collect()}
    assert not any(name.startswith("hookmq_") for name in names)
