"""Finding, enabling and registering plugins: one plugin manager per broker instance.

Every plugin, built-in or third-party, is an entry point in the ``hookmq`` group; the
entry-point name is also its ``[plugins.<name>]`` table, its ``--disable-plugin`` name and its
name in the plugin manager.

Enabling rule. A plugin is enabled when

1. its ``[plugins.<name>]`` table is present (unless the table says ``enabled = false``), or
   the plugin declares itself enabled by default (a module or object attribute
   ``HOOKMQ_DEFAULT_ENABLED = True``: the stores and the dashboard do, auth does not), and
2. it is not named in ``disabled_plugins`` (or by ``--disable-plugin``).

A plugin that is disabled is not even imported. A plugin whose import fails is reported
(``hookmq plugins`` shows the error) and skipped, unless the configuration asks for it with a
``[plugins.<name>]`` table: then building the manager fails, naming the plugin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from . import hookspecs
from .config import Config, ConfigError

__all__ = [
    "HookmqPluginManager",
    "PluginInfo",
    "build_plugin_manager",
    "describe_plugins",
    "installed_plugins",
    "plugin_settings_models",
]

logger = logging.getLogger("hookmq.plugins")

DEFAULT_ENABLED_ATTRIBUTE = "HOOKMQ_DEFAULT_ENABLED"
"""A plugin sets this attribute to True to be enabled without a ``[plugins.<name>]`` table."""


class PluginLoadError(ConfigError):
    """A plugin the configuration asks for cannot be imported or does not fit the hook specs."""


@dataclass(slots=True)
class PluginInfo:
    """What ``hookmq plugins`` shows about one installed (or embedded) plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: tuple[str, ...] = ()
    enabled: bool = False
    #: Why the plugin is (not) enabled, in words, e.g. "enabled by [plugins.auth]".
    reason: str = ""
    #: The import error, when the plugin could not be imported.
    error: str | None = None


@dataclass(slots=True)
class _Candidate:
    """A plugin that may be loaded: where it comes from, and how to get the object."""

    name: str
    load: Callable[[], object]
    distribution: str | None = None
    version: str | None = None
    loaded: list[object] = field(default_factory=list)

    def get(self) -> object:
        """Import the plugin once."""
        if not self.loaded:
            self.loaded.append(self.load())
        return self.loaded[0]


class HookmqPluginManager(pluggy.PluginManager):
    """A ``pluggy.PluginManager`` for hookmq's specs that also keeps each plugin's settings.

    It tells listeners (the :class:`hookmq.hooks.HookFacade`) about every registration
    change, and refuses hook wrappers: the facade awaits implementations one by one, which
    pluggy's wrappers cannot take part in.
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._settings: dict[str, BaseModel | None] = {}
        self._listeners: list[Callable[[], None]] = []

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every register and unregister."""
        self._listeners.append(listener)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin (see pluggy), then tell the listeners."""
        registered = super().register(plugin, name)
        for caller in self.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                    super().unregister(plugin)
                    raise pluggy.PluginValidationError(
                        plugin, f"plugin {registered!r}: {caller.name} is a hook wrapper; hookmq does not support wrappers"
                    )
        self._changed()
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin (see pluggy), forget its settings, then tell the listeners."""
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        removed = super().unregister(plugin, name)
        if name is not None:
            self._settings.pop(name, None)
        self._changed()
        return removed

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def plugin_settings(self, plugin_name: str) -> BaseModel | None:
        """The validated ``[plugins.<name>]`` settings of a plugin (None when it takes none)."""
        return self._settings.get(plugin_name)

    def validate_settings(
        self, name: str, table: Mapping[str, Any], source: str, source_of: Callable[[str], str] | None = None
    ) -> None:
        """Validate a plugin's table with the model its ``plugin_settings_model`` returns.

        ``source_of(dotted_key)`` names a flag or variable that set a key (see `Config.source_of`).
        """
        plugin = self.get_plugin(name)
        model = _settings_model(self, plugin)
        values = {key: value for key, value in table.items() if key != "enabled"}
        if model is None:
            if values:
                key = f"plugins.{name}.{next(iter(values))}"
                origin = source_of(key) if source_of is not None else source
                raise ConfigError(f"{origin}: {key}: unknown key (plugin {name!r} takes no settings)", source)
            self._settings[name] = None
            return
        try:
            self._settings[name] = model.model_validate(values)
        except ValidationError as error:
            raise ConfigError.from_validation(error, source, ("plugins", name), source_of) from None


