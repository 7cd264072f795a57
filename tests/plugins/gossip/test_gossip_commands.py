"""``hookmq cluster keygen``: the key it prints is one the gossip plugin encrypts with."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gossip_nodes import eventually
from gossip_oracle import free_port

from hookmq.cli import main
from hookmq.config import Config, load_config
from hookmq.engine import Broker
from hookmq.plugins import gossip
from hookmq.plugins.gossip import cluster_of
from hookmq.plugins.gossip.commands import new_key


def _keygen(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "hookmq", "cluster", "keygen", *args],
                            capture_output=True, text=True, timeout=60, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stderr == ""
    return lines[0]


@pytest.mark.parametrize(("args", "size"), [((), 32), (("--bytes", "16"), 16), (("--bytes", "24"), 24)])
def test_keygen_prints_one_base64_key_of_the_size(args: tuple[str, ...], size: int) -> None:
    key = _keygen(*args)
    assert len(base64.b64decode(key, validate=True)) == size
    assert key != _keygen(*args)


def test_keygen_refuses_other_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["cluster", "keygen", "--bytes", "20"])
    assert exited.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="16, 24 or 32"):
        new_key(20)


def test_cluster_without_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster"]) == 2
    assert "keygen" in capsys.readouterr().err


def test_printed_key_passes_config_check_as_key_and_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = _keygen()
    inline = tmp_path / "inline.toml"
    inline.write_text(f'[cluster]\nmode = true\nkey = "{key}"\n')
    keys = tmp_path / "gossip.keys"
    keys.write_text(_keygen() + "\n" + key + "\n")
    from_file = tmp_path / "file.toml"
    from_file.write_text(f'[cluster]\nmode = true\nkey_file = "{keys}"\n')
    assert main(["config", "check", str(inline)]) == 0
    assert main(["config", "check", str(from_file)]) == 0
    assert load_config(from_file).cluster.gossip_keys()[1] == base64.b64decode(key)


@pytest.fixture
async def brokers() -> AsyncIterator[list[Broker]]:
    started: list[Broker] = []
    yield started
    for broker in reversed(started):
        await broker.stop()


async def test_two_nodes_form_an_encrypted_cluster_with_the_printed_key(brokers: list[Broker]) -> None:
    key = _keygen()
    port_a = free_port()
    for name, port, members in (("node-a", port_a, []), ("node-b", free_port(), [f"127.0.0.1:{port_a}"])):
        table = {"mode": True, "port": port, "bind": "127.0.0.1", "advertise": "127.0.0.1", "node_name": name,
                 "profile": "local", "members": members, "key": key}
        config = Config.from_mapping({"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
                                      "cluster": table, "disabled_plugins": ["dashboard"]}, source="<keygen test>")
        broker = Broker(config)
        await broker.start()
        brokers.append(broker)
    cluster_a, cluster_b = cluster_of(brokers[0]), cluster_of(brokers[1])
    assert cluster_a is not None and cluster_b is not None
    assert "encrypted (1 key)" in (gossip.plugin_status(brokers[0], None) or "")
    assert await eventually(lambda: {m.name for m in cluster_a.members()} == {"node-a", "node-b"}, 10)
