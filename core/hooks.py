"""The async hook facade: the only place where the broker calls plugin hooks.

pluggy is synchronous: ``pm.hook.x()`` returns unawaited coroutine objects for ``async def``
implementations, and a ``firstresult`` hook stops at the first coroutine object (which is not
``None``), so a deny that comes after an abstaining async implementation would never run.
:class:`HookFacade` therefore walks the implementations itself, in pluggy's documented order
(last registered first, ``tryfirst``/``trylast`` respected), calls one at a time and awaits
each awaitable result before the next implementation runs. It never creates a coroutine it
does not await.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pluggy

__all__ = ["HookFacade", "PluginError", "RejectPublish"]

logger = logging.getLogger("hookmq.hooks")


class RejectPublish(Exception):
    """Raised by an ``on_publish`` implementation to refuse a message.

    ``reason_code`` is what a v5 QoS 1/2 publisher receives in PUBACK/PUBREC (e.g. 0x87 Not
    authorized, 0x97 Quota exceeded, 0x99 Payload format invalid); the message is neither
    retained nor routed. It propagates out of :meth:`HookFacade.transform`.
    """

    def __init__(self, reason_code: int = 0x83, reason: str | None = None) -> None:
        super().__init__(reason or f"publish rejected (reason code 0x{reason_code:02X})")
        self.reason_code = reason_code
        self.reason = reason


class PluginError(Exception):
    """A plugin failed where failure cannot be isolated (a per-plugin hook such as plugin_start)."""

    def __init__(self, plugin_name: str, hook_name: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin_name!r} failed in {hook_name}: {error!r}")
        self.plugin_name = plugin_name
        self.hook_name = hook_name


class SettingsSource(Protocol):
    """What the per-plugin call needs from the plugin manager: each plugin's settings."""

    def plugin_settings(self, plugin_name: str) -> Any:
        """Return the validated settings of the named plugin (None when it has none)."""


@dataclass(frozen=True, slots=True)
class _Impl:
    """One implementation, prepared once so a call does no pluggy bookkeeping."""

    plugin_name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]


def _prepare(caller: pluggy.HookCaller) -> tuple[_Impl, ...]:
    """The implementations of one hook in call order (pluggy calls the list back to front)."""
    return tuple(
        _Impl(impl.plugin_name, impl.function, tuple(impl.argnames))
        for impl in reversed(caller.get_hookimpls())
        if not (impl.wrapper or impl.hookwrapper)
    )


def _arguments(hook: str, impl: _Impl, kwargs: Mapping[str, Any]) -> list[Any]:
    """The positional arguments of one implementation, which may take fewer than the spec declares."""
    try:
        return [kwargs[name] for name in impl.argnames]
    except KeyError as missing:
        raise TypeError(f"hook {hook} was called without argument {missing} (needed by {impl.plugin_name})") from None