def _settings_model(pm: pluggy.PluginManager, plugin: object) -> type[BaseModel] | None:
    """Call this one plugin's ``plugin_settings_model`` (sync only)."""
    for impl in pm.hook.plugin_settings_model.get_hookimpls():
        if impl.plugin is plugin:
            model = impl.function()
            if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise PluginLoadError(f"plugin {impl.plugin_name!r}: plugin_settings_model must return a pydantic model")
            return model
    return None


def _entry_point_candidates(group: str = hookspecs.PROJECT_NAME) -> dict[str, _Candidate]:
    """The installed plugins, by entry-point name; one name from two distributions is an error."""
    found: dict[str, _Candidate] = {}
    values: dict[str, str] = {}
    for ep in entry_points(group=group):
        if ep.name in values:
            if values[ep.name] != ep.value:
                raise PluginLoadError(f"two installed plugins are named {ep.name!r}: {values[ep.name]} and {ep.value}")
            continue
        values[ep.name] = ep.value
        found[ep.name] = _candidate_from_entry_point(ep)
    return dict(sorted(found.items()))


def _candidate_from_entry_point(ep: EntryPoint) -> _Candidate:
    dist = ep.dist
    return _Candidate(ep.name, ep.load, dist.name if dist else None, dist.version if dist else None)


def _candidates(extra_plugins: Mapping[str, object] | None, autoload: bool) -> dict[str, _Candidate]:
    """Entry-point plugins, then embedded ones (which replace an entry point of the same name)."""
    found = _entry_point_candidates() if autoload else {}
    for name, plugin in (extra_plugins or {}).items():
        found.pop(name, None)
        found[name] = _Candidate(name, _already_loaded, loaded=[plugin])
    return found


def _already_loaded() -> object:
    raise AssertionError("an embedded plugin is never loaded")


def _enabled_by(name: str, config: Config, plugin: object | None, embedded: bool) -> tuple[bool, str]:
    """Apply the enabling rule; the text says why, for ``hookmq plugins``."""
    table = config.plugins.get(name)
    if name in config.disabled_plugins:
        return False, "disabled by disabled_plugins / --disable-plugin"
    if table is not None and table.get("enabled", True) is False:
        return False, f"disabled by [plugins.{name}] enabled = false"
    if table is not None:
        return True, f"enabled by [plugins.{name}]"
    if embedded:
        return True, "enabled (embedded)"
    if plugin is not None and getattr(plugin, DEFAULT_ENABLED_ATTRIBUTE, False) is True:
        return True, "enabled by default"
    return False, f"not enabled (add a [plugins.{name}] table)"


def _check_tables(config: Config, candidates: Mapping[str, _Candidate]) -> None:
    """Every ``[plugins.<name>]`` table must name an installed plugin and have a boolean ``enabled``."""
    for name, table in config.plugins.items():
        if name not in candidates:
            installed = ", ".join(candidates) or "none"
            raise ConfigError(
                f"{config.source_of(f'plugins.{name}')}: plugins.{name}: unknown plugin (installed: {installed})",
                config.source,
            )
        if not isinstance(table.get("enabled", True), bool):
            raise ConfigError(
                f"{config.source_of(f'plugins.{name}.enabled')}: plugins.{name}.enabled: must be true or false",
                config.source,
            )


