"""Discovery, the enabling rule, settings validation and the plugin listing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from hookmq import hookimpl
from hookmq.config import Config, ConfigError
from hookmq.pluginmanager import PluginLoadError, build_plugin_manager, describe_plugins, installed_plugins

BUILTINS = {"auth", "dashboard", "memory_store", "redis_store", "sqlite_store"}


class GreeterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str = "hello"
    times: int = 1


class Greeter:
    """An embedded plugin with a settings model."""

    @hookimpl
    def plugin_settings_model(self) -> type[BaseModel]:
        return GreeterSettings

    @hookimpl
    def on_started(self, broker: Any) -> None:
        pass


class Silent:
    """An embedded plugin without settings."""

    @hookimpl
    def on_stopped(self, broker: Any) -> None:
        pass


def config(**data: Any) -> Config:
    return Config.from_mapping(data, source="test.toml")


@pytest.fixture
def broken_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real (unpacked) distribution whose hookmq plugin fails to import."""
    info = tmp_path / "hookmq_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hookmq-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hookmq]\nbroken = hookmq_broken_plugin\n")
    (tmp_path / "hookmq_broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "broken"


def test_builtins_are_discovered_through_entry_points() -> None:
    infos = {info.name: info for info in describe_plugins(Config())}
    assert set(infos) >= BUILTINS
    assert {infos[name].distribution for name in BUILTINS} == {"hookmq"}
    assert infos["memory_store"].version == "0.1.0"
    assert "register_stores" in infos["memory_store"].hooks


def test_default_enabled_and_opt_in_plugins() -> None:
    infos = {info.name: info for info in describe_plugins(Config())}
    assert infos["memory_store"].enabled
    assert infos["memory_store"].reason == "enabled by default"
    assert not infos["auth"].enabled
    assert infos["auth"].reason == "not enabled (add a [plugins.auth] table)"


def test_table_enables_a_plugin() -> None:
    pm = build_plugin_manager(config(plugins={"auth": {}}, disabled_plugins=["dashboard"]))
    assert pm.get_plugin("auth") is not None
    assert pm.infos["auth"].reason == "enabled by [plugins.auth]"


def test_enabled_false_disables_a_default_plugin() -> None:
    pm = build_plugin_manager(config(plugins={"memory_store": {"enabled": False}}, disabled_plugins=["dashboard"]))
    assert pm.get_plugin("memory_store") is None
    assert pm.infos["memory_store"].reason == "disabled by [plugins.memory_store] enabled = false"


def test_disabled_plugins_wins_over_a_table() -> None:
    pm = build_plugin_manager(config(plugins={"auth": {}}, disabled_plugins=["auth", "dashboard"]))
    assert pm.get_plugin("auth") is None
    assert not pm.infos["auth"].enabled


def test_enabled_must_be_boolean() -> None:
    with pytest.raises(ConfigError, match=r"test.toml: plugins.auth.enabled: must be true or false"):
        build_plugin_manager(config(plugins={"auth": {"enabled": "yes"}}))


def test_unknown_plugin_table_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"test.toml: plugins.nosuch: unknown plugin"):
        build_plugin_manager(config(plugins={"nosuch": {}}))


def test_extra_plugins_are_registered_and_validated() -> None:
    cfg = config(plugins={"greeter": {"greeting": "hi", "times": 3}})
    pm = build_plugin_manager(cfg, extra_plugins={"greeter": Greeter(), "silent": Silent()}, autoload=False)
    assert pm.plugin_settings("greeter") == GreeterSettings(greeting="hi", times=3)
    assert pm.plugin_settings("silent") is None
    assert [p for p in pm.get_plugins()]  # both registered
    assert set(pm.infos) == {"greeter", "silent"}


def test_extra_plugin_gets_default_settings_without_table() -> None:
    pm = build_plugin_manager(Config(), extra_plugins={"greeter": Greeter()}, autoload=False)
    assert pm.plugin_settings("greeter") == GreeterSettings()


def test_bad_plugin_key_names_file_and_dotted_key() -> None:
    cfg = config(plugins={"greeter": {"greting": "hi"}})
    with pytest.raises(ConfigError) as raised:
        build_plugin_manager(cfg, extra_plugins={"greeter": Greeter()}, autoload=False)
    assert str(raised.value) == "test.toml: plugins.greeter.greting: unknown key"


