"""Settings of the ``redis_store`` plugin: the ``[plugins.redis_store]`` table.

Three topologies: one Redis (``url``), a primary found through Redis Sentinel (``sentinels``
and ``service_name``; ``url`` then gives only the credentials, database and TLS), or a Redis
Cluster (``cluster = true``; ``url`` and ``nodes`` are the seed nodes). Combinations that
cannot work are refused with the key named (see docs/storage.md "Sentinel and Cluster").
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

__all__ = ["RedisStoreSettings", "parse_address"]


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair; ValueError naming the text otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


def _addresses(values: list[str]) -> list[str]:
    for value in values:
        parse_address(value)
    return values


class RedisStoreSettings(BaseModel):
    """Which Redis to use, under which key prefix, and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="redis:// or rediss:// (TLS) URL; user, password and database may be part of it.",
    )
    prefix: str = Field(default="hookmq:", description="Prepended to every key, so several brokers or clusters can share one Redis.")
    username: str | None = Field(default=None, description="ACL user name; overrides the one in the URL.")
    password: SecretStr | None = Field(default=None, description="Password; overrides the one in the URL.")
    db: int | None = Field(default=None, ge=0, description="Database number; overrides the one in the URL.")
    tls: bool | None = Field(default=None, description="Force TLS on (or off); by default the URL scheme decides (rediss:// = TLS).")
    tls_ca_file: str | None = Field(default=None, description="CA bundle to verify the server certificate with.")
    tls_cert_file: str | None = Field(default=None, description="Client certificate, for servers that require one.")
    tls_key_file: str | None = Field(default=None, description="Private key of the client certificate.")
    tls_verify: bool = Field(default=True, description="Verify the server certificate and host name.")
    connect_timeout: float = Field(default=2.0, gt=0, description="Seconds to wait for a connection to Redis.")
    timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for Redis to answer a batch.")
    max_backoff: float = Field(
        default=5.0, gt=0, description="Longest pause, in seconds, between reconnection attempts while Redis is down."
    )
    sentinels: list[str] = Field(
        default_factory=list,
        description="Redis Sentinel addresses (host:port); the primary is asked of them, the URL's host is then unused.",
    )
    service_name: str | None = Field(default=None, validate_default=True, description="The primary's name in Sentinel (`sentinel monitor NAME ...`).")
    sentinel_username: str | None = Field(default=None, description="ACL user name for the sentinels themselves.")
    sentinel_password: SecretStr | None = Field(default=None, description="Password of the sentinels themselves (`requirepass` of sentinel.conf).")
    cluster: bool = Field(default=False, description="Redis Cluster: keys carry hash tags, each batch is one transaction per slot.")
    nodes: list[str] = Field(
        default_factory=list, description="More Redis Cluster seed nodes (host:port) besides the URL's, tried when it is down."
    )
    wait_replicas: int = Field(
        default=0,
        ge=0,
        description="After each write transaction, WAIT until this many replicas have it; a write is confirmed only then.",
    )
    wait_timeout: float = Field(default=1.0, gt=0, description="Seconds a write waits for `wait_replicas` replicas before it fails (and is retried).")

    @field_validator("sentinels", "nodes")
    @classmethod
    def _check_addresses(cls, values: list[str]) -> list[str]:
        return _addresses(values)

    @field_validator("service_name", mode="after")
    @classmethod
    def _service_name_with_sentinels(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "sentinels" not in info.data:
            return value  # sentinels itself was refused: that is the one error to report
        sentinels = info.data["sentinels"]
        if sentinels and not value:
            raise ValueError("required when sentinels is set: the name the sentinels monitor the primary under")
        if value and not sentinels:
            raise ValueError("only means something with sentinels = [\"host:port\", ...]")
        return value

    @field_validator("cluster", mode="after")
    @classmethod
    def _cluster_combinations(cls, value: bool, info: ValidationInfo) -> bool:
        if not value:
            return value
        if info.data.get("sentinels"):
            raise ValueError("cluster = true and sentinels cannot be combined: Redis Cluster fails over by itself")
        if info.data.get("db") or _url_database(str(info.data.get("url", ""))):
            raise ValueError("cluster = true needs database 0: Redis Cluster has no other (remove db, or /N from the url)")
        prefix = str(info.data.get("prefix", ""))
        if "{" in prefix or "}" in prefix:
            raise ValueError("cluster = true: prefix must not contain { or }, the keys' hash tags follow it")
        return value

    @field_validator("nodes", mode="after")
    @classmethod
    def _nodes_need_cluster(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and not info.data.get("cluster"):
            raise ValueError("seed nodes only mean something with cluster = true")
        return value

    def topology(self) -> Literal["single", "sentinel", "cluster"]:
        """Which kind of deployment the settings describe."""
        if self.cluster:
            return "cluster"
        return "sentinel" if self.sentinels else "single"

    def uses_tls(self) -> bool:
        """Whether the connection to Redis is TLS: `tls` when set, else the URL's scheme."""
        return self.tls if self.tls is not None else self.url.startswith("rediss://")

    def unused_keys(self) -> set[str]:
        """Keys that do not apply to this topology (`hookmq config show` leaves them out)."""
        unused = set() if self.uses_tls() else {"tls_ca_file", "tls_cert_file", "tls_key_file", "tls_verify"}
        if not self.sentinels:
            unused |= {"sentinels", "service_name", "sentinel_username", "sentinel_password"}
        if not self.cluster:
            unused |= {"cluster", "nodes"}
        if not self.wait_replicas:
            unused.add("wait_timeout")
        return unused


def _url_database(url: str) -> int:
    """The database number in a redis:// URL's path (0 when there is none)."""
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0