def build_plugin_manager(
    config: Config,
    extra_plugins: Mapping[str, object] | None = None,
    *,
    autoload: bool = True,
) -> HookmqPluginManager:
    """Discover, enable, register and configure the plugins of one broker.

    :param config: the validated configuration (its ``plugins`` tables are validated here).
    :param extra_plugins: plugin objects registered by name, as if installed; they are
        enabled unless disabled by name, and replace an entry point of the same name.
        Registered last, so their implementations run first.
    :param autoload: False ignores installed entry points (tests, embedders).
    :raises ConfigError: a plugin table that does not validate, an unknown plugin table, or
        a configured plugin that cannot be imported (:class:`PluginLoadError`).
    """
    pm = HookmqPluginManager()
    candidates = _candidates(extra_plugins, autoload)
    _check_tables(config, candidates)
    embedded = set(extra_plugins or ())
    for name, candidate in candidates.items():
        info = _load_and_describe(candidate, config, name in embedded, strict=True)
        pm.infos[name] = info
        if info.enabled:
            _register(pm, name, candidate.get())
            pm.validate_settings(name, config.plugins.get(name, {}), config.source, config.source_of)
    if config.cluster.mode and "gossip" not in pm.infos:
        logger.warning("[cluster] mode is on but no gossip plugin is installed: running as a single node")
    return pm


def _register(pm: HookmqPluginManager, name: str, plugin: object) -> None:
    try:
        pm.register(plugin, name)
        # A misspelt hook name (on_conect) would otherwise be silently never called.
        pm.check_pending()
    except (pluggy.PluginValidationError, ValueError) as error:
        raise PluginLoadError(f"plugin {name!r} cannot be registered: {error}") from None


def _load_and_describe(candidate: _Candidate, config: Config, embedded: bool, strict: bool) -> PluginInfo:
    """Import the plugin when it may be enabled, and say whether it is."""
    name = candidate.name
    info = PluginInfo(name, candidate.distribution, candidate.version)
    enabled, info.reason = _enabled_by(name, config, None, embedded)
    if not enabled and info.reason.startswith("disabled"):
        return info
    try:
        plugin = candidate.get()
    except Exception as error:
        info.error = f"{type(error).__name__}: {error}"
        if strict and name in config.plugins:
            raise PluginLoadError(f"{config.source}: plugins.{name}: plugin cannot be imported: {info.error}") from error
        logger.warning("plugin %r cannot be imported and is skipped: %s", name, info.error)
        info.reason = "import failed"
        return info
    info.enabled, info.reason = _enabled_by(name, config, plugin, embedded)
    info.hooks = hooks_of(plugin)
    return info


def hooks_of(plugin: object) -> tuple[str, ...]:
    """The hookmq hooks a plugin object implements, sorted."""
    probe = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    probe.add_hookspecs(hookspecs)
    try:
        probe.register(plugin)
    except (pluggy.PluginValidationError, ValueError):
        return ()
    return tuple(sorted(caller.name for caller in probe.get_hookcallers(plugin) or ()))


def describe_plugins(
    config: Config, extra_plugins: Mapping[str, object] | None = None, *, autoload: bool = True
) -> list[PluginInfo]:
    """Every installed plugin with its version, hooks and whether ``config`` enables it.

    Never raises for a plugin that cannot be imported: the error is in its :class:`PluginInfo`.
    """
    candidates = _candidates(extra_plugins, autoload)
    embedded = set(extra_plugins or ())
    infos = [_load_and_describe(c, config, c.name in embedded, strict=False) for c in candidates.values()]
    for info in infos:
        if not info.enabled and not info.hooks and info.error is None:
            # Disabled plugins were not imported for the decision; import them for the listing.
            info.hooks = _hooks_if_importable(candidates[info.name], info)
    return infos


def _hooks_if_importable(candidate: _Candidate, info: PluginInfo) -> tuple[str, ...]:
    try:
        return hooks_of(candidate.get())
    except Exception as error:
        info.error = f"{type(error).__name__}: {error}"
        return ()


def installed_plugins(distribution: str | None = None) -> tuple[dict[str, object], dict[str, str]]:
    """Import every installed plugin (or those of one distribution): objects and errors by name."""
    plugins: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name, candidate in _entry_point_candidates().items():
        if distribution is not None and candidate.distribution != distribution:
            continue
        try:
            plugins[name] = candidate.get()
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"
    return plugins, errors


def plugin_settings_models(plugins: Mapping[str, object]) -> dict[str, type[BaseModel] | None]:
    """Each plugin's settings model (None when it takes no settings), for the reference docs."""
    models: dict[str, type[BaseModel] | None] = {}
    for name, plugin in plugins.items():
        probe = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        probe.add_hookspecs(hookspecs)
        probe.register(plugin, name)
        models[name] = _settings_model(probe, plugin)
    return models
