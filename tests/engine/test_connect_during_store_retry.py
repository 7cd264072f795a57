"""A persistent CONNECT while the store's failed writes are being retried is answered: 0x88 (v5) / 3 (v3.1.1), then accepted.

The engine must read a new persistent session from the store, which it does only after every
earlier write is stored (`Persistence.barrier`); while an earlier write failed and its retry is
still under way, that read cannot be trusted, and the CONNECT is refused as Server unavailable
rather than closed without a CONNACK.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Connect, StartBroker, eventually

from hookmq.mqtt.packets import Properties
from hookmq.store.errors import StoreUnavailable
from hookmq.store.records import SubscriptionRecord
from hookmq.testing.raw import RawClient

PERSISTENT = Properties(session_expiry_interval=600)


@pytest.mark.parametrize("level", [4, 5])
async def test_a_connect_while_a_failed_write_is_retried_gets_server_unavailable_then_success(
        start_broker: StartBroker, connect: Connect, tmp_path: Path, level: int) -> None:
    broker = await start_broker(storage={"backend": "sqlite", "durability": "ack_after_write"},
                                plugins={"sqlite_store": {"path": str(tmp_path / "state.sqlite3")}})
    store: Any = broker.persistence.store
    down = True
    retrying = asyncio.Event()
    back = asyncio.Event()
    save_subscription = store.save_subscription

    async def flaky(client_id: str, record: SubscriptionRecord) -> None:
        if down:
            raise StoreUnavailable("the store is down")
        retrying.set()  # the retry of the failed write is under way, and takes a while
        await back.wait()
        await save_subscription(client_id, record)

    store.save_subscription = flaky
    writer, _ = await connect(broker, "writer", clean_start=False, properties=PERSISTENT)
    suback = await writer.subscribe("w/t", 1)
    assert suback.reason_codes == (0x80,)  # not stored: said so
    assert broker.persistence.last_error is not None
    down = False
    await asyncio.wait_for(retrying.wait(), 10)
    persistent = PERSISTENT if level == 5 else Properties()
    client, connack = await connect(broker, "late", level, clean_start=False, properties=persistent)
    assert connack.reason_code == (0x88 if level == 5 else 3)
    assert await client.closed_within(5) is not None
    back.set()
    assert await eventually(lambda: broker.persistence.last_error is None, 10)
    client, connack = await connect(broker, "late", level, clean_start=False, properties=persistent)
    assert connack.reason_code == 0
    assert isinstance(client, RawClient)
