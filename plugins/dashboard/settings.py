"""Settings of the dashboard plugin: the `[plugins.dashboard]` table of the configuration file.

This module imports only pydantic, so the broker can validate the table even when the
dashboard's optional dependencies (aiohttp, prometheus-client) are not installed.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hookmq.transport.config import parse_address


class DashboardSettings(BaseModel):
    """Where the dashboard listens, who may use it, and how often it samples the broker."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(
        "127.0.0.1:8080",
        description="Go-style listen address of the HTTP server: '127.0.0.1:8080' (this machine only, the default), "
        "':8080' (every interface). Port 0 picks a free port. The CLI's --info flag sets it.",
    )
    token: str | None = Field(
        None,
        min_length=16,
        description="Secret required by the API and the page (Bearer header or login form). "
        "When unset (and the request is not an allowed loopback one) a random token is generated at start and logged once.",
        json_schema_extra={"secret": True},
    )
    open_on_loopback: bool = Field(
        False,
        description="Let requests from 127.0.0.1/::1 that name a loopback host in their Host header in without a token.",
    )
    sample_interval: float = Field(
        1.0, ge=0.05, le=60, description="Seconds between two samples of the broker's figures (broker.info())."
    )
    history_seconds: float = Field(
        600.0, ge=1, le=86_400, description="How far back the charts and /api/history reach, in seconds."
    )
    live_queue_frames: int = Field(
        8, ge=1, le=1024,
        description="Frames queued per browser before the oldest are dropped (a slow browser skips samples).",
    )
    live_stuck_seconds: float = Field(
        10.0, gt=0, description="A browser that cannot take one frame for this long is disconnected."
    )
    session_hours: float = Field(12.0, gt=0, description="Lifetime of a login-form session cookie, in hours.")
    secure_cookie: bool | None = Field(
        None,
        description="Mark the session cookie Secure (sent over HTTPS only). Unset: Secure when the login request came "
        "over HTTPS, directly or as a trusted proxy's X-Forwarded-Proto says.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-Proto header is believed.",
    )
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds from a request's first byte until its headers are complete; then the connection is closed."
    )
    request_timeout: float = Field(
        30.0, gt=0,
        description="Seconds a request may take once its headers arrived: reading its body and answering (the live "
        "WebSocket feed is exempt); then the connection is closed.",
    )
    idle_timeout: float = Field(
        30.0, gt=0, description="Seconds a connection may stay open with no request in progress (keep-alive)."
    )
    max_connections: int = Field(
        256, ge=1, description="HTTP connections the dashboard holds at once; more are closed as they arrive."
    )
    max_connections_per_address: int = Field(
        64, ge=1,
        description="HTTP connections one remote address holds at once (behind a reverse proxy every browser has the "
        "proxy's address: raise it to max_connections there).",
    )
    descriptor_reserve: int = Field(
        16, ge=0,
        description="File descriptors the MQTT listeners leave free for the dashboard, so /healthz answers while MQTT "
        "connections fill the process's open-file limit.",
    )
    mqtt_descriptor_reserve: int = Field(
        64, ge=0,
        description="File descriptors the dashboard leaves free for the MQTT listeners: it refuses connections that "
        "would take them.",
    )

    @field_validator("address")
    @classmethod
    def _address_parses(cls, value: str) -> str:
        parse_address(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @model_validator(mode="after")
    def _history_holds_a_sample(self) -> DashboardSettings:
        if self.history_seconds < self.sample_interval:
            raise ValueError("history_seconds must be at least sample_interval")
        return self

    @property
    def history_length(self) -> int:
        """How many samples the history ring buffer keeps."""
        return max(2, int(self.history_seconds / self.sample_interval) + 1)
