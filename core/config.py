"""The configuration file: a TOML document validated by pydantic models that forbid unknown keys.

Sources, weakest first: the models' defaults, the TOML file, ``HOOKMQ_<SECTION>__<KEY>``
environment variables, then command-line flags (``overrides``). Each ``[plugins.<name>]``
table is kept raw here and validated by that plugin's own model when the plugin manager is
built (:func:`hookmq.pluginmanager.build_plugin_manager`), because the models come from the
plugins.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .engine.settings import MqttSettings
from .store.settings import StorageSettings
from .transport.config import DEFAULT_LISTENERS, ListenerConfig

__all__ = [
    "ClusterSettings",
    "Config",
    "ConfigError",
    "LogSettings",
    "ServerSettings",
    "config_reference",
    "config_to_toml",
    "decode_gossip_key",
    "load_config",
    "with_listener_address",
]

ENV_PREFIX = "HOOKMQ_"
"""Environment variables ``HOOKMQ_<SECTION>__<KEY>`` override the file (``__`` nests)."""

DEFAULTS_SOURCE = "<defaults>"
"""What error messages name as the source when no file was given."""


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and the dotted key."""

    def __init__(self, message: str, source: str = DEFAULTS_SOURCE) -> None:
        super().__init__(message)
        self.source = source

    @classmethod
    def from_validation(
        cls,
        error: ValidationError,
        source: str,
        prefix: Iterable[str | int] = (),
        source_of: Callable[[str], str] | None = None,
    ) -> ConfigError:
        """Turn pydantic's errors into one line per problem: ``file: dotted.key: what``.

        ``source_of(key)`` names where a key's value came from when it was not the file
        (``--members``, ``HOOKMQ_CLUSTER__PORT``); without it every line names ``source``.
        """
        lines = []
        # Values are left out: a wrong value may be a secret (a password, a token).
        for item in error.errors(include_input=False):
            key = dotted_key((*prefix, *item["loc"]))
            origin = source_of(key) if source_of is not None else source
            lines.append(f"{origin}: {key}: {_describe(item)}")
        return cls("\n".join(lines), source)


def dotted_key(loc: Iterable[str | int]) -> str:
    """Render a pydantic location as the key a user writes: ``listeners[0].address``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(item: Mapping[str, Any]) -> str:
    """Say in plain words what is wrong with one key."""
    if item["type"] == "extra_forbidden":
        return "unknown key"
    if item["type"] == "missing":
        return "missing required key"
    return str(item["msg"])


_DURATION = {"ge": 0.0, "le": 86_400.0 * 365}


def _override(description: str, **limits: Any) -> Any:
    """A timing override: absent means the profile's value."""
    return Field(default=None, description=f"{description} Default: the profile's.", **limits)


