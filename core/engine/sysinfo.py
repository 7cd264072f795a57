"""The `$SYS` topics: broker figures published as retained messages every N seconds.

State owned: none of its own. Who changes it: nobody; its task sets the `$SYS/broker/…`
retained messages (only those), routes them to local subscribers only, and records the
counters in the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .message import Message

if TYPE_CHECKING:
    from ..hooks import HookFacade
    from .persistence import Persistence
    from .retained import RetainedMessages
    from .router import Router

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

    def __init__(self, info: Callable[[], dict[str, Any]], interval: float, retained: RetainedMessages,
                 router: Router, persistence: Persistence, hooks: HookFacade, broker: object) -> None:
        self.info = info
        self.interval = interval
        self.retained = retained
        self.router = router
        self.persistence = persistence
        self.hooks = hooks
        self.broker = broker

    async def run(self) -> None:
        """Publish now, then every `sys_interval` seconds."""
        while True:
            try:
                await self.publish_once()
            except Exception:
                log.exception("$SYS update failed")
            await asyncio.sleep(self.interval)

    async def publish_once(self) -> None:
        """One update of every `$SYS` topic, then `on_sys_info_tick`."""
        info = self.info()
        retained = self.retained
        for suffix, key in SYS_TOPICS.items():
            topic = f"$SYS/broker/{suffix}"
            payload = str(info[key]).encode() or b"ok"  # an empty retained payload would clear the topic
            current = retained.get(topic)
            if current is not None and current.payload == payload:
                continue
            message = Message(topic, payload, 0, True)
            retained.store(message)
            self.router.route_local(message)
        self.persistence.counters()
        await self.hooks.notify("on_sys_info_tick", broker=self.broker, info=info)
