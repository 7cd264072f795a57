"""Operator requests between nodes over the data links: list a node's clients, disconnect one there.

The dashboard of any node shows the clients of the whole cluster and can disconnect a client
connected to another node; it asks that node through :class:`ClusterControl`
(:func:`hookmq.plugins.gossip.control_of`). A request is one reliable link frame of kind
:data:`REQUEST` (a msgpack map: ``id``, ``op`` = ``"clients"`` or ``"disconnect"``, and the
operation's arguments); the answer is one reliable frame of kind :data:`REPLY` with the same
``id``. An answer that does not come within the timeout (the node is gone, its link is down)
raises :class:`ControlTimeout`. Links are authenticated when the cluster has a key, so only a
member can ask; a request that cannot be read is counted and dropped.

``clients`` answers the *connected* clients of the node, sorted by client id, filtered by a
case-insensitive substring ``q``, at most ``limit`` (≤ :data:`MAX_LIMIT`) of them, with the
total that matched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from hookmq.ratelimit import LogLimiter

__all__ = ["MAX_LIMIT", "REPLY", "REQUEST", "ClusterControl", "ControlError", "ControlTimeout"]

log = logging.getLogger("hookmq.plugins.gossip.control")
_limited = LogLimiter(log)

REQUEST = 49
"""Link frame kind of a request (routing uses 32-37, the figures 48)."""
REPLY = 50
"""Link frame kind of an answer."""
MAX_LIMIT = 1000
"""The most clients one answer lists."""
MAX_PENDING = 64
"""Requests of this node waiting for answers at once; more are refused at once."""
CLIENT_FIELDS = ("client_id", "username", "remote_address", "listener", "protocol_level", "connected", "connected_at",
                 "keep_alive", "clean_start", "subscriptions", "inflight", "queued")


class ControlError(Exception):
    """The request could not be made or the other node could not answer it (one line)."""


class ControlTimeout(ControlError):
    """No answer within the timeout."""


def _scalar(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, tuple | list):
        return ":".join(str(part) for part in value)
    return str(value)


def client_summary(found: Any) -> dict[str, object]:
    """The fields of ``broker.client()`` sent over a link (scalars only)."""
    return {key: _scalar(found.get(key)) for key in CLIENT_FIELDS} if isinstance(found, dict) else {}


async def connected_clients(broker: Any, q: str, limit: int) -> tuple[int, list[dict[str, object]]]:
    """This broker's connected clients matching ``q`` (sorted by id): the total and the first ``limit``."""
    needle = q.lower()
    total = 0
    items: list[dict[str, object]] = []
    for index, client_id in enumerate(sorted(broker.client_ids())):
        if index % 1000 == 999:
            await asyncio.sleep(0)  # a large broker: let the loop breathe between chunks
        if needle and needle not in client_id.lower():
            continue
        found = broker.client(client_id, subscriptions=False)
        if not isinstance(found, dict) or not found.get("connected"):
            continue
        total += 1
        if len(items) < limit:
            items.append(client_summary(found))
    return total, items


class ClusterControl:
    """Requests to other nodes and answers to theirs, over the data links."""

    def __init__(self, broker: Any, links: Any) -> None:
        self.broker = broker
        self.links = links
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Requests and answers refused as unreadable, answers nobody waited for, requests served.
        self.counts: dict[str, int] = {"bad_frames": 0, "late_replies": 0, "served": 0}
        self._undo: Callable[[], Any] | None = links.on_receive(self._receive)

    async def clients(self, node: str, q: str = "", limit: int = 100, timeout: float = 3.0) -> tuple[int, list[dict[str, Any]]]:
        """The connected clients of ``node``: (total matching ``q``, the first ``limit``)."""
        answer = await self._ask(node, {"op": "clients", "q": q, "limit": max(1, min(limit, MAX_LIMIT))}, timeout)
        items = answer.get("clients")
        total = answer.get("total")
        if not isinstance(items, list) or not isinstance(total, int):
            raise ControlError(f"node {node} sent an unreadable clients answer")
        return total, [item for item in items if isinstance(item, dict)]

    async def disconnect(self, node: str, client_id: str, timeout: float = 3.0) -> bool:
        """Disconnect ``client_id`` on ``node`` (reason 0x98); False when it is not connected there."""
        answer = await self._ask(node, {"op": "disconnect", "client_id": client_id}, timeout)
        return bool(answer.get("disconnected"))

    async def close(self) -> None:
        """Stop answering; fail the requests still waiting."""
        if self._undo is not None:
            with contextlib.suppress(Exception):
                self._undo()
            self._undo = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ControlError("this node is stopping"))
                future.exception()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _ask(self, node: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.links.is_up(node):
            raise ControlError(f"no link to node {node}")
        if len(self._pending) >= MAX_PENDING:
            raise ControlError("too many cluster requests waiting")
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            sent = self.links.send(node, REQUEST, msgpack.packb({"id": number, **request}, use_bin_type=True), reliable=True)
            if isinstance(sent, asyncio.Future):
                sent.add_done_callback(lambda done: done.cancelled() or done.exception())  # the answer is what counts
            answer = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise ControlTimeout(f"node {node} did not answer within {timeout:g} s") from None
        except ControlError:
            raise
        except Exception as error:  # the link refused the frame (overloaded, the node went)
            raise ControlError(f"cannot ask node {node}: {type(error).__name__}: {error}") from None
        finally:
            self._pending.pop(number, None)
        if answer.get("error"):
            raise ControlError(f"node {node}: {answer['error']}")
        return answer

    def _receive(self, node: str, kind: int, body: bytes) -> None:
        if kind not in (REQUEST, REPLY):
            return
        try:
            fields = msgpack.unpackb(body, raw=False, strict_map_key=True)
            if not isinstance(fields, dict) or not isinstance(fields.get("id"), int):
                raise ValueError("not a request map")
        except Exception as error:  # any bytes may arrive from a peer
            self.counts["bad_frames"] += 1
            _limited.log("bad control", logging.WARNING, "unreadable control frame from node %s: %s", node, error)
            return
        if kind == REPLY:
            future = self._pending.get(fields["id"])
            if future is None or future.done():
                self.counts["late_replies"] += 1
            else:
                future.set_result(fields)
            return
        task = asyncio.get_running_loop().create_task(self._serve(node, fields))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, node: str, request: dict[str, Any]) -> None:
        answer: dict[str, Any] = {"id": request["id"]}
        try:
            answer.update(await self._answer(request))
        except Exception as error:  # answered as an error: the asking node reports it
            answer["error"] = f"{type(error).__name__}: {error}"
        self.counts["served"] += 1
        try:
            sent = self.links.send(node, REPLY, msgpack.packb(answer, use_bin_type=True), reliable=True)
            if isinstance(sent, asyncio.Future):
                sent.add_done_callback(lambda done: done.cancelled() or done.exception())
        except Exception as error:  # the asking node went meanwhile: it times out
            _limited.log("control reply", logging.INFO, "could not answer node %s: %s", node, error)

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "clients":
            q = request.get("q") if isinstance(request.get("q"), str) else ""
            limit = request.get("limit") if isinstance(request.get("limit"), int) else 100
            total, items = await connected_clients(self.broker, str(q), max(1, min(int(str(limit)), MAX_LIMIT)))
            return {"total": total, "clients": items}
        if op == "disconnect":
            client_id = request.get("client_id")
            if not isinstance(client_id, str) or not client_id:
                return {"error": "disconnect needs a client_id"}
            return {"disconnected": bool(await self.broker.disconnect_client(client_id))}
        return {"error": f"unknown operation {op!r}"}