class ClusterSettings(BaseModel):
    """The ``[cluster]`` table: accepted and validated here; the gossip plugin acts on it."""

    model_config = ConfigDict(extra="forbid")

    mode: bool = Field(default=False, description="Run as a cluster node (needs the `gossip` plugin).")
    port: int = Field(default=7946, ge=0, le=65_535, description="Port of the cluster's gossip (membership) traffic, UDP and TCP.")
    members: list[str] = Field(
        default_factory=list,
        description="Addresses `host:port` of nodes to join at start and after partitions, e.g. `10.0.0.2:7946`; "
        "host names allowed (every address they resolve to is tried); a missing port means `port`.",
    )
    sibling_members: list[str] = Field(
        default_factory=list,
        description="Set for each worker by `[server] workers`, never by hand: its sibling workers' gossip addresses. "
        "Joined as `members` are, but a sibling that is not up yet is expected (the workers start together and the "
        "later one joins the earlier), so it is logged as no warning.",
    )
    bind: str = Field(default="0.0.0.0", description="Address the gossip binds to; `0.0.0.0` is every IPv4 interface.")
    advertise: str | None = Field(
        default=None,
        description="Address other nodes reach this one at. Default: `bind` when it is specific, else the private IPv4 "
        "address of the default-route interface (as memberlist), else loopback.",
    )
    node_name: str | None = Field(
        default=None, min_length=1, description="This node's unique name. Default: the host name, `-`, and a random UUID (as the Go broker)."
    )
    key: str | list[str] | None = Field(
        default=None,
        description="Gossip encryption key: base64 of 16, 24 or 32 bytes (AES-128/192/256). A list installs several; "
        "the first encrypts, all decrypt (key rotation).",
    )
    key_file: Path | None = Field(
        default=None, description="File with one base64 key per line, the first encrypting (instead of `key`)."
    )
    label: str = Field(default="", description="Cluster label: packets and streams with another label are dropped (memberlist 0.3+).")
    profile: Literal["lan", "wan", "local"] = Field(
        default="lan", description="memberlist's timing preset: `lan`, `wan` or `local` (see docs/cluster.md)."
    )
    runner: Literal["thread", "loop"] = Field(
        default="thread", description="Where membership runs: its own thread and event loop, or the broker's loop."
    )
    expect: int = Field(default=0, ge=0, description="Re-join members while fewer than this many nodes are alive (0: only while failed nodes are missing).")
    leave_timeout: float = Field(default=5.0, ge=0.0, le=300.0, description="Seconds a stopping node waits for its leave to spread.")
    probe_interval: float | None = _override("Seconds between failure-detection probes.", gt=0.0, le=3600.0)
    probe_timeout: float | None = _override("Seconds to wait for a direct ack.", gt=0.0, le=3600.0)
    indirect_checks: int | None = _override("Peers asked to probe indirectly.", ge=0, le=64)
    suspicion_mult: int | None = _override("Suspicion-timeout multiplier.", ge=1, le=1000)
    suspicion_max_timeout_mult: int | None = _override("Longest suspicion, as a multiple of the shortest.", ge=1, le=1000)
    retransmit_mult: int | None = _override("Broadcast retransmission multiplier.", ge=1, le=1000)
    gossip_interval: float | None = _override("Seconds between gossip rounds.", gt=0.0, le=3600.0)
    gossip_nodes: int | None = _override("Nodes gossiped to per round.", ge=1, le=1000)
    gossip_to_the_dead_time: float | None = _override("Seconds a dead node is still gossiped to, then forgotten.", **_DURATION)
    push_pull_interval: float | None = _override("Seconds between full state exchanges (0: none).", **_DURATION)
    tcp_timeout: float | None = _override("Seconds allowed for a TCP exchange.", gt=0.0, le=3600.0)
    awareness_max_multiplier: int | None = _override("Largest factor local health stretches probes by.", ge=1, le=1000)
    rejoin_interval: float | None = _override("Seconds between re-join attempts while nodes are missing (0: never).", **_DURATION)
    rejoin_timeout: float | None = _override("Seconds a failed node keeps being re-joined (0: until it returns).", **_DURATION)
    disable_tcp_pings: bool | None = _override("No TCP ping after a failed UDP probe.")
    compression: bool | None = _override("LZW-compress gossip as memberlist does.")
    link_send_buffer: int = Field(
        default=4 * 1_048_576, ge=65_536, le=1 << 30,
        description="Bytes of data-link frames waiting for one peer's socket; beyond them, QoS 0 messages to that "
        "peer are dropped (and counted) and QoS 1/2 ones wait in its queue.",
    )
    link_queue_bytes: int = Field(
        default=64 * 1_048_576, ge=1_048_576, le=1 << 36,
        description="Body bytes of QoS 1/2 frames held for one peer until it acknowledges them; when full, "
        "forwarding waits, and publishers are pushed back through their Receive Maximum.",
    )
    link_queue_frames: int = Field(
        default=65_536, ge=16, le=10_000_000, description="QoS 1/2 frames held for one peer until it acknowledges them (as `link_queue_bytes`)."
    )
    link_receive_window: int = Field(
        default=4096, ge=16, le=1_000_000,
        description="Received QoS 1/2 frames still being handled, beyond which a link stops reading (TCP pushes back on the peer).",
    )
    link_ping_interval: float = Field(
        default=2.0, gt=0.0, le=3600.0, description="Seconds between data-link keep-alive pings (they also measure the round-trip time)."
    )
    link_idle_timeout: float = Field(
        default=15.0, gt=0.0, le=86_400.0,
        description="Seconds without any frame from a peer after which its data-link connection is dropped and redialled.",
    )
    link_unix_path: Path | None = Field(
        default=None,
        description="A Unix socket this node also accepts links on (no key: the socket's directory must be private); "
        "peers with a socket in the same directory dial it instead of TCP. Set for each worker by `[server] workers`.",
    )
    link_failure_hold: float = Field(
        default=3.0, ge=0.0, le=3600.0,
        description="Seconds a peer that membership declared failed is held (its routes and queued QoS 1/2 messages "
        "kept) while its data link still hears from it; it is dropped once the link has been silent that long, "
        "and kept if it is alive again. Keep it longer than link_ping_interval and shorter than membership's "
        "quickest verdict on a silent node (a probe interval + the minimum suspicion: about 4 s with `local`), so that a "
        "node that really went silent is dropped the moment it is declared failed (a longer one is warned about at "
        "start). 0 drops it at once.",
    )

    @field_validator("members", "sibling_members")
    @classmethod
    def _members_are_addresses(cls, members: list[str]) -> list[str]:
        for member in members:
            host, port = _split_member(member)
            if not host:
                raise ValueError(f"cluster member {member!r} needs a host, e.g. '10.0.0.2:7946'")
            if port is not None and not (port.isdigit() and int(port) <= 65_535):
                raise ValueError(f"cluster member {member!r}: the port must be a number up to 65535")
        return members

    @field_validator("key")
    @classmethod
    def _keys_are_base64_aes_keys(cls, key: str | list[str] | None) -> str | list[str] | None:
        for text in [key] if isinstance(key, str) else key or []:
            decode_gossip_key(text)
        if isinstance(key, list) and not key:
            raise ValueError("give at least one key, or leave `key` out")
        return key

    @field_validator("label")
    @classmethod
    def _label_fits(cls, label: str) -> str:
        if len(label.encode()) > 255:
            raise ValueError("a cluster label is at most 255 bytes")
        return label

    @model_validator(mode="after")
    def _one_key_source(self) -> ClusterSettings:
        if self.key is not None and self.key_file is not None:
            raise ValueError("set `key` or `key_file`, not both")
        return self

    @model_validator(mode="after")
    def _link_pings_before_the_idle_timeout(self) -> ClusterSettings:
        if self.link_idle_timeout <= self.link_ping_interval:
            raise ValueError(
                f"link_idle_timeout ({self.link_idle_timeout:g} s) must be longer than link_ping_interval "
                f"({self.link_ping_interval:g} s), or every quiet link is dropped"
            )
        if 0 < self.link_failure_hold <= self.link_ping_interval:
            raise ValueError(
                f"link_failure_hold ({self.link_failure_hold:g} s) must be 0 or longer than link_ping_interval "
                f"({self.link_ping_interval:g} s), or a live but quiet peer declared failed is dropped"
            )
        return self

    def gossip_keys(self) -> list[bytes]:
        """The keys as bytes, primary first (reading ``key_file``); empty without encryption.

        :raises ValueError: an unreadable key file or a bad key in it (the message names it).
        """
        if self.key_file is not None:
            try:
                lines = self.key_file.read_text().split()
            except OSError as error:
                raise ValueError(f"key_file {self.key_file}: cannot read: {error.strerror}") from None
            if not lines:
                raise ValueError(f"key_file {self.key_file}: no key in it")
            try:
                return [decode_gossip_key(line) for line in lines]
            except ValueError as error:
                raise ValueError(f"key_file {self.key_file}: {error}") from None
        texts = [self.key] if isinstance(self.key, str) else self.key or []
        return [decode_gossip_key(text) for text in texts]


