"""What the log says about each client connection: one line when it connects, one when it ends.

The engine calls `ConnectionLog.connected` after CONNACK accepted a client and
`ConnectionLog.ended` when its connection is over; where the end is decided (a DISCONNECT
from the client, a protocol error, a takeover, ...) the engine records why with
`Client.note_end`. Lines go to the `hookmq.connection` logger at INFO through one
`LogLimiter` per broker, one bucket per kind of line, so a flood of bad connections writes a
bounded number of lines; what is held back is counted (``broker.info()["log_lines_suppressed"]``).
docs/operations.md shows every line.

State owned: the rate limiter of the connection lines (shared with the listeners) and its count
of suppressed lines. Who changes it: the connection handlers and the handshake, by calling
`connected` and `ended`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..eventlog import Field, log_event, new_limiter
from ..mqtt.reason_codes import ReasonCode
from .client import EndCause

if TYPE_CHECKING:
    from ..ratelimit import LogLimiter
    from .client import Client

__all__ = ["ConnectionLog", "protocol_name", "reason_text"]

PROTOCOL_NAMES = {3: "3.1", 4: "3.1.1", 5: "5.0"}


def protocol_name(level: int) -> str:
    """``5`` -> ``"5.0"``, ``4`` -> ``"3.1.1"``, ``3`` -> ``"3.1"``."""
    return PROTOCOL_NAMES.get(level, str(level))


def reason_text(code: int, disconnect: bool = False) -> str:
    """``0x86 bad user name or password``; 0x00 in a DISCONNECT is ``normal disconnection``."""
    if code == 0 and disconnect:
        return "0x00 normal disconnection"
    try:
        name = ReasonCode(code).name.lower().replace("_", " ")
    except ValueError:
        name = "unknown reason code"
    return f"0x{code:02X} {name}"


class ConnectionLog:
    """The connect and end-of-connection lines of one broker, rate-limited."""

    def __init__(self, per_second: float = 10.0, burst: int = 100) -> None:
        #: Shared with the broker's listeners (TLS and WebSocket refusals).
        self.limiter: LogLimiter = new_limiter(per_second, burst)

    @property
    def suppressed(self) -> int:
        """Lines counted instead of written since the broker started."""
        return self.limiter.suppressed_total

    def connected(self, client: Client, session_present: bool) -> None:
        """CONNACK accepted ``client``: who, from where, how."""
        if not self.limiter.logger.isEnabledFor(logging.INFO):
            return  # the fields are not even gathered when nobody reads them
        session = "clean-start" if client.clean_start else ("resumed" if session_present else "new")
        log_event(self.limiter, logging.INFO, "connected", {
            **_identity(client),
            "protocol": protocol_name(client.protocol.level),
            "session": session,
            "keep_alive": client.protocol.keep_alive,
        })

    def ended(self, client: Client) -> None:
        """``client``'s connection is over: log it with its cause (see module docstring)."""
        if not self.limiter.logger.isEnabledFor(logging.INFO):  # (DEBUG enabled implies INFO)
            return
        cause = client.end_cause
        if client.established:
            event = "disconnected"
            if cause is None:
                cause = EndCause("connection-closed", detail="closed by the client without DISCONNECT")
        elif cause is not None and cause.kind == "refused":
            event = "refused"
        else:
            event = "closed"  # the connection ended before any CONNECT was accepted
            if cause is None:
                # Nothing but a TCP open and close (a port probe, a health check): not worth INFO.
                log_event(self.limiter, logging.DEBUG, "closed", {**_identity(client), "cause": "closed-before-connect"})
                return
        fields: dict[str, Field] = {**_identity(client)}
        if event != "disconnected" and client.connect is not None:
            fields["protocol"] = protocol_name(client.protocol.level)
        fields["cause"] = cause.kind
        if cause.reason_code is not None:
            fields["reason"] = reason_text(cause.reason_code, disconnect=event == "disconnected")
        fields["detail"] = cause.detail
        if client.established:
            fields["duration"] = round(max(0.0, time.time() - client.connected_at), 1)
        log_event(self.limiter, logging.INFO, event, fields, key=f"{event}:{cause.kind}")

    def summary(self) -> None:
        """At shutdown: say how many lines the rate limit held back, if any."""
        if self.suppressed:
            self.limiter.logger.info("%d connection log lines were suppressed by rate limiting since start",
                                     self.suppressed)


def _identity(client: Client) -> dict[str, Field]:
    """Who the client is and where it came from (client id and user name only once known)."""
    connect = client.connect
    return {
        "client_id": (client.client_id or connect.client_id) if connect is not None else None,
        "username": (client.username if client.username is not None else "-") if connect is not None else None,
        "remote": client.remote_address,
        "listener": client.listener,
    }
