"""An offline queue that was partly drained before a crash comes back exactly as it was left."""

from __future__ import annotations

from pathlib import Path

import pytest
from durability_helpers import (
    BrokerFactory,
    collect_until,
    connect,
    duplicates_without_dup,
    indexes,
    payload,
    publish_pipelined,
    settle,
    sqlite_config,
)

from hookmq.mqtt.packets import Puback

QUEUED = 200
ACKED = 60
WINDOW = 5


@pytest.mark.timeout(60)
async def test_partly_drained_queue_survives_sigkill(tmp_path: Path, brokers: BrokerFactory) -> None:
    broker = brokers(sqlite_config(tmp_path))
    reader, _ = await connect(broker.port, "reader", clean=False, expiry=300)
    await reader.subscribe("q/#", qos=1)
    await reader.disconnect()
    publisher, _ = await connect(broker.port, "publisher")
    run = await publish_pipelined(publisher, "q/{}", QUEUED)
    assert run.acked == set(range(QUEUED))

    reader, present = await connect(broker.port, "reader", clean=False, expiry=300, receive_maximum=WINDOW)
    assert present
    for expected in range(ACKED):
        message = await reader.receive_message(ack=False)
        assert message.payload == payload(expected)
        await reader.send(Puback(message.packet_id))
    await settle(reader)  # on the same connection: after the acknowledgements above
    broker.kill()
    await reader.close()
    await publisher.close()

    broker.start()
    reader, present = await connect(broker.port, "reader", clean=False, expiry=300)
    assert present
    marker, _ = await connect(broker.port, "marker")
    await marker.publish("q/marker", b"end", qos=1)
    after = await collect_until(reader, b"end")
    received = indexes(after)
    assert duplicates_without_dup(after) == []
    assert set(received) == set(range(ACKED, QUEUED))
    assert received == sorted(received)
    await reader.disconnect()
    await marker.disconnect()
