"""hookmq-example-plugin: greets clients, counts messages, and refuses one topic prefix.

Configured by ``[plugins.example]``; see :class:`ExampleSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hookmq import RejectPublish, hookimpl

__version__ = "0.1.0"

NOT_AUTHORIZED = 0x87


class ExampleSettings(BaseModel):
    """The ``[plugins.example]`` table."""

    model_config = ConfigDict(extra="forbid")

    greeting: str = Field(default="hello", description="Word written with each connecting client's id.")
    refuse_prefix: str | None = Field(default=None, description="Refuse PUBLISH to topics starting with this.")
    record_file: Path | None = Field(default=None, description="Append one line per event to this file.")


class _State:
    """What the plugin keeps for one broker between plugin_start and plugin_stop."""

    def __init__(self, settings: ExampleSettings) -> None:
        self.settings = settings
        self.published = 0

    def record(self, line: str) -> None:
        # Appending a line is cheap enough for an example; a real plugin would batch it.
        if self.settings.record_file is not None:
            with self.settings.record_file.open("a", encoding="utf-8") as file:
                file.write(line + "\n")


# An entry point is imported once per process, so module state is shared by every broker
# of the process. The example keeps the state of the broker started last, which is right for
# `hookmq serve` (one broker per process).
_active: list[_State] = []


def _state() -> _State:
    return _active[-1] if _active else _State(ExampleSettings())


@hookimpl
def plugin_settings_model() -> type[BaseModel]:
    """``[plugins.example]`` is validated by :class:`ExampleSettings`."""
    return ExampleSettings


@hookimpl
def plugin_start(broker: Any, settings: ExampleSettings) -> None:
    """Create this broker's state."""
    state = _State(settings)
    _active.append(state)
    state.record("start")


@hookimpl
def plugin_stop(broker: Any) -> None:
    """Drop this broker's state."""
    if _active:
        state = _active.pop()
        state.record(f"stop published={state.published}")


@hookimpl
def on_connect(client: Any, connect: Any) -> None:
    """Greet every client that sends a valid CONNECT."""
    state = _state()
    state.record(f"{state.settings.greeting} {connect.client_id}")


@hookimpl
async def on_publish(packet: Any) -> None:
    """Refuse messages under ``refuse_prefix`` (an async hook, to show that it works)."""
    prefix = _state().settings.refuse_prefix
    if prefix is not None and packet.topic.startswith(prefix):
        raise RejectPublish(NOT_AUTHORIZED, f"topics under {prefix!r} are refused")


@hookimpl
def on_published(packet: Any) -> None:
    """Count routed messages (per-message path: no I/O unless recording is on)."""
    state = _state()
    state.published += 1
    if state.settings.record_file is not None:
        state.record(f"published {packet.topic}")
