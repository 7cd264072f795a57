"""The gossip plugin in real brokers: settings, the Go broker's log lines, the cluster API."""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gossip_nodes import eventually
from gossip_oracle import free_port
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.config import Config, ConfigError
from hookmq.engine import Broker
from hookmq.plugins.gossip import cluster_of
from hookmq.plugins.gossip.addresses import choose_advertise, is_private, split_member
from hookmq.plugins.gossip.api import ClusterEvent
from hookmq.plugins.gossip.membership import EventKind
from hookmq.plugins.gossip.metadata import ListenerEndpoint, NodeMetadata
from hookmq.plugins.gossip.plugin import default_node_name, membership_config, quickest_verdict

KEY = base64.b64encode(os.urandom(32)).decode()


def cluster_config(name: str, port: int, members: list[str] | None = None, **cluster: Any) -> Config:
    table = {"mode": True, "port": port, "bind": "127.0.0.1", "advertise": "127.0.0.1", "node_name": name,
             "profile": "local", "members": members or [], **cluster}
    return Config.from_mapping(
        {"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}], "cluster": table,
         "disabled_plugins": ["dashboard"]},
        source="<gossip tests>",
    )


@pytest.fixture
async def brokers() -> AsyncIterator[list[Broker]]:
    started: list[Broker] = []
    yield started
    for broker in reversed(started):
        await broker.stop()


async def start(brokers: list[Broker], config: Config) -> Broker:
    broker = Broker(config)
    await broker.start()
    brokers.append(broker)
    return broker


async def test_without_cluster_mode_the_plugin_does_nothing(brokers: list[Broker]) -> None:
    broker = await start(brokers, Config.from_mapping({"listeners": [{"name": "t", "type": "tcp", "address": "127.0.0.1:0"}],
                                                       "disabled_plugins": ["dashboard"]}))
    assert cluster_of(broker) is None


