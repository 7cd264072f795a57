"""The `$SYS` topics: broker figures published as retained messages every N seconds."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .message import Message

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger("hookmq.sys")

#: `$SYS` topic (under `$SYS/broker/`) → key of `Broker.info()`.
SYS_TOPICS: dict[str, str] = {
    "version": "version",
    "uptime": "uptime",
    "clients/connected": "clients_connected",
    "clients/disconnected": "clients_disconnected",
    "clients/maximum": "clients_maximum",
    "clients/total": "clients_total",
    "subscriptions/count": "subscriptions",
    "retained messages/count": "retained",
    "retained messages/system": "retained_system",
    "messages/inflight": "inflight",
    "messages/queued": "queued",
    "messages/received": "messages_received",
    "messages/sent": "messages_sent",
    "messages/dropped": "messages_dropped",
    "bytes/received": "bytes_received",
    "bytes/sent": "bytes_sent",
    "packets/received": "packets_received",
    "packets/sent": "packets_sent",
    "store/backend": "store_backend",
    "store/error": "store_error",
    "store/pending writes": "store_pending_writes",
    "log/lines suppressed": "log_lines_suppressed",
}


class SysPublisher:
    """Publishes the figures of `Broker.info()` under `$SYS/broker/…`."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def run(self) -> None:
        """Publish now, then every `sys_interval` seconds."""
        interval = self.broker.settings.sys_interval
        while True:
            try:
                await self.publish_once()
            except Exception:
                log.exception("$SYS update failed")
            await asyncio.sleep(interval)

    async def publish_once(self) -> None:
        """One update of every `$SYS` topic, then `on_sys_info_tick`."""
        broker = self.broker
        info = broker.info()
        for suffix, key in SYS_TOPICS.items():
            topic = f"$SYS/broker/{suffix}"
            payload = str(info[key]).encode() or b"ok"  # an empty retained payload would clear the topic
            current = broker.retained.get(topic)
            if current is not None and current.payload == payload:
                continue
            message = Message(topic, payload, 0, True)
            broker.retained.store(message)
            broker.route(message)
        broker.persistence.counters()
        await broker.hooks.notify("on_sys_info_tick", broker=broker, info=info)