def test_wrong_type_names_the_key() -> None:
    cfg = config(plugins={"greeter": {"times": "many"}})
    with pytest.raises(ConfigError, match=r"test.toml: plugins.greeter.times: .*integer"):
        build_plugin_manager(cfg, extra_plugins={"greeter": Greeter()}, autoload=False)


def test_plugin_without_model_refuses_keys() -> None:
    cfg = config(plugins={"silent": {"volume": 3}})
    with pytest.raises(ConfigError, match=r"plugins.silent.volume: unknown key \(plugin 'silent' takes no settings\)"):
        build_plugin_manager(cfg, extra_plugins={"silent": Silent()}, autoload=False)


def test_extra_plugin_replaces_entry_point_of_same_name() -> None:
    replacement = Silent()
    pm = build_plugin_manager(Config(), extra_plugins={"memory_store": replacement})
    assert pm.get_plugin("memory_store") is replacement


def test_disabled_plugin_is_not_imported(broken_distribution: str) -> None:
    pm = build_plugin_manager(config(disabled_plugins=[broken_distribution, "dashboard"]))
    assert pm.infos[broken_distribution].error is None
    assert pm.infos[broken_distribution].reason.startswith("disabled")


def test_import_error_of_unrequested_plugin_is_reported_not_fatal(
    broken_distribution: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hookmq.plugins"):
        pm = build_plugin_manager(config(disabled_plugins=["dashboard"]))
    assert pm.get_plugin("memory_store") is not None
    assert pm.infos[broken_distribution].error == "ImportError: needs libfoo"
    assert "plugin 'broken' cannot be imported and is skipped" in caplog.text
    listed = {info.name: info for info in describe_plugins(Config())}
    assert listed[broken_distribution].error == "ImportError: needs libfoo"
    assert listed[broken_distribution].version == "1.0"


def test_import_error_of_configured_plugin_is_fatal(broken_distribution: str) -> None:
    with pytest.raises(PluginLoadError, match=r"test.toml: plugins.broken: plugin cannot be imported: ImportError"):
        build_plugin_manager(config(plugins={"broken": {}}))


def test_installed_plugins_reports_errors_separately(broken_distribution: str) -> None:
    plugins, errors = installed_plugins()
    assert set(plugins) | set(errors) >= BUILTINS
    assert errors[broken_distribution] == "ImportError: needs libfoo"
    builtin_plugins, _ = installed_plugins(distribution="hookmq")
    assert broken_distribution not in builtin_plugins


def test_each_manager_is_independent() -> None:
    first = build_plugin_manager(Config(), extra_plugins={"greeter": Greeter()}, autoload=False)
    second = build_plugin_manager(Config(), autoload=False)
    assert first.get_plugin("greeter") is not None
    assert second.get_plugin("greeter") is None


def test_cluster_mode_without_gossip_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hookmq.plugins"):
        build_plugin_manager(config(cluster={"mode": True}), autoload=False)
    assert "no gossip plugin is installed" in caplog.text


def test_settings_model_must_be_pydantic() -> None:
    class Wrong:
        @hookimpl
        def plugin_settings_model(self) -> Any:
            return dict

    with pytest.raises(PluginLoadError, match="must return a pydantic model"):
        build_plugin_manager(Config(), extra_plugins={"wrong": Wrong()}, autoload=False)


def test_unknown_hook_name_is_refused() -> None:
    class Typo:
        @hookimpl
        def on_conect(self, client: Any) -> None:
            pass

    with pytest.raises(PluginLoadError, match="on_conect"):
        build_plugin_manager(Config(), extra_plugins={"typo": Typo()}, autoload=False)


def test_hook_plugin_settings_model() -> None:
    """plugin_settings_model: each plugin's table is validated by its own model only."""
    cfg = config(plugins={"greeter": {"times": 2}, "silent": {}})
    pm = build_plugin_manager(cfg, extra_plugins={"greeter": Greeter(), "silent": Silent()}, autoload=False)
    assert pm.plugin_settings("greeter") == GreeterSettings(times=2)
    assert pm.plugin_settings("silent") is None

