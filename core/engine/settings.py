"""Settings of the MQTT engine: the `[mqtt]` table of the configuration file.

State owned: the validated limits and capabilities. Who changes it: nobody after the
configuration is loaded; every part reads it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MqttSettings(BaseModel):
    """Protocol limits and capabilities; those a v5 client must know are sent in CONNACK."""

    model_config = ConfigDict(extra="forbid")

    max_packet_size: int = Field(
        1_048_576, ge=16, le=268_435_455,
        description="Largest packet accepted from a client, in bytes (advertised in CONNACK when below the protocol maximum); "
        "a larger one is refused from its fixed header with 0x95 before its body is buffered. Bounds what one PUBLISH costs "
        "(a few times its size while it is received, decoded and routed). 268435455 = the protocol maximum.",
    )
    max_incomplete_packet_bytes: int = Field(
        67_108_864, ge=65_536,
        description="Bytes all connections together may hold in partly received packets of 64 KiB or more; a client "
        "starting a packet the budget cannot hold is disconnected with 0x97 Quota exceeded (v3: closed). Bounds what many "
        "slow uploads cost together.",
    )
    receive_maximum: int = Field(
        1024, ge=1, le=65_535,
        description="QoS 1/2 PUBLISH packets a client may have unacknowledged towards the broker.",
    )
    max_inflight: int = Field(
        1024, ge=1, le=65_535,
        description="QoS 1/2 messages the broker keeps unacknowledged towards one client (also bounded by the client's Receive Maximum).",
    )
    topic_alias_maximum: int = Field(
        1024, ge=0, le=65_535,
        description="Topic aliases a v5 client may use towards the broker (0 disables them).",
    )
    maximum_qos: Literal[0, 1, 2] = Field(2, description="Highest QoS the broker accepts and grants.")
    retain_available: bool = Field(True, description="Whether retained messages are supported.")
    wildcard_subscription_available: bool = Field(True, description="Whether `+` and `#` filters are allowed.")
    subscription_identifier_available: bool = Field(True, description="Whether subscription identifiers are supported.")
    shared_subscription_available: bool = Field(True, description="Whether `$share/…` subscriptions are supported.")
    max_keepalive: int = Field(
        65_535, ge=0, le=65_535,
        description="Longest keep-alive granted: a client asking for more is told this value by Server Keep Alive (v5); below 65535, a client asking for 0 (no keep-alive) is given it too. 0 = no limit.",
    )
    max_session_expiry: int = Field(
        4_294_967_295, ge=0, le=4_294_967_295,
        description="Longest session expiry interval granted, in seconds.",
    )
    max_message_expiry: int | None = Field(
        None, ge=1, description="Upper bound applied to every message expiry interval, in seconds; none by default.",
    )
    max_queued_messages: int = Field(
        1000, ge=0,
        description="Messages kept per client beyond its inflight window (offline queue or slow consumer).",
    )
    queue_drop_policy: Literal["drop_oldest", "drop_newest"] = Field(
        "drop_oldest", description="Which message is dropped when a client's queue is full (`on_publish_dropped` fires).",
    )
    max_write_buffer: int = Field(
        1_048_576, ge=4096,
        description="Bytes buffered towards one client before its QoS 0 messages are dropped and QoS 1/2 messages are queued.",
    )
    max_subscriptions_per_client: int = Field(
        1000, ge=0,
        description="Subscriptions one session may hold; a SUBSCRIBE beyond it is refused per filter with 0x97 (v3: 0x80). "
        "Each costs about 700 bytes, so the default bounds one client at about 0.7 MB. 0 = no limit.",
    )
    max_connections: int = Field(0, ge=0, description="Simultaneous client connections allowed; 0 = no limit.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds a new connection has to send CONNECT.")
    client_id_max_length: int = Field(65_535, ge=23, le=65_535, description="Longest client identifier accepted.")
    allow_empty_client_id: bool = Field(True, description="Whether an empty client id gets an assigned one.")
    sys_interval: float = Field(10.0, ge=0, description="Seconds between `$SYS` updates; 0 disables them.")