def _split_member(member: str) -> tuple[str, str | None]:
    """``host:port``, ``host`` or ``[v6]:port`` into host and port text (None when absent)."""
    text = member.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def decode_gossip_key(text: str) -> bytes:
    """A base64 gossip key as bytes; ValueError unless it decodes to 16, 24 or 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a gossip key must be base64 (e.g. from `openssl rand -base64 32`)") from None
    if len(key) not in (16, 24, 32):
        raise ValueError(f"a gossip key is 16, 24 or 32 bytes once decoded, not {len(key)}")
    return key


class ServerSettings(BaseModel):
    """The ``[server]`` table: how many processes serve this host (docs/workers.md)."""

    model_config = ConfigDict(extra="forbid")

    workers: int | Literal["auto"] = Field(
        default=1,
        description="Worker processes sharing every listener (SO_REUSEPORT), supervised by one parent and joined "
        "as a cluster of one host; `auto` is the number of cores. 1 is a single process.",
    )
    worker_listeners: bool = Field(
        default=False,
        description="Each worker also listens on a TCP port of its own on 127.0.0.1 (for tests and diagnostics: "
        "reach one given worker); the ports are in `workers.json` of the runtime directory.",
    )
    runtime_dir: Path | None = Field(
        default=None,
        description="Private directory (made mode 0700) for the workers' Unix sockets, configurations and "
        "`workers.json`. Default: a new temporary directory, removed at exit.",
    )

    @field_validator("workers")
    @classmethod
    def _workers_in_range(cls, workers: int | str) -> int | str:
        if isinstance(workers, int) and not 1 <= workers <= 256:
            raise ValueError("workers is 1 to 256, or \"auto\"")
        return workers

    def worker_count(self) -> int:
        """The number of workers (``auto``: the cores this process may run on)."""
        if self.workers == "auto":
            return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        return int(self.workers)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LogSettings(BaseModel):
    """The ``[log]`` table: how much hookmq logs, and how (messages go to standard error)."""

    model_config = ConfigDict(extra="forbid")

    level: LogLevel = Field(default="INFO", description="Lowest level of log records written (case-insensitive).")
    format: Literal["text", "json"] = Field(
        default="text",
        description='"text": one line per record. "json": one JSON object per line (time, level, logger, message '
        "and the fields of connection events), for log shippers.",
    )
    connection_lines_per_second: float = Field(
        default=10.0, gt=0,
        description="Connection lines (connects, disconnects, refusals, TLS failures) written per second and per kind "
        "of event once its burst is spent; the rest are counted (`log_lines_suppressed`), not written.",
    )
    connection_lines_burst: int = Field(
        default=100, ge=1, description="Connection lines of one kind written in a burst before the rate applies.",
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Config(BaseModel):
    """The whole configuration of one broker."""

    model_config = ConfigDict(extra="forbid")

    mqtt: MqttSettings = Field(default_factory=lambda: MqttSettings.model_validate({}), description="Protocol limits and capabilities.")
    listeners: list[ListenerConfig] = Field(
        default_factory=lambda: list(DEFAULT_LISTENERS),
        description="Network listeners; default: TCP `:1883` and WebSocket `:1882`.",
    )
    storage: StorageSettings = Field(default_factory=lambda: StorageSettings.model_validate({}), description="The store backend.")
    cluster: ClusterSettings = Field(default_factory=lambda: ClusterSettings.model_validate({}), description="Cluster membership.")
    server: ServerSettings = Field(default_factory=lambda: ServerSettings.model_validate({}), description="Worker processes.")
    log: LogSettings = Field(default_factory=lambda: LogSettings.model_validate({}), description="Logging.")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="One table per plugin, `[plugins.<name>]`, validated by that plugin's settings model; "
        "its presence enables the plugin unless it says `enabled = false`.",
    )
    disabled_plugins: list[str] = Field(
        default_factory=list, description="Plugins never to load, by entry-point name (as `--disable-plugin`)."
    )

    _source: str = PrivateAttr(DEFAULTS_SOURCE)
    #: Dotted keys set by a command-line flag or an environment variable -> its name.
    _key_sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("listeners")
    @classmethod
    def _listener_names_unique(cls, listeners: list[ListenerConfig]) -> list[ListenerConfig]:
        names = [listener.name for listener in listeners]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"listener names must be unique; repeated: {', '.join(duplicates)}")
        return listeners

    @property
    def source(self) -> str:
        """The file this configuration came from, as error messages name it."""
        return self._source

    def source_of(self, key: str) -> str:
        """Where the value of a dotted key came from: the flag or variable that set it, else the file."""
        return _source_of(key, self._key_sources, self._source)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], source: str = DEFAULTS_SOURCE, key_sources: Mapping[str, str] | None = None
    ) -> Config:
        """Validate a parsed document; errors become a :class:`ConfigError` naming ``source``.

        ``key_sources`` maps dotted keys set elsewhere (a flag, an environment variable) to
        the name errors about them use instead of ``source``.
        """
        named = dict(key_sources or {})
        try:
            config = cls.model_validate(data)
        except ValidationError as error:
            raise ConfigError.from_validation(error, source, source_of=lambda key: _source_of(key, named, source)) from None
        config._source = source
        config._key_sources = named
        return config


def _source_of(key: str, key_sources: Mapping[str, str], default: str) -> str:
    """The name of the most specific entry of ``key_sources`` that ``key`` is or lies under."""
    best, best_length = default, -1
    for set_key, name in key_sources.items():
        if (key == set_key or key.startswith((f"{set_key}.", f"{set_key}["))) and len(set_key) > best_length:
            best, best_length = name, len(set_key)
    return best


def load_config(
    path: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    override_names: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the configuration.

    :param path: the TOML file, or ``None`` for the defaults alone.
    :param overrides: dotted keys set last, e.g. ``{"cluster.mode": True}`` (the CLI flags).
    :param environ: where ``HOOKMQ_<SECTION>__<KEY>`` variables are read; ``os.environ`` by default.
    :param override_names: what errors call the source of an override, e.g.
        ``{"cluster.members": "--members"}``; errors about keys set by an environment
        variable name the variable.
    :raises ConfigError: missing or unreadable file, bad TOML, unknown key or wrong type.
    """
    source = str(path) if path is not None else DEFAULTS_SOURCE
    data = read_toml(Path(path)) if path is not None else {}
    key_sources: dict[str, str] = {}
    environment = os.environ if environ is None else environ
    for key, value in environment_overrides(environment).items():
        set_dotted(data, key, value)
        key_sources[key] = _variable_name(key, environment)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
        if override_names and key in override_names:
            key_sources[key] = override_names[key]
        else:
            key_sources.pop(key, None)
    return Config.from_mapping(data, source, key_sources)


