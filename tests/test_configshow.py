"""`hookmq config show`: what is in force, enabled plugins' defaults included, secrets redacted."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import SecretStr

from hookmq.configshow import REDACTED, redact_url, settings_in_force
from hookmq.plugins.auth.passwords import hash_password
from hookmq.plugins.redis_store import RedisStoreSettings
from hookmq.transport import ListenerConfig

TOKEN = "a-dashboard-token-that-is-long-enough"
PASSWORD_HASH = hash_password("wonderland", n=2**10, r=8, p=1)


def show(*args: str, config: str | None = None, tmp_path: Path | None = None) -> tuple[dict[str, object], str]:
    command = [sys.executable, "-m", "hookmq"]
    if config is not None:
        assert tmp_path is not None
        path = tmp_path / "hookmq.toml"
        path.write_text(config)
        command += ["--config", str(path)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKMQ_")}
    result = subprocess.run([*command, "config", "show", *args], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout), result.stdout


SECRETS = f"""
[storage]
backend = "redis"

[plugins.redis_store]
url = "redis://:url-password@10.0.0.5:6379/0"
password = "table-password"

[plugins.dashboard]
token = "{TOKEN}"

[plugins.auth]
users = {{ alice = "{PASSWORD_HASH}" }}
"""


def test_secrets_are_redacted(tmp_path: Path) -> None:
    shown, text = show(config=SECRETS, tmp_path=tmp_path)
    for secret in ("url-password", "table-password", TOKEN, PASSWORD_HASH):
        assert secret not in text
    plugins = shown["plugins"]
    assert isinstance(plugins, dict)
    assert plugins["redis_store"]["url"] == f"redis://:{REDACTED}@10.0.0.5:6379/0"
    assert plugins["redis_store"]["password"] == REDACTED
    assert plugins["dashboard"]["token"] == REDACTED
    assert plugins["auth"]["users"] == {"alice": {"password": REDACTED}}


def test_show_secrets_prints_them_and_the_output_loads_back(tmp_path: Path) -> None:
    shown, text = show("--show-secrets", config=SECRETS, tmp_path=tmp_path)
    plugins = shown["plugins"]
    assert isinstance(plugins, dict)
    assert plugins["redis_store"]["url"] == "redis://:url-password@10.0.0.5:6379/0"
    assert plugins["redis_store"]["password"] == "table-password"
    assert plugins["dashboard"]["token"] == TOKEN
    assert plugins["auth"]["users"]["alice"]["password"] == PASSWORD_HASH
    again = tmp_path / "again.toml"
    again.write_text(text)
    check = subprocess.run([sys.executable, "-m", "hookmq", "config", "check", str(again)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_enabled_plugins_show_their_defaults_and_disabled_ones_do_not(tmp_path: Path) -> None:
    shown, text = show("--disable-plugin", "sqlite_store")
    assert text.count("[[listeners]]") == 2  # one table per listener, as the docs write them
    plugins = shown["plugins"]
    assert isinstance(plugins, dict)
    assert plugins["dashboard"]["address"] == "127.0.0.1:8080"
    assert plugins["dashboard"]["sample_interval"] == 1.0
    assert plugins["memory_store"] == {}
    assert plugins["redis_store"]["url"] == "redis://127.0.0.1:6379/0"
    assert "sqlite_store" not in plugins and "auth" not in plugins
    assert shown["disabled_plugins"] == ["sqlite_store"]


def test_keys_without_effect_are_left_out(tmp_path: Path) -> None:
    shown, _ = show(config="""
[[listeners]]
name = "plain"
type = "tcp"
address = ":1883"

[[listeners]]
name = "web"
type = "ws"
address = ":1882"

[plugins.auth]
""", tmp_path=tmp_path)
    plain, web = shown["listeners"]  # type: ignore[misc]
    assert plain == {"name": "plain", "type": "tcp", "address": ":1883"}
    assert web == {"name": "web", "type": "ws", "address": ":1882", "path": "/mqtt", "ws_max_message_size": 16777216}
    auth = shown["plugins"]["auth"]  # type: ignore[index]
    assert "redis_url" not in auth and "cache_ttl" not in auth and "tls_identity_requires_password" not in auth
    assert auth["source"] == "file"
    assert "tls_ca_file" not in shown["plugins"]["redis_store"] and "tls_verify" not in shown["plugins"]["redis_store"]  # type: ignore[index]


def test_a_tls_listener_keeps_its_tls_keys() -> None:
    listener = ListenerConfig(name="s", type="wss", address=":8884", certfile=Path("c.pem"), keyfile=Path("k.pem"))
    table = settings_in_force(listener)
    assert table["certfile"] == "c.pem" and table["tls_min_version"] == "1.2" and table["path"] == "/mqtt"
    assert "cafile" not in table and "ciphers" not in table
    strict = ListenerConfig(name="s", type="tls", address=":8883", certfile=Path("c.pem"), keyfile=Path("k.pem"),
                            tls_min_version="1.3", ciphers="HIGH")
    assert "ciphers" not in settings_in_force(strict)  # TLS 1.3 suites are not set by the cipher string


def test_secret_types_and_markers() -> None:
    settings = RedisStoreSettings(url="rediss://user:pw@host:6380/1", password=SecretStr("s3cret"))
    table = settings_in_force(settings)
    assert table["url"] == f"rediss://user:{REDACTED}@host:6380/1"
    assert table["password"] == REDACTED
    assert "tls_verify" in table  # rediss:// is TLS
    shown = settings_in_force(settings, show_secrets=True)
    assert shown["password"] == "s3cret"
    assert shown["url"] == "rediss://user:pw@host:6380/1"


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:pw@h:1/0", f"redis://:{REDACTED}@h:1/0"),
    ("redis://u:pw@h:1", f"redis://u:{REDACTED}@h:1"),
    ("redis://u@h:1", "redis://u@h:1"),
    ("not a url", "not a url"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
