"""The hook specifications match the catalogue of docs/architecture.md, and are documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from hookmq import hookimpl, hookspecs
from hookmq.config import Config
from hookmq.hooks import HookFacade
from hookmq.pluginmanager import HookmqPluginManager, build_plugin_manager

ARCHITECTURE = Path(__file__).parents[1] / "docs" / "architecture.md"


def catalogue() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Hook name -> (kind, argument names), read from the table in docs/architecture.md."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("### Hook catalogue"):]
    table = re.split(r"\n#{2,3} ", table[4:], maxsplit=1)[0]
    hooks: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.replace("\\|", "¦").strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        signature = re.match(r"`\(([^)]*)\)", cells[2])
        assert signature, line
        plain = re.sub(r"\[[^\[\]]*\]", "", re.sub(r"\[[^\[\]]*\]", "", signature.group(1)))  # drop type subscripts
        args = tuple(arg.split(":")[0].strip() for arg in plain.split(",") if arg.strip())
        for name in re.findall(r"`(\w+)`", cells[0]):
            hooks[name] = (cells[1], args)
    return hooks


def specs() -> dict[str, Any]:
    return {
        name: function
        for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, "hookmq_spec")
    }


def test_every_catalogue_hook_is_specified_with_its_arguments() -> None:
    expected = catalogue()
    assert len(expected) >= 33
    declared = {name: tuple(inspect.signature(fn).parameters) for name, fn in specs().items()}
    assert declared == {name: args for name, (_, args) in expected.items()}


def test_every_public_function_is_a_decorated_spec() -> None:
    functions = {
        name for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and value.__module__ == hookspecs.__name__ and not name.startswith("_")
    }
    assert functions == set(specs())


@pytest.mark.parametrize("name", sorted(catalogue()))
def test_docstring_states_kind_and_per_message_path(name: str) -> None:
    raw = inspect.getdoc(specs()[name]) or ""
    doc = " ".join(raw.split())
    kind = catalogue()[name][0]
    assert f"Kind: {kind.split()[0].split('(')[0]}" in doc, name
    if kind.endswith("msg"):
        assert "On the per-message path (msg)" in doc, name
    else:
        # on_acl_check runs for every publish and delivery, so it says "msg" though the table does not.
        assert "Not on the per-message path" in doc or "On the per-message path (msg)" in doc, name
    assert len(raw.splitlines()) >= 3, f"{name}: say when it fires and what its return value does"


def test_markers_share_the_project_name() -> None:
    assert hookspecs.hookspec.project_name == hookspecs.hookimpl.project_name == "hookmq"
    from hookmq import hookimpl as exported

    assert exported is hookspecs.hookimpl


# ------------------------------------------------------------------ hooks this part fires


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = "default"


class StoreProvider:
    @hookimpl
    def plugin_settings_model(self) -> type[BaseModel]:
        return StoreSettings

    @hookimpl
    async def register_stores(self, register: Any, settings: StoreSettings) -> None:
        register(f"box-{settings.label}", lambda config: {"config": config})


async def test_hook_register_stores() -> None:
    """register_stores: each provider gets its own settings and a register callback."""
    config = Config.from_mapping({"plugins": {"box": {"label": "blue"}}, "disabled_plugins": ["dashboard"]})
    pm = build_plugin_manager(config, extra_plugins={"box": StoreProvider()})
    registered: dict[str, Any] = {}
    await HookFacade(pm).per_plugin("register_stores", register=registered.__setitem__)
    assert "box-blue" in registered
    assert registered["box-blue"](config) == {"config": config}
    if pm.get_plugin("memory_store") is not None:
        assert "memory" in registered  # the built-in provider took part too


class Lifespan:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    @hookimpl
    def plugin_settings_model(self) -> type[BaseModel]:
        return StoreSettings

    @hookimpl
    async def plugin_start(self, broker: Any, settings: StoreSettings) -> None:
        self.events.append(("start", broker, settings))

    @hookimpl
    def plugin_stop(self, broker: Any) -> None:
        self.events.append(("stop", broker, None))


async def _run_broker(broker_config: Config, plugin: Lifespan) -> Any:
    from hookmq.engine.broker import Broker

    broker_config.plugins["lifespan"] = {"label": "x"}
    broker = Broker(broker_config, extra_plugins={"lifespan": plugin})
    await broker.start()
    await broker.stop()
    return broker


async def test_hook_plugin_start(broker_config: Config) -> None:
    """plugin_start: fired once at start with the broker and the plugin's own settings."""
    pytest.importorskip("hookmq.engine.broker")
    plugin = Lifespan()
    broker = await _run_broker(broker_config, plugin)
    assert plugin.events[0] == ("start", broker, StoreSettings(label="x"))


async def test_hook_plugin_stop(broker_config: Config) -> None:
    """plugin_stop: fired once at stop, after plugin_start."""
    pytest.importorskip("hookmq.engine.broker")
    plugin = Lifespan()
    broker = await _run_broker(broker_config, plugin)
    assert [event[0] for event in plugin.events] == ["start", "stop"]
    assert plugin.events[1][1] is broker


def test_plugin_manager_knows_every_spec() -> None:
    pm = HookmqPluginManager()
    assert set(specs()) <= {name for name in vars(pm.hook) if not name.startswith("_")}
