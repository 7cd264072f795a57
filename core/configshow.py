"""What ``hookmq config show`` prints: the settings in force, with every secret redacted.

"In force" means the core tables, and for every *enabled* plugin its validated table with its
defaults filled in, leaving out keys that have no effect given the others. A settings model
says which keys those are by defining ``unused_keys(self) -> set[str]`` (a listener of type
``tcp`` has no use for ``path``, ``tls_min_version`` or ``ws_max_message_size``).

Secrets are fields typed ``SecretStr``/``SecretBytes`` or declared with
``Field(json_schema_extra={"secret": True})``, and the password part of any URL
(``redis://:pw@host`` -> ``redis://:<redacted>@host``). They are printed as `REDACTED`
unless ``--show-secrets`` is given; a redacted document is for reading, not for loading.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import tomli_w
from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo

from .config import Config

__all__ = ["REDACTED", "effective_document", "is_secret_field", "redact_url", "settings_in_force"]

REDACTED = "<redacted>"
"""What a secret is replaced with."""

_CORE_TABLES = ("mqtt", "listeners", "storage", "cluster", "log")


def is_secret_field(info: FieldInfo) -> bool:
    """Whether a model field holds a secret (by its type or its ``secret`` marker)."""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("secret") is True:
        return True
    return _mentions_secret_type(info.annotation)


def _mentions_secret_type(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_mentions_secret_type(arg) for arg in getattr(annotation, "__args__", ()))


def redact_url(text: str) -> str:
    """``scheme://user:password@host/...`` with the password replaced; other text unchanged."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:{REDACTED}@{hostinfo}", parts.path, parts.query, parts.fragment))


def settings_in_force(model: BaseModel, show_secrets: bool = False) -> dict[str, Any]:
    """A model as a TOML-ready table: defaults included, ``None`` and unused keys left out."""
    unused_keys = getattr(model, "unused_keys", None)
    skip: set[str] = set(unused_keys()) if callable(unused_keys) else set()
    table: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if name in skip or value is None:
            continue
        table[name] = _plain(value, is_secret_field(info), show_secrets)
    return table


def _plain(value: Any, secret: bool, show_secrets: bool) -> Any:
    """A value as TOML can write it, secrets redacted unless shown."""
    if isinstance(value, BaseModel):
        return settings_in_force(value, show_secrets)
    if isinstance(value, SecretStr | SecretBytes):
        if not show_secrets:
            return REDACTED
        secret_value = value.get_secret_value()
        return secret_value.decode() if isinstance(secret_value, bytes) else secret_value
    if secret and not show_secrets:
        return REDACTED
    if isinstance(value, Mapping):
        return {str(key): _plain(item, False, show_secrets) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item, False, show_secrets) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and not show_secrets:
        return redact_url(value)
    return value


def effective_document(
    config: Config, plugin_settings: Mapping[str, tuple[bool, BaseModel | None]], show_secrets: bool = False
) -> dict[str, Any]:
    """The whole configuration in force as a dictionary ready for TOML.

    :param plugin_settings: every installed plugin by name: (enabled, validated settings).
    """
    document: dict[str, Any] = {}
    for name in _CORE_TABLES:
        value = getattr(config, name)
        document[name] = _plain(value, False, show_secrets)
    plugins: dict[str, Any] = {}
    for name, (enabled, settings) in sorted(plugin_settings.items()):
        if enabled:
            plugins[name] = settings_in_force(settings, show_secrets) if settings is not None else {}
        elif config.plugins.get(name, {}).get("enabled", True) is False:
            plugins[name] = {"enabled": False}
    document["plugins"] = plugins
    document["disabled_plugins"] = list(config.disabled_plugins)
    return document


def effective_toml(
    config: Config, plugin_settings: Mapping[str, tuple[bool, BaseModel | None]], show_secrets: bool = False
) -> str:
    """`effective_document` written as TOML, each listener as its own ``[[listeners]]`` table."""
    document = effective_document(config, plugin_settings, show_secrets)
    listeners = document.pop("listeners") if document["listeners"] else []  # `listeners = []` stays
    text = tomli_w.dumps(document)
    # tomli_w writes short tables of an array inline; one [[listeners]] table each reads like the docs.
    for listener in listeners:
        text += f"\n[[listeners]]\n{tomli_w.dumps(listener)}"
    return text
