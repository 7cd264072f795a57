"""The SQLite store: file format, writer thread, group commit, crash durability, plugin wiring."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest

from hookmq.plugins import sqlite_store
from hookmq.plugins.sqlite_store import SqliteStore, SqliteStoreSettings
from hookmq.plugins.sqlite_store.store import Operation
from hookmq.store.errors import StoreClosed, StoreError
from hookmq.store.settings import StorageSettings
from hookmq.testing.store_contract import sample_message, sample_session


class CountingStore(SqliteStore):
    """Records each batch's size and the thread it ran on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def _run_batch_sync(self, ops: list[Operation]) -> list[object]:
        self.batches.append(len(ops))
        self.threads.add(threading.current_thread().name)
        return super()._run_batch_sync(ops)


async def test_file_is_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "state.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.save_session(sample_session())
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


async def test_batches_run_on_the_store_thread_not_the_loop(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        await store.save_retained(sample_message("x"))
    finally:
        await store.close()
    assert store.threads and all(name.startswith("hookmq-sqlite") for name in store.threads)
    assert threading.current_thread().name not in store.threads


async def test_concurrent_acknowledged_writes_share_commits(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        await asyncio.gather(*(store.save_incoming("c", packet_id) for packet_id in range(1, 1001)))
        assert await store.load_incoming("c") == list(range(1, 1001))
    finally:
        await store.close()
    assert sum(store.batches) >= 1001
    assert len(store.batches) <= 100  # 1000 writes, each awaited, yet few commits


async def test_write_batch_max_bounds_a_batch(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "s.sqlite3", StorageSettings(write_batch_max=10))
    await store.open()
    try:
        await asyncio.gather(*(store.save_incoming("c", packet_id) for packet_id in range(1, 101)))
    finally:
        await store.close()
    assert max(store.batches) <= 10


async def test_write_behind_returns_before_commit_and_flush_commits(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path, StorageSettings(durability="async", write_batch_ms=50))
    await store.open()
    try:
        for n in range(50):
            await store.save_retained(sample_message(f"r/{n}"))
        await store.flush()
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT COUNT(*) FROM retained").fetchone()[0] == 50
    finally:
        await store.close()


async def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 999"):
        await SqliteStore(path).open()


async def test_unusable_after_close(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.load_retained()


_CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from hookmq.plugins.sqlite_store import SqliteStore
    from hookmq.testing.store_contract import sample_session

    async def main() -> None:
        store = SqliteStore(sys.argv[1])
        await store.open()
        await asyncio.gather(*(store.save_session(sample_session(f"c{n}")) for n in range(200)))
        print("acknowledged", flush=True)
        time.sleep(60)  # killed here, without close()

    asyncio.run(main())
    """
)


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    process = subprocess.Popen([sys.executable, "-c", _CRASHING_WRITER, str(path)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=60)
        assert line.strip() == b"acknowledged"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
    store = SqliteStore(path)
    await store.open()
    try:
        assert len(await store.list_sessions()) == 200
        assert await store.load_session("c7") == sample_session("c7")
    finally:
        await store.close()


def test_plugin_registers_the_sqlite_backend(tmp_path: Path) -> None:
    registered: dict[str, Any] = {}
    settings = SqliteStoreSettings(path=str(tmp_path / "p.sqlite3"), synchronous="normal")
    sqlite_store.register_stores(register=registered.__setitem__, settings=settings)

    class Config:
        storage = StorageSettings(backend="sqlite")

    built = registered["sqlite"](Config())
    assert isinstance(built, SqliteStore)
    assert built.path == tmp_path / "p.sqlite3" and built.synchronous == "normal"
    assert sqlite_store.plugin_settings_model() is SqliteStoreSettings
    assert sqlite_store.HOOKMQ_DEFAULT_ENABLED is True


def test_settings_defaults_and_validation() -> None:
    assert SqliteStoreSettings().path == "hookmq.sqlite3"
    with pytest.raises(pydantic.ValidationError, match="synchronous"):
        SqliteStoreSettings.model_validate({"synchronous": "off"})
    with pytest.raises(pydantic.ValidationError, match="pth"):
        SqliteStoreSettings.model_validate({"pth": "x"})
