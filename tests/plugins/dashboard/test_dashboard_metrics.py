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


async def test_retained_metric_agrees_with_the_api_and_sys_is_labelled_apart(
        http: aiohttp.ClientSession, broker: Any, eventually: Any) -> None:
    await broker.publish("visible/a", b"1", retain=True)
    await broker.publish("visible/b", b"2", retain=True)

    async def api_total(system: bool) -> int:
        async with http.get("/api/retained", params={"system": "true" if system else "false"}) as response:
            return int((await response.json())["total"])

    async def sampled() -> bool:
        figures = await scrape(http)
        return figures["hookmq_retained"] == 2 and figures["hookmq_retained_system"] > 0

    await eventually(sampled)  # $SYS topics are retained from the start (sys_interval 10 s)
    figures = await scrape(http)
    assert figures["hookmq_retained"] == await api_total(system=False) == 2
    assert figures["hookmq_retained"] + figures["hookmq_retained_system"] == await api_total(system=True)
    assert broker.info()["retained"] == 2
