"""Listener settings: one `[[listeners]]` table of the configuration file per listener."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ListenerType = Literal["tcp", "tls", "ws", "wss"]
"""The four kinds of listener the transport layer can run."""

TLS_TYPES: frozenset[str] = frozenset({"tls", "wss"})
"""Listener kinds that terminate TLS and therefore need a certificate and key."""

WEBSOCKET_TYPES: frozenset[str] = frozenset({"ws", "wss"})
"""Listener kinds that speak MQTT over WebSocket."""


def parse_address(address: str) -> tuple[str | None, int]:
    """Split a Go-style listen address into (host, port).

    ``":1883"`` gives ``(None, 1883)`` (every interface), ``"127.0.0.1:1883"`` gives
    ``("127.0.0.1", 1883)`` and ``"[::1]:1883"`` gives ``("::1", 1883)``. Raises ValueError
    on anything else, naming the address.
    """
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"listen address {address!r} needs a port, e.g. ':1883' or '127.0.0.1:1883'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        # A bare IPv6 host is ambiguous with the port separator; Go requires brackets too.
        raise ValueError(f"listen address {address!r}: write IPv6 hosts in brackets, e.g. '[::1]:1883'")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"listen address {address!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65_535:
        raise ValueError(f"listen address {address!r}: port {port} is out of range 0-65535")
    return (host or None), port


class ListenerConfig(BaseModel):
    """One network listener: where it binds, what it speaks, and its TLS material."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique name, shown in logs and given to plugins as `client.listener`.")
    type: ListenerType = Field(description="`tcp`, `tls`, `ws` (WebSocket) or `wss` (WebSocket over TLS).")
    address: str = Field(
        description="Go-style listen address: ':1883' (every interface), '127.0.0.1:1883', '[::1]:1883'. Port 0 picks a free port.",
    )
    path: str = Field(default="/mqtt", description="HTTP path a WebSocket client must request (ws/wss only); '/' accepts any path.")
    certfile: Path | None = Field(default=None, description="PEM server certificate chain (tls/wss).")
    keyfile: Path | None = Field(default=None, description="PEM private key of the server certificate (tls/wss).")
    cafile: Path | None = Field(default=None, description="PEM CA bundle used to verify client certificates.")
    require_client_cert: bool = Field(
        default=False, description="Refuse TLS clients that present no certificate signed by `cafile`.",
    )
    tls_min_version: Literal["1.2", "1.3"] = Field(default="1.2", description="Oldest TLS version accepted.")
    ciphers: str | None = Field(
        default=None, description="OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites are not configurable); default: Python's.",
    )

    reuse_port: bool = Field(
        default=False,
        description="Bind with SO_REUSEPORT, so several processes share the port (set for each worker by "
        "`[server] workers`; rarely useful by hand).",
    )
    ws_max_message_size: int = Field(
        default=16 * 1024 * 1024, ge=1024,
        description="Largest WebSocket message accepted (ws/wss), in bytes; a whole message is buffered before the engine sees it.",
    )

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        parse_address(value)
        return value

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path {value!r} must start with '/'")
        return value

    @model_validator(mode="after")
    def _tls_material_present(self) -> ListenerConfig:
        if self.type in TLS_TYPES and (self.certfile is None or self.keyfile is None):
            raise ValueError(f"listener {self.name!r} of type {self.type!r} needs certfile and keyfile")
        if self.require_client_cert and self.cafile is None:
            raise ValueError(f"listener {self.name!r}: require_client_cert needs cafile")
        if self.type not in TLS_TYPES and (self.certfile or self.keyfile or self.cafile or self.require_client_cert):
            raise ValueError(f"listener {self.name!r}: TLS options need type 'tls' or 'wss', not {self.type!r}")
        return self

    def unused_keys(self) -> set[str]:
        """Keys with no effect on this listener's type (`hookmq config show` leaves them out)."""
        unused: set[str] = set()
        if not self.is_websocket:
            unused |= {"path", "ws_max_message_size"}
        if not self.is_tls:
            unused |= {"certfile", "keyfile", "cafile", "require_client_cert", "tls_min_version", "ciphers"}
        elif self.tls_min_version == "1.3":
            unused.add("ciphers")  # the cipher string only governs TLS 1.2
        if not self.reuse_port:
            unused.add("reuse_port")  # set per worker by `[server] workers`; off, it is nothing to show
        return unused

    @property
    def host(self) -> str | None:
        """The host to bind, or None for every interface."""
        return parse_address(self.address)[0]

    @property
    def port(self) -> int:
        """The port to bind (0 lets the system pick one)."""
        return parse_address(self.address)[1]

    @property
    def is_tls(self) -> bool:
        """Whether this listener terminates TLS."""
        return self.type in TLS_TYPES

    @property
    def is_websocket(self) -> bool:
        """Whether this listener speaks MQTT over WebSocket."""
        return self.type in WEBSOCKET_TYPES


DEFAULT_LISTENERS: list[ListenerConfig] = [
    ListenerConfig(name="tcp", type="tcp", address=":1883"),
    ListenerConfig(name="ws", type="ws", address=":1882"),
]
"""What a broker listens on with no configuration: MQTT on TCP 1883 and WebSocket 1882.

The items are frozen; copy the list (``list(DEFAULT_LISTENERS)``) before changing it and use
``model_copy(update=...)`` to derive a changed listener (e.g. from a ``--tcp`` flag).
"""
