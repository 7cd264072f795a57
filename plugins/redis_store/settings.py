"""Settings of the ``redis_store`` plugin: the ``[plugins.redis_store]`` table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


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

    def uses_tls(self) -> bool:
        """Whether the connection to Redis is TLS: `tls` when set, else the URL's scheme."""
        return self.tls if self.tls is not None else self.url.startswith("rediss://")

    def unused_keys(self) -> set[str]:
        """The TLS keys when the connection is not TLS (`hookmq config show` leaves them out)."""
        return set() if self.uses_tls() else {"tls_ca_file", "tls_cert_file", "tls_key_file", "tls_verify"}
