"""The startup banner: listeners, store and where its data is, auth, cluster, plugin statuses, plugins."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from engine_helpers import StartBroker

from hookmq import hookimpl
from hookmq.engine.banner import banner
from hookmq.testing.redis import RedisServer


def broker_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hookmq.broker"]


class Reporter:
    """A plugin that says what it does in the banner."""

    @hookimpl
    def plugin_status(self, broker: Any, settings: Any) -> str:
        return f"watching {len(broker.listeners)} listeners\n(second line joined)"


class BrokenReporter:
    @hookimpl
    def plugin_status(self) -> str:
        raise RuntimeError("status unavailable")


class Gatekeeper:
    @hookimpl
    def on_connect_authenticate(self) -> bool:
        return True

    @hookimpl
    def plugin_status(self) -> str:
        return "everyone with a badge"


async def test_hook_plugin_status(start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookmq")
    await start_broker(extra_plugins={"reporter": Reporter(), "broken": BrokenReporter()})
    lines = broker_lines(caplog)
    assert (logging.INFO, "reporter: watching 2 listeners (second line joined)") in lines
    assert not any(text.startswith("broken:") for _, text in lines)
    assert "plugin 'broken' failed in plugin_status" in caplog.text  # logged, and the start went on
    assert lines[-1] == (logging.INFO, "plugins: broken, gossip, memory_store, redis_store, reporter, sqlite_store")


async def test_banner_lists_listeners_then_what_runs(start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.broker")
    broker = await start_broker()
    texts = [text for _, text in broker_lines(caplog)]
    port = broker.listeners[0].address[1]
    assert texts[0].startswith("tcp") and f"mqtt://127.0.0.1:{port}" in texts[0]
    assert texts[1].startswith("ws ")
    assert texts[2].startswith("store: memory (in this process only")
    assert texts[3] == "auth: anonymous clients allowed (no authentication plugin is enabled)"
    assert texts[4] == "cluster: off (single node)"


async def test_auth_plugin_statuses_go_on_the_auth_line(start_broker: StartBroker) -> None:
    broker = await start_broker(extra_plugins={"gatekeeper": Gatekeeper()})
    lines = await banner(broker)
    assert (logging.INFO, "auth: on (gatekeeper: everyone with a badge)") in lines
    assert not any(text.startswith("gatekeeper:") for _, text in lines)


async def test_auth_plugin_says_how_many_users_and_rules(start_broker: StartBroker) -> None:
    from hookmq.plugins.auth.passwords import hash_password

    hashed = hash_password("pw", n=2**10, r=8, p=1)
    broker = await start_broker(plugins={"auth": {
        "users": {"a": hashed, "b": hashed, "c": hashed}, "allow_anonymous": True,
        "acl": [{"topic": "x/#"}, {"topic": "y", "effect": "deny"}],
    }})
    lines = await banner(broker)
    assert (logging.INFO, "auth: on (auth: 3 users, 2 ACL rules ([plugins.auth]); anonymous clients allowed)") in lines


async def test_sqlite_store_says_where_its_file_is(start_broker: StartBroker, tmp_path: Any) -> None:
    path = tmp_path / "state.sqlite3"
    broker = await start_broker(storage={"backend": "sqlite", "durability": "async"},
                                plugins={"sqlite_store": {"path": str(path), "synchronous": "normal"}})
    lines = await banner(broker)
    assert (logging.INFO, f"store: sqlite: {path} (synchronous normal), durability async") in lines


async def test_redis_store_url_is_shown_without_its_password(
        start_broker: StartBroker, redis_server: RedisServer) -> None:
    url = redis_server.url.replace("redis://", "redis://default:s3cret-pass@")
    broker = await start_broker(storage={"backend": "redis"}, plugins={"redis_store": {"url": url, "prefix": "t1:"}})
    lines = await banner(broker)
    assert (logging.INFO, f"store: redis: redis://default@127.0.0.1:{redis_server.port}/0 (key prefix 't1:'), "
                          "durability ack_after_write") in lines
    assert "s3cret-pass" not in repr(lines)


async def test_cluster_mode_is_described(start_broker: StartBroker) -> None:
    broker = await start_broker(cluster={"mode": True, "members": ["127.0.0.1:7946"]},
                                disabled_plugins=["dashboard", "gossip"])
    lines = await banner(broker)
    assert (logging.INFO, "cluster: mode on, but the gossip plugin is not enabled: running as a single node "
                          "(members: 127.0.0.1:7946)") in lines


async def test_cluster_mode_with_the_gossip_plugin_is_described(start_broker: StartBroker) -> None:
    broker = await start_broker(cluster={"mode": True, "port": 0, "bind": "127.0.0.1", "node_name": "banner-node"})
    lines = await banner(broker)
    assert (logging.INFO, "cluster: mode on, gossip port 0, members: none configured") in lines
    status = next(text for _, text in lines if text.startswith("gossip: "))
    assert status.startswith("gossip: node banner-node at 127.0.0.1:") and "not encrypted" in status
