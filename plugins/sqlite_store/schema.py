"""The SQLite schema. Records are stored as the compact blobs of :mod:`hookmq.store.serialize`."""

from __future__ import annotations

#: Bumped when the tables change; a file with another version is refused rather than misread.
SCHEMA_VERSION = 1

# ``seq`` columns are rowid aliases: an upsert keeps the row (and so the order) of the first insert.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    topic_filter TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (client_id, topic_filter)
);
CREATE TABLE IF NOT EXISTS outgoing (
    seq INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (client_id, packet_id)
);
CREATE TABLE IF NOT EXISTS incoming (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_client ON queue (client_id, seq);
CREATE TABLE IF NOT EXISTS retained (
    topic TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: Tables holding one client's state, cleared by ``delete_session``.
CLIENT_TABLES = ("sessions", "subscriptions", "outgoing", "incoming", "queue")

#: Every data table, cleared by ``clear``.
DATA_TABLES = (*CLIENT_TABLES, "retained", "counters")
