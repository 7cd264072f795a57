"""Loading, validating and rendering the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookmq.config import (
    Config,
    ConfigError,
    config_reference,
    config_to_toml,
    dotted_key,
    environment_overrides,
    load_config,
    with_listener_address,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hookmq.toml"
    path.write_text(text)
    return path


def test_defaults_are_a_useful_broker() -> None:
    config = load_config(None, environ={})
    assert [(lst.type, lst.address) for lst in config.listeners] == [("tcp", ":1883"), ("ws", ":1882")]
    assert config.storage.backend == "memory"
    assert config.cluster.mode is False
    assert config.cluster.port == 7946
    assert config.log.level == "INFO"
    assert config.source == "<defaults>"


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
disabled_plugins = ["dashboard"]

[mqtt]
max_inflight = 10

[[listeners]]
name = "main"
type = "tcp"
address = "127.0.0.1:1999"

[storage]
backend = "sqlite"

[cluster]
mode = true
members = ["10.0.0.2:7946"]

[log]
level = "debug"

[plugins.auth]
allow_anonymous = false
""",
    )
    config = load_config(path, environ={})
    assert config.mqtt.max_inflight == 10
    assert [lst.name for lst in config.listeners] == ["main"]
    assert config.storage.backend == "sqlite"
    assert config.cluster.members == ["10.0.0.2:7946"]
    assert config.log.level == "DEBUG"
    assert config.plugins == {"auth": {"allow_anonymous": False}}
    assert config.disabled_plugins == ["dashboard"]
    assert config.source == str(path)


def test_unknown_key_names_file_and_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nmax_inflite = 5\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert str(raised.value) == f"{path}: mqtt.max_inflite: unknown key"


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqqt]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"hookmq.toml: mqqt: unknown key"):
        load_config(path, environ={})


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[listeners]]\nname = "a"\ntype = "tcp"\naddress = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"hookmq.toml: listeners\[0\].address: .*needs a port"):
        load_config(path, environ={})


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"absent.toml: configuration file not found"):
        load_config(path, environ={})


def test_bad_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt\n")
    with pytest.raises(ConfigError, match=r"hookmq.toml: invalid TOML: .*line 1"):
        load_config(path, environ={})


def test_duplicate_listener_names(tmp_path: Path) -> None:
    listener = '[[listeners]]\nname = "a"\ntype = "tcp"\naddress = ":1"\n'
    with pytest.raises(ConfigError, match="listener names must be unique; repeated: a"):
        load_config(write(tmp_path, listener * 2), environ={})


def test_cluster_link_idle_timeout_must_outlast_the_ping_interval() -> None:
    with pytest.raises(ConfigError, match=r"link_idle_timeout \(2 s\) must be longer than link_ping_interval \(2 s\)"):
        Config.from_mapping({"cluster": {"link_idle_timeout": 2, "link_ping_interval": 2}})
    with pytest.raises(ConfigError, match=r"cluster.link_queue_frames"):
        Config.from_mapping({"cluster": {"link_queue_frames": 0}})


def test_cluster_member_needs_host() -> None:
    with pytest.raises(ConfigError, match=r"cluster.members: .*needs a host"):
        Config.from_mapping({"cluster": {"members": [":7946"]}})


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_mapping({"mqtt": {"a": 1, "max_inflight": "x"}}, source="f.toml")
    lines = str(raised.value).splitlines()
    assert "f.toml: mqtt.a: unknown key" in lines
    assert any(line.startswith("f.toml: mqtt.max_inflight: ") for line in lines)


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nmax_inflight = 10\n")
    environ = {
        "HOOKMQ_MQTT__MAX_INFLIGHT": "20",
        "HOOKMQ_PLUGINS__REDIS_STORE__URL": "redis://10.0.0.5:6379",
        "HOOKMQ_CONFIG": "ignored.toml",
        "OTHER__KEY": "1",
    }
    config = load_config(path, environ=environ)
    assert config.mqtt.max_inflight == 20
    assert config.plugins == {"redis_store": {"url": "redis://10.0.0.5:6379"}}


def test_environment_values_are_toml_literals() -> None:
    found = environment_overrides({"HOOKMQ_CLUSTER__MODE": "true", "HOOKMQ_CLUSTER__MEMBERS": '["a:1", "b:2"]'})
    assert found == {"cluster.mode": True, "cluster.members": ["a:1", "b:2"]}


def test_overrides_beat_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[cluster]\nport = 1\n")
    config = load_config(path, {"cluster.port": 3}, environ={"HOOKMQ_CLUSTER__PORT": "2"})
    assert config.cluster.port == 3


def test_with_listener_address_replaces_or_adds() -> None:
    config = Config.from_mapping({"listeners": [{"name": "only", "type": "tcp", "address": ":1883"}]}, "f.toml")
    changed = with_listener_address(config, "tcp", ":1885", "--tcp")
    assert [(lst.name, lst.address) for lst in changed.listeners] == [("only", ":1885")]
    added = with_listener_address(changed, "ws", ":1886", "--ws")
    assert [(lst.name, lst.type, lst.address) for lst in added.listeners][1] == ("ws", "ws", ":1886")
    assert added.source == "f.toml"
    assert config.listeners[0].address == ":1883"  # the original is unchanged


def test_with_listener_address_error_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--tcp: address: .*needs a port"):
        with_listener_address(Config(), "tcp", "1885", "--tcp")


def test_toml_round_trip(tmp_path: Path) -> None:
    config = Config.from_mapping(
        {"plugins": {"auth": {"allow_anonymous": True}}, "cluster": {"members": ["h:1"]}, "log": {"level": "warning"}}
    )
    path = write(tmp_path, config_to_toml(config))
    again = load_config(path, environ={})
    assert again.model_dump() == config.model_dump()


def test_dotted_key() -> None:
    assert dotted_key(("listeners", 0, "address")) == "listeners[0].address"
    assert dotted_key(("plugins", "auth", "users", "bob")) == "plugins.auth.users.bob"
    assert dotted_key(()) == "(top level)"


def test_reference_lists_every_core_key() -> None:
    reference = config_reference()
    for section in ("mqtt", "storage", "cluster", "log"):
        model = type(getattr(Config(), section))
        for key in model.model_fields:
            assert f"| `{key}` |" in reference, f"{section}.{key}"
    assert "### `[[listeners]]`" in reference
    assert '| `queue_drop_policy` | `"drop_oldest"` \\| `"drop_newest"` | `"drop_oldest"` |' in reference
