"""Running the engine's per-connection handler so that its failures stay contained."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .base import Connection

logger = logging.getLogger("hookmq.transport")

Handler = Callable[[Connection], Awaitable[None] | None]
"""What the engine gives `start_listeners`: called once per accepted client, as soon as it is accepted.

It returns an awaitable (a coroutine function's call, say) that the listener awaits as the
connection's handler, or None when it took the connection without one: it set a receiver
(`Connection.set_receiver`), and the receiver ends the connection. A TCP or TLS listener calls
it from the accepting event itself, so a handler that takes the connection costs no task.
"""


def open_connection(handler: Handler, connection: Connection, listener: str) -> Awaitable[None] | None:
    """Call the handler for a new connection: the awaitable to await with `run_handler`, or None.

    None when the handler took the connection (it is pushing), or failed (logged, the
    connection closed), or returned nothing without taking it (the connection is closed).
    """
    try:
        body = handler(connection)
    except Exception:
        logger.exception("listener %s: connection handler failed for %s", listener, connection.remote_address)
        connection.close()
        return None
    if body is None and not connection.is_pushing():
        connection.close()
    return body


async def run_handler(body: Awaitable[None], connection: Connection, listener: str) -> None:
    """Await a connection's handler; log a failure, and close the connection either way.

    The connection is closed gracefully (buffered bytes are flushed) when the handler returns
    or raises, and aborted when the handler is cancelled (the listener is shutting down). A
    handler that returns having handed the connection to a receiver (`Connection.set_receiver`)
    leaves it open: the receiver ends it.
    """
    try:
        await body
    except asyncio.CancelledError:
        connection.abort()
        raise
    except Exception:
        logger.exception("listener %s: connection handler failed for %s", listener, connection.remote_address)
        connection.close()
    else:
        if not connection.is_pushing():
            connection.close()