def _variable_name(key: str, environ: Mapping[str, str]) -> str:
    """The environment variable that set a dotted key (as written, whatever its case)."""
    wanted = ENV_PREFIX + key.replace(".", "__").upper()
    return next((name for name in environ if name.upper() == wanted), wanted)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a :class:`ConfigError` naming it."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found", str(path)) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}", str(path)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}", str(path)) from None


def environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Dotted keys from ``HOOKMQ_SECTION__KEY=value`` variables; values are read as TOML values.

    ``HOOKMQ_MQTT__MAX_INFLIGHT=10`` gives ``{"mqtt.max_inflight": 10}``; a value that is not a
    TOML literal (``redis://host``) is taken as a string. Variables without ``__`` (such as
    ``HOOKMQ_CONFIG``) are not configuration keys.
    """
    found: dict[str, Any] = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            parts = name[len(ENV_PREFIX):].lower().split("__")
            found[".".join(parts)] = _toml_value(raw)
    return found


def _toml_value(raw: str) -> Any:
    """``"10"`` -> 10, ``"true"`` -> True, ``'["a"]'`` -> ["a"], anything else stays a string."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for key ``"a.b"``, creating tables on the way."""
    *tables, last = key.split(".")
    node = data
    for table in tables:
        child = node.setdefault(table, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key}: {table} is not a table")
        node = child
    node[last] = value


