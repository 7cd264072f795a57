"""The operator view of one in-process node in cluster mode: itself as the only member, readiness,
and the hook-up point for the takeover/adoption counters of sessions across nodes."""

from __future__ import annotations

import sys
import types
from typing import Any

import aiohttp
import pytest

from hookmq.config import Config
from hookmq.plugins.dashboard.cluster import SESSIONS_MODULE, cluster_view

TOKEN = "cluster-view-token-0123456789abcdef"


@pytest.fixture
def broker_config() -> Config:
    return Config.from_mapping({
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
        "storage": {"backend": "memory"},
        "cluster": {"mode": True, "port": 0, "bind": "127.0.0.1", "advertise": "127.0.0.1", "node_name": "solo",
                    "profile": "local"},
        "plugins": {"dashboard": {"address": "127.0.0.1:0", "token": TOKEN, "sample_interval": 0.1}},
    }, source="<cluster view tests>")


async def test_a_first_node_is_its_own_cluster_and_ready(broker: Any, http: aiohttp.ClientSession) -> None:
    async with http.get("/api/cluster") as response:
        view = await response.json()
    assert view["enabled"] is True and view["node"] == "solo" and view["joined"] is True
    assert [m["name"] for m in view["members"]] == ["solo"] and view["members"][0]["local"] is True
    assert view["members_by_state"] == {"alive": 1, "suspect": 0, "failed": 0, "left": 0}
    assert view["totals"]["nodes_reporting"] == 1 and view["sessions"] == {"adoptions": 0, "takeovers": 0, "takeovers_handed_over": 0}
    async with http.get("/readyz") as response:
        assert response.status == 200 and (await response.json())["status"] == "ready"
    async with http.get("/api/cluster/clients") as response:
        clients = await response.json()
    assert clients["enabled"] is True and clients["nodes"] == {"solo": {"total": 0}}


async def test_session_counters_are_exported_once_the_sessions_part_provides_them(
        broker: Any, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(SESSIONS_MODULE)
    counts = {"takeovers_sent": 3, "takeovers_handled": 2, "sessions_adopted": 5, "claims": 9}
    module.sessions_of = lambda of: types.SimpleNamespace(counts=counts) if of is broker else None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, SESSIONS_MODULE, module)
    assert cluster_view(broker)["sessions"] == {"takeovers": 3, "takeovers_handed_over": 2, "adoptions": 5}
    async with http.get("/metrics") as response:
        text = await response.text()
    assert "hookmq_cluster_takeovers_total 3.0" in text and "hookmq_cluster_adoptions_total 5.0" in text
