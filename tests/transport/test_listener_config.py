"""ListenerConfig validation and Go-style listen addresses."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hookmq.transport.config import DEFAULT_LISTENERS, ListenerConfig, parse_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":1883", (None, 1883)),
        ("127.0.0.1:1883", ("127.0.0.1", 1883)),
        ("[::1]:8883", ("::1", 8883)),
        ("[::]:0", ("::", 0)),
        ("localhost:1", ("localhost", 1)),
        (" :1882 ", (None, 1882)),
    ],
)
def test_parse_address_accepts_go_style(address: str, expected: tuple[str | None, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("1883", "needs a port"),
        ("::1:1883", "brackets"),
        ("host:mqtt", "not a number"),
        (":70000", "out of range"),
        (":-1", "out of range"),
    ],
)
def test_parse_address_rejects_with_reason(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(address)


def test_defaults_are_tcp_1883_and_ws_1882() -> None:
    assert [(c.name, c.type, c.host, c.port) for c in DEFAULT_LISTENERS] == [
        ("tcp", "tcp", None, 1883),
        ("ws", "ws", None, 1882),
    ]
    assert DEFAULT_LISTENERS[1].path == "/mqtt"


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="portt"):
        ListenerConfig.model_validate({"name": "a", "type": "tcp", "address": ":1", "portt": 2})


def test_bad_address_names_the_field() -> None:
    with pytest.raises(ValidationError, match="address"):
        ListenerConfig(name="a", type="tcp", address="nowhere")


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="type"):
        ListenerConfig.model_validate({"name": "a", "type": "quic", "address": ":1"})


@pytest.mark.parametrize("kind", ["tls", "wss"])
def test_tls_listeners_need_certificate_and_key(kind: str) -> None:
    with pytest.raises(ValidationError, match="needs certfile and keyfile"):
        ListenerConfig.model_validate({"name": "secure", "type": kind, "address": ":8883", "certfile": "c.pem"})


def test_required_client_cert_needs_a_ca() -> None:
    with pytest.raises(ValidationError, match="require_client_cert needs cafile"):
        ListenerConfig(
            name="s", type="tls", address=":8883", certfile=Path("c"), keyfile=Path("k"), require_client_cert=True
        )


def test_tls_options_on_plain_listener_are_refused() -> None:
    with pytest.raises(ValidationError, match="TLS options need type"):
        ListenerConfig(name="t", type="tcp", address=":1883", certfile=Path("c"), keyfile=Path("k"))


def test_path_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="must start with"):
        ListenerConfig(name="w", type="ws", address=":1882", path="mqtt")


def test_toml_shaped_tls_config_is_accepted() -> None:
    config = ListenerConfig.model_validate(
        {
            "name": "secure-ws", "type": "wss", "address": "[::1]:8884", "path": "/",
            "certfile": "server.pem", "keyfile": "server.key", "cafile": "ca.pem",
            "require_client_cert": True, "tls_min_version": "1.3",
        }
    )
    assert config.is_tls and config.is_websocket
    assert (config.host, config.port) == ("::1", 8884)
    assert config.certfile == Path("server.pem")
