"""Settings of the ``sqlite_store`` plugin: the ``[plugins.sqlite_store]`` table."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SqliteStoreSettings(BaseModel):
    """Where the database file lives and how hard SQLite syncs it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(default="hookmq.sqlite3", min_length=1, description="Database file (relative paths are relative to the working directory).")
    synchronous: Literal["normal", "full"] = Field(
        default="full",
        description=(
            '"full": every commit is fsynced, so acknowledged messages survive a power loss. '
            '"normal": commits survive a crash of the broker process but the last ones may be lost on power loss; faster.'
        ),
    )
    busy_timeout_ms: int = Field(default=5000, ge=0, description="How long to wait for a lock held by another process (e.g. a migration).")
