"""The SQLite store: one file in WAL mode, written by one dedicated thread with group commits.

The event loop never touches the database. Every operation is a small function of the
connection, queued on a :class:`~hookmq.store.batching.GroupCommitter`; a batch runs in the
store's own thread inside one transaction (each operation in its own savepoint, so one bad
operation does not undo its neighbours), and is committed (and, with ``synchronous=full``,
fsynced) once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar, Literal, cast

from hookmq.store.base import DropPolicy, Store
from hookmq.store.batching import GroupCommitter
from hookmq.store.errors import StoreClosed, StoreError, StoreUnavailable
from hookmq.store.records import OutgoingRecord, SessionRecord, StoredMessage, SubscriptionRecord
from hookmq.store.serialize import (
    decode_message,
    decode_outgoing,
    decode_session,
    decode_subscription,
    encode_message,
    encode_outgoing,
    encode_session,
    encode_subscription,
)
from hookmq.store.settings import StorageSettings

from .schema import CLIENT_TABLES, DATA_TABLES, SCHEMA, SCHEMA_VERSION

__all__ = ["SqliteStore"]

#: One unit of work, run in the store thread with the open connection.
Operation = Callable[[sqlite3.Connection], object]


class SqliteStore(Store):
    """Persistent state in one SQLite file."""

    name: ClassVar[str] = "sqlite"

    def __init__(
        self,
        path: str | Path,
        storage: StorageSettings | None = None,
        *,
        synchronous: Literal["normal", "full"] = "full",
        busy_timeout_ms: int = 5000,
    ) -> None:
        """Prepare a store over the database file ``path`` (created on ``open``)."""
        self.path = Path(path)
        self.storage = storage or StorageSettings()
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._committer: GroupCommitter[Operation] | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def describe(self) -> str:
        """The database file, as an absolute path, and how hard it is synced."""
        return f"sqlite: {self.path.resolve()} (synchronous {self.synchronous})"

    def _connect(self) -> None:
        """Runs in the store thread: open the file and make sure the schema is there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and committed explicitly per batch.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.executescript(SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            conn.close()
            raise StoreError(f"{self.path}: schema version {row[0]}, this hookmq reads version {SCHEMA_VERSION}")
        self._conn = conn

    def _run_batch_sync(self, ops: list[Operation]) -> list[object]:
        """Runs in the store thread: one transaction, one savepoint per operation, one commit."""
        conn = self._conn
        if conn is None:
            raise StoreUnavailable(f"{self.path}: database is not open")
        outcomes: list[object] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in ops:
                outcomes.append(self._run_one(conn, op))
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.rollback()
            raise StoreUnavailable(f"{self.path}: {error}") from error
        return outcomes

    @staticmethod
    def _run_one(conn: sqlite3.Connection, op: Operation) -> object:
        conn.execute("SAVEPOINT op")
        try:
            result = op(conn)
        except (sqlite3.Error, StoreError, ValueError) as error:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            return error if isinstance(error, StoreError) else StoreError(f"sqlite store: {error}")
        conn.execute("RELEASE op")
        return result

    async def _execute(self, ops: list[Operation]) -> list[object]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._run_batch_sync, ops)

    def _batcher(self) -> GroupCommitter[Operation]:
        if self._committer is None:
            raise StoreClosed("sqlite store is not open")
        return self._committer

    async def _write(self, op: Operation) -> None:
        await self._batcher().write(op)

    async def _read(self, op: Operation) -> object:
        return await self._batcher().call(op)

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating if needed) the database file and start the writer thread."""
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookmq-sqlite")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._connect)
        except sqlite3.Error as error:
            self._thread.shutdown(wait=False)
            raise StoreUnavailable(f"{self.path}: {error}") from error
        self._committer = GroupCommitter.started_for(self._execute, "sqlite", self.storage)

    async def close(self) -> None:
        """Commit what is queued, close the file and stop the thread."""
        committer, self._committer = self._committer, None
        if committer is not None:
            await committer.close()
        if self._thread is not None:
            conn, self._conn = self._conn, None
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
            self._thread.shutdown(wait=True)
            self._thread = None

    async def flush(self) -> None:
        """Wait until every queued write is committed."""
        await self._batcher().drain()

    async def clear(self) -> None:
        """Delete every row of every data table."""

        def op(conn: sqlite3.Connection) -> None:
            for table in DATA_TABLES:
                conn.execute(f"DELETE FROM {table}")

        await self._read(op)

    # -- sessions ----------------------------------------------------------------------------

    async def save_session(self, record: SessionRecord) -> None:
        """Insert or replace the session."""
        args = (record.client_id, encode_session(record))
        await self._write(lambda c: c.execute("INSERT OR REPLACE INTO sessions (client_id, data) VALUES (?, ?)", args))

    async def load_session(self, client_id: str) -> SessionRecord | None:
        """The stored session or ``None``."""

        def op(conn: sqlite3.Connection) -> SessionRecord | None:
            row = conn.execute("SELECT data FROM sessions WHERE client_id = ?", (client_id,)).fetchone()
            return None if row is None else decode_session(row[0])

        return cast("SessionRecord | None", await self._read(op))

    async def delete_session(self, client_id: str) -> None:
        """Delete the client's rows from every per-client table."""

        def op(conn: sqlite3.Connection) -> None:
            for table in CLIENT_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE client_id = ?", (client_id,))

        await self._write(op)

    async def list_sessions(self) -> list[SessionRecord]:
        """Every session."""

        def op(conn: sqlite3.Connection) -> list[SessionRecord]:
            return [decode_session(data) for (data,) in conn.execute("SELECT data FROM sessions")]

        return cast("list[SessionRecord]", await self._read(op))

    # -- subscriptions -----------------------------------------------------------------------

    async def save_subscription(self, client_id: str, subscription: SubscriptionRecord) -> None:
        """Upsert by (client, filter), keeping the first insert's position."""
        args = (client_id, subscription.topic_filter, encode_subscription(subscription))
        await self._write(
            lambda c: c.execute(
                "INSERT INTO subscriptions (client_id, topic_filter, data) VALUES (?, ?, ?) "
                "ON CONFLICT (client_id, topic_filter) DO UPDATE SET data = excluded.data",
                args,
            )
        )

    async def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        """Delete one subscription."""
        args = (client_id, topic_filter)
        await self._write(lambda c: c.execute("DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?", args))

    async def load_subscriptions(self, client_id: str) -> list[SubscriptionRecord]:
        """The client's subscriptions in first-made order."""

        def op(conn: sqlite3.Connection) -> list[SubscriptionRecord]:
            rows = conn.execute("SELECT data FROM subscriptions WHERE client_id = ? ORDER BY seq", (client_id,))
            return [decode_subscription(data) for (data,) in rows]

        return cast("list[SubscriptionRecord]", await self._read(op))

    async def load_all_subscriptions(self) -> dict[str, list[SubscriptionRecord]]:
        """Every client's subscriptions."""

        def op(conn: sqlite3.Connection) -> dict[str, list[SubscriptionRecord]]:
            found: dict[str, list[SubscriptionRecord]] = {}
            for client_id, data in conn.execute("SELECT client_id, data FROM subscriptions ORDER BY seq"):
                found.setdefault(client_id, []).append(decode_subscription(data))
            return found

        return cast("dict[str, list[SubscriptionRecord]]", await self._read(op))

    # -- outgoing inflight -------------------------------------------------------------------

    async def save_outgoing(self, client_id: str, record: OutgoingRecord) -> None:
        """Upsert by (client, packet id), keeping the first insert's position."""
        args = (client_id, record.packet_id, encode_outgoing(record))
        await self._write(
            lambda c: c.execute(
                "INSERT INTO outgoing (client_id, packet_id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (client_id, packet_id) DO UPDATE SET data = excluded.data",
                args,
            )
        )

    async def delete_outgoing(self, client_id: str, packet_id: int) -> None:
        """Delete one outgoing record."""
        args = (client_id, packet_id)
        await self._write(lambda c: c.execute("DELETE FROM outgoing WHERE client_id = ? AND packet_id = ?", args))

    async def load_outgoing(self, client_id: str) -> list[OutgoingRecord]:
        """Outgoing records in first-saved order."""

        def op(conn: sqlite3.Connection) -> list[OutgoingRecord]:
            rows = conn.execute("SELECT data FROM outgoing WHERE client_id = ? ORDER BY seq", (client_id,))
            return [decode_outgoing(data) for (data,) in rows]

        return cast("list[OutgoingRecord]", await self._read(op))

    # -- incoming QoS 2 ----------------------------------------------------------------------

    async def save_incoming(self, client_id: str, packet_id: int) -> None:
        """Remember a QoS 2 packet id."""
        args = (client_id, packet_id)
        await self._write(lambda c: c.execute("INSERT OR IGNORE INTO incoming (client_id, packet_id) VALUES (?, ?)", args))

    async def delete_incoming(self, client_id: str, packet_id: int) -> None:
        """Forget a QoS 2 packet id."""
        args = (client_id, packet_id)
        await self._write(lambda c: c.execute("DELETE FROM incoming WHERE client_id = ? AND packet_id = ?", args))

    async def load_incoming(self, client_id: str) -> list[int]:
        """QoS 2 packet ids, ascending."""

        def op(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute("SELECT packet_id FROM incoming WHERE client_id = ? ORDER BY packet_id", (client_id,))
            return [packet_id for (packet_id,) in rows]

        return cast("list[int]", await self._read(op))

    # -- offline queue -----------------------------------------------------------------------

    async def queue_append(
        self, client_id: str, message: StoredMessage, limit: int, policy: DropPolicy = "drop_oldest"
    ) -> StoredMessage | None:
        """Append within ``limit``; returns the dropped message (see :meth:`Store.queue_append`)."""
        if limit <= 0:
            return message
        data = encode_message(message)

        def op(conn: sqlite3.Connection) -> StoredMessage | None:
            (length,) = conn.execute("SELECT COUNT(*) FROM queue WHERE client_id = ?", (client_id,)).fetchone()
            if length < limit:
                conn.execute("INSERT INTO queue (client_id, data) VALUES (?, ?)", (client_id, data))
                return None
            if policy == "drop_newest":
                return message
            excess = conn.execute(
                "SELECT seq, data FROM queue WHERE client_id = ? ORDER BY seq LIMIT ?", (client_id, length - limit + 1)
            ).fetchall()
            conn.execute("DELETE FROM queue WHERE client_id = ? AND seq <= ?", (client_id, excess[-1][0]))
            conn.execute("INSERT INTO queue (client_id, data) VALUES (?, ?)", (client_id, data))
            return decode_message(excess[0][1])

        return cast("StoredMessage | None", await self._read(op))

    def _head(self, conn: sqlite3.Connection, client_id: str, count: int | None) -> list[tuple[int, bytes]]:
        rows = conn.execute(
            "SELECT seq, data FROM queue WHERE client_id = ? ORDER BY seq LIMIT ?",
            (client_id, -1 if count is None else count),
        )
        return [(seq, data) for seq, data in rows]

    async def queue_peek(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """The head of the queue, not removed."""

        def op(conn: sqlite3.Connection) -> list[StoredMessage]:
            return [decode_message(data) for _, data in self._head(conn, client_id, count)]

        return cast("list[StoredMessage]", await self._read(op))

    async def queue_pop(self, client_id: str, count: int | None = None) -> list[StoredMessage]:
        """Remove and return the head of the queue."""

        def op(conn: sqlite3.Connection) -> list[StoredMessage]:
            rows = self._head(conn, client_id, count)
            if rows:
                conn.execute("DELETE FROM queue WHERE client_id = ? AND seq <= ?", (client_id, rows[-1][0]))
            return [decode_message(data) for _, data in rows]

        return cast("list[StoredMessage]", await self._read(op))

    async def queue_length(self, client_id: str) -> int:
        """Queued message count."""

        def op(conn: sqlite3.Connection) -> int:
            (length,) = conn.execute("SELECT COUNT(*) FROM queue WHERE client_id = ?", (client_id,)).fetchone()
            return int(length)

        return cast(int, await self._read(op))

    # -- retained ----------------------------------------------------------------------------

    async def save_retained(self, message: StoredMessage) -> None:
        """Insert or replace the retained message of its topic."""
        args = (message.publish.topic, encode_message(message))
        await self._write(lambda c: c.execute("INSERT OR REPLACE INTO retained (topic, data) VALUES (?, ?)", args))

    async def delete_retained(self, topic: str) -> None:
        """Delete a retained message."""
        await self._write(lambda c: c.execute("DELETE FROM retained WHERE topic = ?", (topic,)))

    async def load_retained(self) -> list[StoredMessage]:
        """Every retained message."""

        def op(conn: sqlite3.Connection) -> list[StoredMessage]:
            return [decode_message(data) for (data,) in conn.execute("SELECT data FROM retained")]

        return cast("list[StoredMessage]", await self._read(op))

    # -- $SYS counters -----------------------------------------------------------------------

    async def save_counters(self, counters: dict[str, int | float | str]) -> None:
        """Replace the ``$SYS`` figures (values kept as JSON so their types survive)."""
        rows = [(name, json.dumps(value)) for name, value in counters.items()]

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM counters")
            conn.executemany("INSERT INTO counters (name, value) VALUES (?, ?)", rows)

        await self._write(op)

    async def load_counters(self) -> dict[str, int | float | str]:
        """The ``$SYS`` figures."""

        def op(conn: sqlite3.Connection) -> dict[str, int | float | str]:
            return {name: json.loads(value) for name, value in conn.execute("SELECT name, value FROM counters")}

        return cast("dict[str, int | float | str]", await self._read(op))
