"""The async hook facade: order, sync/async mixing, combination rules, error isolation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pluggy
import pytest
from pydantic import BaseModel

from hookmq import RejectPublish, hookimpl
from hookmq.hooks import HookFacade, PluginError
from hookmq.pluginmanager import HookmqPluginManager


@pytest.fixture
def pm() -> HookmqPluginManager:
    return HookmqPluginManager()


@pytest.fixture
def facade(pm: HookmqPluginManager) -> HookFacade:
    return HookFacade(pm)


def plugin(**functions: Any) -> object:
    """A plugin object whose attributes are the given hook implementations."""
    namespace = type("Plugin", (), {})()
    for name, function in functions.items():
        setattr(namespace, name, hookimpl(function) if not hasattr(function, "hookmq_impl") else function)
    return namespace


# ------------------------------------------------------------------ order


async def test_calls_last_registered_first(pm: HookmqPluginManager, facade: HookFacade) -> None:
    calls: list[str] = []
    pm.register(plugin(on_started=lambda broker: calls.append("a")), "a")
    pm.register(plugin(on_started=lambda broker: calls.append("b")), "b")
    await facade.notify("on_started", broker=None)
    assert calls == ["b", "a"]
    assert facade.implementations("on_started") == ["b", "a"]


async def test_tryfirst_and_trylast_are_respected(pm: HookmqPluginManager, facade: HookFacade) -> None:
    calls: list[str] = []
    pm.register(plugin(on_started=hookimpl(tryfirst=True)(lambda broker: calls.append("first"))), "first")
    pm.register(plugin(on_started=hookimpl(trylast=True)(lambda broker: calls.append("last"))), "last")
    pm.register(plugin(on_started=lambda broker: calls.append("plain")), "plain")
    await facade.notify("on_started", broker=None)
    assert calls == ["first", "plain", "last"]


async def test_order_matches_pluggy_own_call_order(pm: HookmqPluginManager, facade: HookFacade) -> None:
    pluggy_order: list[str] = []
    facade_order: list[str] = []
    sink = [pluggy_order]
    for name, opts in [("p1", {}), ("p2", {"trylast": True}), ("p3", {}), ("p4", {"tryfirst": True}), ("p5", {})]:
        pm.register(plugin(on_stopped=hookimpl(**opts)(lambda broker, name=name: sink[0].append(name))), name)
    pm.hook.on_stopped(broker=None)
    sink[0] = facade_order
    await facade.notify("on_stopped", broker=None)
    assert facade_order == pluggy_order == ["p4", "p5", "p3", "p1", "p2"]


async def test_each_await_finishes_before_next_impl(pm: HookmqPluginManager, facade: HookFacade) -> None:
    events: list[str] = []

    async def slow(broker: Any) -> None:
        events.append("slow start")
        await asyncio.sleep(0.01)
        events.append("slow end")

    pm.register(plugin(on_started=lambda broker: events.append("sync")), "sync")
    pm.register(plugin(on_started=slow), "slow")
    await facade.notify("on_started", broker=None)
    assert events == ["slow start", "slow end", "sync"]


async def test_opt_in_arguments(pm: HookmqPluginManager, facade: HookFacade) -> None:
    seen: list[Any] = []
    pm.register(plugin(on_disconnect=lambda reason_code: seen.append(reason_code)), "p")
    await facade.notify("on_disconnect", client=object(), reason_code=0x8E, error=None)
    assert seen == [0x8E]


async def test_missing_argument_is_reported_not_hidden(pm: HookmqPluginManager, facade: HookFacade) -> None:
    pm.register(plugin(on_publish=lambda client, packet: None), "p")
    with pytest.raises(TypeError, match="without argument 'packet'"):
        await facade.transform("on_publish", "packet", client=None)


# ------------------------------------------------------------------ enabled / zero impls


async def test_zero_implementations_are_skipped(facade: HookFacade) -> None:
    assert not facade.enabled("on_publish")
    packet = object()
    assert await facade.transform("on_publish", "packet", client=None, packet=packet) is packet
    assert await facade.decide("on_acl_check", client=None, topic="t", write=True) is True
    assert await facade.first("on_auth_packet", client=None, packet=None) is None
    await facade.notify("on_published", client=None, packet=packet)


async def test_enabled_follows_register_and_unregister(pm: HookmqPluginManager, facade: HookFacade) -> None:
    p = plugin(on_published=lambda packet: None)
    pm.register(p, "p")
    assert facade.enabled("on_published")
    assert not facade.enabled("on_publish")
    pm.unregister(p)
    assert not facade.enabled("on_published")


async def test_plain_pluggy_manager_needs_refresh(caplog: pytest.LogCaptureFixture) -> None:
    from hookmq import hookspecs

    pm = pluggy.PluginManager("hookmq")
    pm.add_hookspecs(hookspecs)
    facade = HookFacade(pm)
    pm.register(plugin(on_started=lambda broker: None), "p")
    assert not facade.enabled("on_started")
    facade.refresh()
    assert facade.enabled("on_started")


# ------------------------------------------------------------------ notify


async def test_notify_isolates_errors_and_names_plugin(
    pm: HookmqPluginManager, facade: HookFacade, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def broken(broker: Any) -> None:
        raise RuntimeError("boom")

    pm.register(plugin(on_started=lambda broker: calls.append("first-registered")), "good")
    pm.register(plugin(on_started=broken), "broken")
    with caplog.at_level(logging.ERROR, logger="hookmq.hooks"):
        await facade.notify("on_started", broker=None)
    assert calls == ["first-registered"]
    assert "plugin 'broken' failed in on_started" in caplog.text
    assert "boom" in caplog.text


def test_notify_sync_rejects_async_impls(
    pm: HookmqPluginManager, facade: HookFacade, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def async_commands(subparsers: Any) -> None:
        calls.append("never")

    pm.register(plugin(register_commands=async_commands), "async")
    pm.register(plugin(register_commands=lambda subparsers: calls.append(subparsers)), "sync")
    with caplog.at_level(logging.ERROR, logger="hookmq.hooks"):
        facade.notify_sync("register_commands", subparsers="parsers")
    assert calls == ["parsers"]
    assert "register_commands must not be async" in caplog.text


# ------------------------------------------------------------------ transform


async def test_transform_chains_sync_and_async(pm: HookmqPluginManager, facade: HookFacade) -> None:
    async def add_b(packet: str) -> str:
        await asyncio.sleep(0)
        return packet + "b"

    pm.register(plugin(on_publish=lambda packet: packet + "c"), "c")
    pm.register(plugin(on_publish=lambda packet: None), "keep")
    pm.register(plugin(on_publish=add_b), "b")
    assert await facade.transform("on_publish", "packet", client=None, packet="a") == "abc"


async def test_transform_skips_failing_impl(
    pm: HookmqPluginManager, facade: HookFacade, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(will: str) -> str:
        raise ValueError("bad will")

    pm.register(plugin(on_will=lambda will: will + "!"), "exclaim")
    pm.register(plugin(on_will=broken), "broken")
    with caplog.at_level(logging.ERROR, logger="hookmq.hooks"):
        assert await facade.transform("on_will", "will", client=None, will="bye") == "bye!"
    assert "plugin 'broken' failed in on_will" in caplog.text


async def test_reject_publish_propagates_and_stops_chain(pm: HookmqPluginManager, facade: HookFacade) -> None:
    calls: list[str] = []

    async def reject(packet: Any) -> None:
        raise RejectPublish(0x97, "quota exceeded")

    pm.register(plugin(on_publish=lambda packet: calls.append("after")), "after")
    pm.register(plugin(on_publish=reject), "reject")
    with pytest.raises(RejectPublish) as raised:
        await facade.transform("on_publish", "packet", client=None, packet="p")
    assert raised.value.reason_code == 0x97
    assert calls == []


# ------------------------------------------------------------------ decide


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ((), True),
        ((None,), False),
        ((None, None), False),
        ((True,), True),
        ((None, True), True),
        ((True, False), False),
        ((False, True), False),
        ((True, None, True), True),
    ],
)
async def test_decide_tri_state(pm: HookmqPluginManager, facade: HookFacade, votes: tuple[Any, ...], expected: bool) -> None:
    for index, vote in enumerate(votes):
        pm.register(plugin(on_acl_check=lambda topic, vote=vote: vote), f"p{index}")
    assert await facade.decide("on_acl_check", client=None, topic="t", write=True) is expected


async def test_firstresult_trap_abstaining_async_impl_does_not_hide_deny(
    pm: HookmqPluginManager, facade: HookFacade
) -> None:
    async def abstain(client: Any, connect: Any) -> None:
        return None

    async def deny(client: Any, connect: Any) -> bool:
        return False

    pm.register(plugin(on_connect_authenticate=deny), "deny")
    pm.register(plugin(on_connect_authenticate=abstain), "abstain")  # registered last: runs first
    # pluggy alone would stop at the first coroutine object (not None) and never run "deny".
    assert await facade.decide("on_connect_authenticate", client=None, connect=None) is False


async def test_decide_stops_at_deny(pm: HookmqPluginManager, facade: HookFacade) -> None:
    calls: list[str] = []
    pm.register(plugin(on_acl_check=lambda topic: calls.append("later") or True), "later")
    pm.register(plugin(on_acl_check=lambda topic: False), "deny")
    assert await facade.decide("on_acl_check", client=None, topic="t", write=False) is False
    assert calls == []


async def test_decide_error_denies(pm: HookmqPluginManager, facade: HookFacade, caplog: pytest.LogCaptureFixture) -> None:
    def broken(client: Any, connect: Any) -> bool:
        raise ConnectionError("auth backend down")

    pm.register(plugin(on_connect_authenticate=lambda client, connect: True), "allow")
    pm.register(plugin(on_connect_authenticate=broken), "broken")
    with caplog.at_level(logging.ERROR, logger="hookmq.hooks"):
        assert await facade.decide("on_connect_authenticate", client=None, connect=None) is False
    assert "plugin 'broken' failed in on_connect_authenticate; denying" in caplog.text


# ------------------------------------------------------------------ first


async def test_first_awaits_each_and_stops_at_first_answer(pm: HookmqPluginManager, facade: HookFacade) -> None:
    calls: list[str] = []

    async def none(packet: Any) -> None:
        calls.append("none")

    async def answer(packet: Any) -> str:
        calls.append("answer")
        return "reply"

    async def never(packet: Any) -> str:
        calls.append("never")
        return "other"

    pm.register(plugin(on_auth_packet=never), "never")
    pm.register(plugin(on_auth_packet=answer), "answer")
    pm.register(plugin(on_auth_packet=none), "none")
    assert await facade.first("on_auth_packet", client=None, packet=None) == "reply"
    assert calls == ["none", "answer"]


# ------------------------------------------------------------------ per-plugin


class Greeting(BaseModel):
    text: str


async def test_per_plugin_passes_each_plugin_its_settings(pm: HookmqPluginManager, facade: HookFacade) -> None:
    seen: dict[str, Any] = {}
    for name, text in [("one", "hello"), ("two", "bye")]:
        start = plugin(
            plugin_settings_model=lambda: Greeting,
            plugin_start=lambda broker, settings, name=name: seen.__setitem__(name, settings),
        )
        pm.register(start, name)
        pm.validate_settings(name, {"text": text}, "<test>")
    results = await facade.per_plugin("plugin_start", broker=None)
    assert seen == {"one": Greeting(text="hello"), "two": Greeting(text="bye")}
    assert set(results) == {"one", "two"}


async def test_per_plugin_error_names_the_plugin(pm: HookmqPluginManager, facade: HookFacade) -> None:
    async def broken(broker: Any, settings: Any) -> None:
        raise OSError("port in use")

    pm.register(plugin(plugin_start=broken), "broken")
    with pytest.raises(PluginError, match="plugin 'broken' failed in plugin_start"):
        await facade.per_plugin("plugin_start", broker=None)


def test_wrappers_are_refused(pm: HookmqPluginManager) -> None:
    def wrapper(broker: Any) -> Any:
        return (yield)

    with pytest.raises(pluggy.PluginValidationError, match="hook wrapper"):
        pm.register(plugin(on_started=hookimpl(wrapper=True)(wrapper)), "w")
    assert pm.get_plugin("w") is None
