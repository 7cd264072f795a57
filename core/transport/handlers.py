"""Running the engine's per-connection handler so that its failures stay contained."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .base import Connection

logger = logging.getLogger("hookmq.transport")

Handler = Callable[[Connection], Awaitable[None]]
"""What the engine gives `start_listeners`: a coroutine function run once per accepted client."""


async def run_handler(handler: Handler, connection: Connection, listener: str) -> None:
    """Await the handler for one connection; log a failure, and close the connection either way.

    The connection is closed gracefully (buffered bytes are flushed) when the handler returns
    or raises, and aborted when the handler is cancelled (the listener is shutting down). A
    handler that returns having handed the connection to a receiver (`Connection.set_receiver`)
    leaves it open: the receiver ends it.
    """
    try:
        await handler(connection)
    except asyncio.CancelledError:
        connection.abort()
        raise
    except Exception:
        logger.exception("listener %s: connection handler failed for %s", listener, connection.remote_address)
        connection.close()
    else:
        if not connection.is_pushing():
            connection.close()