async def test_two_brokers_form_a_cluster_with_the_go_log_lines(brokers: list[Broker], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.plugins.gossip")
    port_a, port_b = free_port(), free_port()
    a = await start(brokers, cluster_config("node-a", port_a, key=KEY))
    b = await start(brokers, cluster_config("node-b", port_b, [f"127.0.0.1:{port_a}"], key=KEY, runner="loop"))
    cluster_a, cluster_b = cluster_of(a), cluster_of(b)
    assert cluster_a is not None and cluster_b is not None
    assert await eventually(lambda: {m.name for m in cluster_a.members()} == {"node-a", "node-b"}, 10)
    lines = [record.getMessage() for record in caplog.records]
    for expected in ("A node has joined: node-a", "A node has joined: node-b", f"Local member 127.0.0.1:{port_a}",
                     f"Local member 127.0.0.1:{port_b}", "Cluster Node Created!"):
        assert expected in lines
    assert not any("neither authenticated nor encrypted" in line for line in lines)  # a key is set
    # Metadata carries the data plane: the bound MQTT listener, not port 0.
    tcp_port = a.listeners[0].address[1]
    assert await eventually(lambda: (m := cluster_b.member("node-a")) is not None and m.metadata is not None
                            and m.metadata.listener("tcp") == ListenerEndpoint("tcp", "127.0.0.1", tcp_port), 10)


async def test_cluster_api_events_messages_and_metadata(brokers: list[Broker]) -> None:
    port_a = free_port()
    a = await start(brokers, cluster_config("node-a", port_a))
    cluster_a = cluster_of(a)
    assert cluster_a is not None
    events: list[ClusterEvent] = []
    messages: list[tuple[bytes, bool]] = []
    states: list[bytes] = []
    cluster_a.on_event(events.append)
    cluster_a.on_message(lambda payload, reliable: messages.append((payload, reliable)))
    cluster_a.on_remote_state(lambda state, join: states.append(state))
    b = await start(brokers, cluster_config("node-b", free_port(), [f"127.0.0.1:{port_a}"]))
    cluster_b = cluster_of(b)
    assert cluster_b is not None
    cluster_b.set_local_state(lambda join: b"routes of b")
    assert await eventually(lambda: any(e.kind == EventKind.JOIN and e.member.name == "node-b" for e in events), 10)
    await cluster_b.send("node-a", b"reliable", reliable=True)
    await cluster_b.send("node-a", b"best effort", reliable=False)
    await cluster_b.broadcast(b"to everyone")
    assert await eventually(lambda: {(b"reliable", True), (b"best effort", False), (b"to everyone", False)} <= set(messages), 10)
    await cluster_b.update_metadata(NodeMetadata(cluster_b.metadata.listeners, {"link": 7100}))
    assert await eventually(lambda: any(e.kind == EventKind.UPDATE and e.member.metadata is not None
                                        and e.member.metadata.extra.get("link") == 7100 for e in events), 10)
    with pytest.raises(KeyError):
        await cluster_b.send("nobody", b"x")
    assert cluster_b.local.name == "node-b" and cluster_b.stats["packets_received"] > 0
    await b.stop()
    brokers.remove(b)
    assert await eventually(lambda: any(e.kind == EventKind.LEFT and e.member.name == "node-b" for e in events), 10)


async def test_no_key_logs_a_warning(brokers: list[Broker], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hookmq.plugins.gossip")
    await start(brokers, cluster_config("lone", free_port()))
    assert any("neither authenticated nor encrypted" in record.getMessage() and record.levelno == logging.WARNING
               for record in caplog.records)


async def test_a_failure_hold_as_long_as_the_quickest_verdict_is_warned_about(
        brokers: list[Broker], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hookmq.plugins.gossip")
    settings = cluster_config("x", 1).cluster
    assert quickest_verdict(membership_config(settings)) == 4.0  # local: a 1 s probe, then 3 s of suspicion
    await start(brokers, cluster_config("default-hold", free_port()))
    await start(brokers, cluster_config("long-hold", free_port(), link_failure_hold=4.0))
    warnings = [record.getMessage() for record in caplog.records if "link_failure_hold" in record.getMessage()]
    assert warnings == ["[cluster] link_failure_hold (4 s) is not shorter than membership's quickest verdict on a "
                        "silent node (4 s with profile local): a node that crashed is still held for up to 4 s "
                        "after it is declared failed"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"key": "not base64!"}, r"cluster.key: .*base64"),
        ({"key": base64.b64encode(b"short").decode()}, r"cluster.key: .*16, 24 or 32 bytes"),
        ({"key": KEY, "key_file": "/tmp/x"}, r"cluster: .*not both"),
        ({"members": [":7946"]}, r"cluster.members: .*needs a host"),
        ({"members": ["h:port"]}, r"cluster.members: .*port"),
        ({"label": "x" * 256}, r"cluster.label"),
        ({"profile": "moon"}, r"cluster.profile"),
        ({"probe_interval": 0}, r"cluster.probe_interval"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_mapping({"cluster": table})


def test_keys_and_key_file(tmp_path: Path) -> None:
    keys = [base64.b64encode(os.urandom(size)).decode() for size in (16, 24, 32)]
    assert Config.from_mapping({"cluster": {"key": keys}}).cluster.gossip_keys() == [base64.b64decode(k) for k in keys]
    path = tmp_path / "keys"
    path.write_text("\n".join(keys) + "\n")
    assert Config.from_mapping({"cluster": {"key_file": str(path)}}).cluster.gossip_keys()[0] == base64.b64decode(keys[0])
    path.write_text("bogus\n")
    with pytest.raises(ValueError, match=r"key_file .*base64"):
        Config.from_mapping({"cluster": {"key_file": str(path)}}).cluster.gossip_keys()


def test_a_setup_error_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[cluster]\nmode = true\nport = {free_port()}\nbind = "127.0.0.1"\nkey_file = "{tmp_path}/missing"\n'
                      '[[listeners]]\nname = "t"\ntype = "tcp"\naddress = "127.0.0.1:0"\n')
    result = subprocess.run([sys.executable, "-m", "hookmq", "-c", str(config), "--disable-plugin", "dashboard"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "key_file" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr


def test_profile_and_overrides() -> None:
    settings = Config.from_mapping({"cluster": {"profile": "wan", "probe_interval": 2.5, "expect": 3}}).cluster
    config = membership_config(settings)
    assert (config.probe_interval, config.probe_timeout, config.suspicion_mult, config.expect) == (2.5, 3.0, 6, 3)


def test_default_node_name_is_host_dash_uuid() -> None:
    assert re.fullmatch(r".+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", default_node_name())


def test_advertise_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import hookmq.plugins.gossip.addresses as addresses

    assert choose_advertise("0.0.0.0", "10.1.1.1") == "10.1.1.1"
    assert choose_advertise("192.168.5.5", None) == "192.168.5.5"
    monkeypatch.setattr(addresses, "_default_route_source", lambda: "10.9.8.7")
    assert choose_advertise("0.0.0.0", None) == "10.9.8.7"
    monkeypatch.setattr(addresses, "_default_route_source", lambda: "8.8.4.4")  # public: not picked
    monkeypatch.setattr(addresses, "_interface_addresses", lambda: ["127.0.0.1", "8.8.4.4", "172.20.0.3"])
    assert choose_advertise("0.0.0.0", None) == "172.20.0.3"
    monkeypatch.setattr(addresses, "_default_route_source", lambda: None)
    monkeypatch.setattr(addresses, "_interface_addresses", lambda: ["127.0.0.1"])
    assert choose_advertise("0.0.0.0", None) == "127.0.0.1"
    assert is_private("100.64.1.1") and not is_private("100.128.0.1") and not is_private("::1")
    assert split_member("host", 7946) == ("host", 7946) and split_member("[::1]:9", 1) == ("::1", 9)


def test_metadata_round_trip_and_foreign_bytes() -> None:
    metadata = NodeMetadata((ListenerEndpoint("tcp", "10.0.0.1", 1883), ListenerEndpoint("ws", "10.0.0.1", 1882)), {"link": 7100})
    assert NodeMetadata.decode(metadata.encode()) == metadata
    for foreign in (b"", b"hello", b"\x81\xa1a\x01", os.urandom(64)):
        assert NodeMetadata.decode(foreign) is None
    with pytest.raises(ValueError):
        NodeMetadata(tuple(ListenerEndpoint("tcp", "h" * 40, 1) for _ in range(20))).encode()


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_metadata_decoder_takes_any_bytes(data: bytes) -> None:
    decoded = NodeMetadata.decode(data)
    assert decoded is None or isinstance(decoded, NodeMetadata)
