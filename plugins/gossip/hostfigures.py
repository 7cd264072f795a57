"""The host's figures under ``$SYS/host/…``, for the workers of one host (``hookmq --workers``).

Each worker's ``$SYS/broker/…`` are its own, as each cluster node's are. The workers of a host
already exchange their figures once a second (:mod:`.figures`); every worker sums those of
its live siblings (the members whose Unix link socket lies in its own runtime directory) and
publishes, every ``sys_interval``, the host's totals and one breakdown per worker::

    $SYS/host/workers                                  workers reporting (fresh figures)
    $SYS/host/clients/connected                        summed over them
    $SYS/host/subscriptions/count
    $SYS/host/messages/received, …/sent                counters since each worker started
    $SYS/host/messages/received/per_second, …/sent/per_second
    $SYS/host/workers/<node>/clients/connected         and subscriptions/count, messages/received, messages/sent

A subscriber on any worker sees the same host figures. :func:`host_topics` is sans-I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .figures import FigureBook
from .link.links import unix_endpoint

__all__ = ["HostFigures", "host_topics", "siblings"]

log = logging.getLogger("hookmq.plugins.gossip.hostfigures")


def host_topics(book: FigureBook, now: float, workers: Iterable[str]) -> dict[str, str]:
    """``$SYS/host/…`` topic -> payload text, from the fresh figures of ``workers`` (this node included)."""
    chosen = [f for f in (book.of(name) for name in sorted(set(workers))) if f is not None and book.is_fresh(f, now)]
    topics = {
        "$SYS/host/workers": str(len(chosen)),
        "$SYS/host/clients/connected": str(sum(f.clients for f in chosen)),
        "$SYS/host/subscriptions/count": str(sum(f.subscriptions for f in chosen)),
        "$SYS/host/messages/received": str(sum(f.messages_received for f in chosen)),
        "$SYS/host/messages/sent": str(sum(f.messages_sent for f in chosen)),
        "$SYS/host/messages/received/per_second": f"{sum(f.messages_in_per_second for f in chosen):.3f}",
        "$SYS/host/messages/sent/per_second": f"{sum(f.messages_out_per_second for f in chosen):.3f}",
    }
    for figures in chosen:
        prefix = f"$SYS/host/workers/{figures.node}"
        topics[f"{prefix}/clients/connected"] = str(figures.clients)
        topics[f"{prefix}/subscriptions/count"] = str(figures.subscriptions)
        topics[f"{prefix}/messages/received"] = str(figures.messages_received)
        topics[f"{prefix}/messages/sent"] = str(figures.messages_sent)
    return topics


def siblings(cluster: Any, own_unix_path: str) -> list[str]:
    """This node and the live members whose Unix link socket shares its directory: the host's workers."""
    names = [cluster.name]
    for member in cluster.members():
        metadata = member.metadata
        if member.name != cluster.name and metadata is not None and unix_endpoint(own_unix_path, metadata.extra):
            names.append(member.name)
    return names


class HostFigures:
    """Publishes :func:`host_topics` every ``interval`` seconds as local ``$SYS`` figures."""

    def __init__(self, broker: Any, cluster: Any, book: FigureBook, unix_path: str, interval: float,
                 clock: Callable[[], float] | None = None) -> None:
        self.broker = broker
        self.cluster = cluster
        self.book = book
        self.unix_path = unix_path
        self.interval = interval
        self._clock = clock or time.time
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start publishing (nothing when ``$SYS`` is off: ``sys_interval = 0``)."""
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="hookmq-host-figures")

    def publish(self) -> None:
        """Set every host figure now."""
        for topic, payload in host_topics(self.book, self._clock(), siblings(self.cluster, self.unix_path)).items():
            self.broker.publish_system(topic, payload.encode())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.publish()
            except Exception:
                log.exception("host figures: publishing failed")

    async def stop(self) -> None:
        """Stop publishing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