def with_listener_address(config: Config, kind: str, address: str, flag: str) -> Config:
    """Return a copy whose first listener of type ``kind`` binds ``address`` (added if missing).

    This is what ``--tcp=:1885`` and ``--ws=:1886`` do. ``flag`` names the option in errors.
    """
    listeners = list(config.listeners)
    index = next((i for i, listener in enumerate(listeners) if listener.type == kind), None)
    fields = listeners[index].model_dump() if index is not None else {"name": kind, "type": kind}
    try:
        changed = ListenerConfig.model_validate({**fields, "address": address})
    except ValidationError as error:
        raise ConfigError.from_validation(error, flag) from None
    if index is None:
        listeners.append(changed)
    else:
        listeners[index] = changed
    copy = config.model_copy(update={"listeners": listeners})
    copy._source = config.source
    copy._key_sources = dict(config._key_sources)
    return copy


def config_to_toml(config: Config) -> str:
    """The configuration as a TOML document that :func:`load_config` reads back unchanged."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))


# -------------------------------------------------------------------------
# The reference of every key (docs/configuration.md embeds it)
# -------------------------------------------------------------------------

CORE_SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("[mqtt]", MqttSettings),
    ("[[listeners]]", ListenerConfig),
    ("[storage]", StorageSettings),
    ("[cluster]", ClusterSettings),
    ("[server]", ServerSettings),
    ("[log]", LogSettings),
)
"""The core tables, in the order the reference lists them."""


def config_reference(plugin_models: Mapping[str, type[BaseModel] | None] | None = None) -> str:
    """Markdown tables of every key: type, default and description, generated from the models."""
    parts = [_section_reference(title, model) for title, model in CORE_SECTIONS]
    parts.append(_top_level_reference())
    for name, model in sorted((plugin_models or {}).items()):
        if model is None:
            parts.append(f"### `[plugins.{name}]`\n\nThis plugin takes no settings besides `enabled`.\n")
        else:
            parts.append(_section_reference(f"[plugins.{name}]", model))
    return "\n".join(parts)


def _section_reference(title: str, model: type[BaseModel]) -> str:
    summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, info in model.model_fields.items():
        default = "(required)" if info.is_required() else _toml_literal(info.get_default(call_default_factory=True))
        rows.append(f"| `{key}` | {_type_name(info.annotation)} | {default} | {_cell(info.description or '')} |")
    return f"### `{title}`\n\n{summary}\n\n" + "\n".join(rows) + "\n"


def _top_level_reference() -> str:
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for key in ("disabled_plugins", "plugins"):
        info = Config.model_fields[key]
        kind = "array of string" if key == "disabled_plugins" else "table of tables"
        default = _toml_literal(info.get_default(call_default_factory=True))
        rows.append(f"| `{key}` | {kind} | {default} | {_cell(info.description or '')} |")
    return "### Top-level keys\n\n" + "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _toml_literal(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, Path):
        value = str(value)
    return "`" + tomli_w.dumps({"v": value}).strip()[len("v = "):].replace("|", "\\|") + "`"


_TYPE_NAMES: dict[Any, str] = {int: "integer", float: "float", bool: "boolean", str: "string", Path: "path"}


def _type_name(annotation: Any) -> str:
    """A TOML-minded name for a field type: ``integer``, ``"a" \\| "b"``, ``array of string``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation in _TYPE_NAMES:
        return _TYPE_NAMES[annotation]
    if origin is Literal:
        return " \\| ".join(f'`"{arg}"`' if isinstance(arg, str) else f"`{arg}`" for arg in args)
    if origin in (Union, UnionType):
        names = [_type_name(arg) for arg in args if arg is not type(None)]
        optional = " (optional)" if type(None) in args else ""
        return " or ".join(names) + optional
    if origin is list:
        return f"array of {_type_name(args[0])}" if args else "array"
    if origin is dict:
        return "table"
    return getattr(annotation, "__name__", str(annotation))