async def _call(impl: _Impl, args: list[Any]) -> Any:
    """Call one implementation and await its result when it is awaitable."""
    result = impl.function(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class HookFacade:
    """Calls one broker's plugin hooks with explicit rules for combining their results.

    ``enabled(name)`` is a set lookup, recomputed whenever a plugin is registered or
    unregistered through a :class:`hookmq.pluginmanager.HookmqPluginManager` (or when
    :meth:`refresh` is called after changing a plain ``pluggy.PluginManager``).

    Plugin failures are isolated as each method says; a call that lacks an argument an
    implementation needs is the caller's bug and raises ``TypeError`` from every method.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._impls: dict[str, tuple[_Impl, ...]] = {}
        self._enabled: frozenset[str] = frozenset()
        self.refresh()
        add_listener = getattr(pm, "add_change_listener", None)
        if add_listener is not None:
            add_listener(self.refresh)

    def refresh(self) -> None:
        """Recompute which hooks have implementations, and their order."""
        impls: dict[str, tuple[_Impl, ...]] = {}
        for name in vars(self.pm.hook):
            caller = getattr(self.pm.hook, name)
            if isinstance(caller, pluggy.HookCaller):
                prepared = _prepare(caller)
                if prepared:
                    impls[name] = prepared
        self._impls = impls
        self._enabled = frozenset(impls)

    def enabled(self, name: str) -> bool:
        """Whether any plugin implements the hook; False means: skip the call entirely."""
        return name in self._enabled

    def any_enabled(self, names: frozenset[str]) -> bool:
        """Whether any of ``names`` has an implementation (one set operation, for the per-packet path)."""
        return not self._enabled.isdisjoint(names)

    def implementations(self, name: str) -> list[str]:
        """The names of the plugins implementing a hook, in call order."""
        return [impl.plugin_name for impl in self._impls.get(name, ())]

    async def notify(self, name: str, **kwargs: Any) -> None:
        """Call every implementation; an exception is logged with the plugin's name, never raised."""
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, kwargs)  # a missing argument is the caller's bug: raise it
            try:
                await _call(impl, args)
            except Exception:
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)

    def notify_sync(self, name: str, **kwargs: Any) -> None:
        """Call every implementation of a sync-only hook (e.g. register_commands) without a loop."""
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, kwargs)
            try:
                result = impl.function(*args)
                if inspect.iscoroutine(result):
                    result.close()
                    raise TypeError(f"{name} must not be async")
            except Exception:
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)

    def collect_sync(self, name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of a sync-only hook on the message path; return the non-``None`` results.

        Nothing is awaited: an implementation must do its work synchronously and may return
        an awaitable (a future) for the caller to wait on. An exception is logged with the
        plugin's name and contributes nothing.
        """
        results: list[Any] = []
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, kwargs)
            try:
                result = impl.function(*args)
            except Exception:
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)
                continue
            if result is not None:
                results.append(result)
        return results

    def first_sync(self, name: str, **kwargs: Any) -> Any:
        """The first non-``None`` result of a sync-only hook on the message path (exceptions logged)."""
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, kwargs)
            try:
                result = impl.function(*args)
            except Exception:
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)
                continue
            if result is not None:
                return result
        return None

    async def transform(self, name: str, arg: str, **kwargs: Any) -> Any:
        """Chain the implementations on ``kwargs[arg]`` and return its final value.

        Each non-``None`` return replaces the argument for the next implementation. A
        :class:`RejectPublish` propagates; any other exception is logged and that
        implementation's result is ignored (the chain continues with the previous value).
        """
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, kwargs)
            try:
                result = await _call(impl, args)
            except RejectPublish:
                raise
            except Exception:
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)
                continue
            if result is not None:
                kwargs[arg] = result
        return kwargs[arg]

    async def decide(self, name: str, **kwargs: Any) -> bool:
        """Tri-state vote: any False denies (and stops), else any True allows, else abstain.

        Everyone abstaining allows when no plugin implements the hook and denies otherwise.
        An exception counts as a deny (logged), so a broken auth plugin fails closed.
        """
        impls = self._impls.get(name, ())
        allowed = False
        for impl in impls:
            args = _arguments(name, impl, kwargs)
            try:
                vote = await _call(impl, args)
            except Exception:
                logger.exception("plugin %r failed in %s; denying", impl.plugin_name, name)
                return False
            if vote is False:
                return False
            if vote is True:
                allowed = True
        return allowed or not impls

    async def first(self, name: str, **kwargs: Any) -> Any:
        """Return the first non-``None`` result; later implementations are not called.

        An exception is logged and counts as ``None``.
        """
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, kwargs)
            try:
                result = await _call(impl, args)
            except Exception:
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)
                continue
            if result is not None:
                return result
        return None

    async def per_plugin(self, name: str, *, isolate: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Call every implementation with its own plugin's ``settings``; return results by plugin.

        An exception is raised as :class:`PluginError` naming the plugin: per-plugin hooks
        (register_stores, plugin_start) set the broker up, and a half-started plugin must
        not go unnoticed. With ``isolate`` (plugin_status) it is logged instead, and that
        plugin has no result.
        """
        results: dict[str, Any] = {}
        for impl in self._impls.get(name, ()):
            args = _arguments(name, impl, {**kwargs, "settings": self._settings_of(impl.plugin_name)})
            try:
                results[impl.plugin_name] = await _call(impl, args)
            except Exception as error:
                if not isolate:
                    raise PluginError(impl.plugin_name, name, error) from error
                logger.exception("plugin %r failed in %s", impl.plugin_name, name)
        return results

    def _settings_of(self, plugin_name: str) -> Any:
        """The validated settings of a plugin, or None when the manager keeps none."""
        lookup = getattr(self.pm, "plugin_settings", None)
        return lookup(plugin_name) if lookup is not None else None
