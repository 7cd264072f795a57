"""Settings of the persistent store: the `[storage]` table of the configuration file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The two durability modes; see docs/storage.md "Durability".
Durability = Literal["ack_after_write", "async"]


class StorageSettings(BaseModel):
    """Which store backend holds persistent state, and when a write counts as done."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(
        default="memory",
        min_length=1,
        description='Name of the store backend: "memory", "sqlite", "redis" or one a third-party plugin registers.',
    )
    durability: Durability = Field(
        default="ack_after_write",
        description=(
            '"ack_after_write": the broker acknowledges a QoS 1/2 message only once the store has committed it. '
            '"async": writes are queued and committed in the background (write-behind); a crash loses '
            "what was still queued."
        ),
    )
    write_batch_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description=(
            "Extra milliseconds a batch waits for more writes before it is committed. 0 = commit as soon as the "
            "previous commit ends (writes arriving meanwhile still share one commit)."
        ),
    )
    write_batch_max: int = Field(
        default=4096, ge=1, le=1_000_000, description="Most operations committed together in one batch."
    )
