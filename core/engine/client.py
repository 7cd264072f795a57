"""One client connection as the rest of the engine and the plugins see it.

A `Client` lives as long as one network connection (its `Session` may outlive it). It joins
the transport (`hookmq.transport.base.Connection`) to the connection's `ProtocolState` and
carries what plugins read about the client (``client_id``, ``username``, ``remote_address``,
``listener``, ``protocol_level``, ``tls_peer_certificate``, ``connect``, ``broker``). Its
methods write packets and bytes and end the connection; reading is the connection handler's
job (`hookmq.engine.connection`).

State owned: the identity above, the connection's flags (established, detached, clean
disconnect, the disconnect reason and error, why it ends for the log) and the one pending drain
waiter. Who changes it: the CONNECT handshake sets the identity once; the connection handler
and the session lifecycle set the flags; the delivery path only writes through it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..mqtt.codec import encode
from ..mqtt.packets import Connack, Connect, Disconnect, Packet, Puback, Pubcomp, Pubrec, Pubrel
from ..mqtt.reason_codes import ReasonCode

if TYPE_CHECKING:
    from ..mqtt.errors import ProtocolError
    from ..transport.base import Connection
    from .deferred import Deferred
    from .protocol import ProtocolState
    from .stats import Stats

#: Seconds a closing connection may take to flush before it is cut (a peer that stopped reading).
CLOSE_GRACE = 5.0

#: The acknowledgement packet of each first byte `Client.send_ack` writes.
_ACK_KINDS: dict[int, type[Puback] | type[Pubrec] | type[Pubrel] | type[Pubcomp]] = {
    0x40: Puback, 0x50: Pubrec, 0x62: Pubrel, 0x70: Pubcomp,
}

#: Why the server closes, by the reason code of the DISCONNECT it sends (`Client.kick`).
KICK_CAUSES: dict[int, str] = {
    ReasonCode.SESSION_TAKEN_OVER: "taken-over",
    ReasonCode.SERVER_SHUTTING_DOWN: "server-shutdown",
    ReasonCode.KEEP_ALIVE_TIMEOUT: "keep-alive-timeout",
    ReasonCode.ADMINISTRATIVE_ACTION: "administrative-action",
}


@dataclass(frozen=True, slots=True)
class EndCause:
    """Why a connection ended: a kind (``client-disconnect``, ``protocol-error``, ...), a reason code, details."""

    kind: str
    reason_code: int | None = None
    detail: str | None = None


class ClientClosed(Exception):
    """Raised inside a handler to end the connection after the reply was sent."""


class Client:
    """The broker side of one network connection: identity, flags, and writing."""

    # Thousands of idle connections each carry one of these.
    __slots__ = (
        "_drain_task", "assigned_client_id", "broker", "clean_disconnect", "clean_start", "client_id", "conn",
        "connect", "connected_at", "deferred", "detached", "disconnect_reason", "end_cause", "error",
        "established", "listener", "protocol", "remote_address", "stats", "tls_peer_certificate", "username",
    )

    def __init__(self, conn: Connection, protocol: ProtocolState, stats: Stats, deferred: Deferred,
                 broker: object = None) -> None:
        #: The broker this client is connected to (for plugins serving several brokers).
        self.broker = broker
        self.conn = conn
        self.protocol = protocol
        self.stats = stats
        self.deferred = deferred
        self.remote_address = conn.remote_address
        self.listener = conn.listener
        self.tls_peer_certificate = conn.tls_peer_certificate
        self.client_id = ""
        self.username: str | None = None
        self.connect: Connect | None = None
        self.clean_start = True
        self.connected_at = time.time()
        #: The client id the broker assigned (v5, empty client id in CONNECT), if any.
        self.assigned_client_id: str | None = None
        #: True once CONNACK accepted the connection.
        self.established = False
        #: True after a DISCONNECT that discards the will.
        self.clean_disconnect = False
        #: Set when the session moved to another connection or the broker already cleaned up.
        self.detached = False
        self.disconnect_reason: int = ReasonCode.NORMAL_DISCONNECTION
        self.error: str | None = None
        #: Why the connection ends, for the log (`note_end`); None until decided.
        self.end_cause: EndCause | None = None
        self._drain_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Client {self.client_id!r} {self.remote_address} v{self.protocol.level}>"

    # ------------------------------------------------------------------ views for plugins

    @property
    def protocol_level(self) -> int:
        """3, 4 or 5, as the client's CONNECT said (4 until then)."""
        return self.protocol.level

    @property
    def keep_alive(self) -> int:
        """The keep-alive granted at CONNECT, in seconds (0: none)."""
        return self.protocol.keep_alive

    @property
    def connected(self) -> bool:
        """True while the connection is established and not detached."""
        return self.established and not self.detached

    def note_end(self, kind: str, reason_code: int | None = None, detail: str | None = None) -> None:
        """Record why the connection ends, for the log; the first cause recorded is the one logged."""
        if self.end_cause is None:
            self.end_cause = EndCause(kind, reason_code, detail)

    # ------------------------------------------------------------------ writing

    def send(self, packet: Packet) -> None:
        """Encode and write one control packet (through the packet hooks when any plugin has them)."""
        hooks = self.deferred.hooks
        if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
            self.send_hooked(packet)
            return
        self.write_bytes(encode(packet, self.protocol.level))

    def send_hooked(self, packet: Packet) -> None:
        """Writing when `on_packet_encode`/`on_packet_sent` are implemented: in order, off the hot path."""
        self.deferred.call(self._send_hooked_now, packet=packet)

    async def _send_hooked_now(self, packet: Packet) -> None:
        hooks = self.deferred.hooks
        if hooks.enabled("on_packet_encode"):
            packet = await hooks.transform("on_packet_encode", "packet", client=self, packet=packet)
        data = self.protocol.encode(packet)
        self.write_bytes(data)
        if hooks.enabled("on_packet_sent"):
            await hooks.notify("on_packet_sent", client=self, packet=packet, data=data)

    def send_ack(self, first_byte: int, packet_id: int, reason: int = 0) -> None:
        """PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) written from bytes, no packet object.

        The bytes are what `encode` gives the packet without properties: v3 has no reason
        code, and v5 leaves out a success code (MQTT 5.0 §3.4.2.1).
        """
        hooks = self.deferred.hooks
        if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
            kind = _ACK_KINDS[first_byte]
            self.send_hooked(kind(packet_id, reason) if self.protocol.level == 5 else kind(packet_id))
            return
        if reason and self.protocol.level == 5:
            self.write_bytes(bytes((first_byte, 3, packet_id >> 8, packet_id & 0xFF, reason)))
        else:
            self.write_bytes(bytes((first_byte, 2, packet_id >> 8, packet_id & 0xFF)))

    def write_bytes(self, data: bytes) -> None:
        """Write encoded bytes and count them."""
        stats = self.stats
        stats.bytes_sent += len(data)
        stats.packets_sent += 1
        self.conn.write(data)

    def send_disconnect(self, reason: int) -> None:
        """Tell a v5 client why the server is closing; v3 has no server DISCONNECT."""
        if self.protocol.level == 5 and self.established:
            self.write_bytes(self.protocol.encode(Disconnect(reason_code=reason)))

    def protocol_error(self, exc: ProtocolError) -> None:
        """Close after bad input: v5 clients get DISCONNECT with the reason code first."""
        self.error = exc.message
        self.note_end("protocol-error", exc.reason_code, exc.message)
        self.disconnect_reason = exc.reason_code
        if self.established:
            self.send_disconnect(exc.reason_code)
        elif self.protocol.level == 5:
            self.send(Connack(reason_code=exc.reason_code))

    def kick(self, reason: int) -> None:
        """Server-initiated disconnect (takeover, admin action, shutdown, keep-alive)."""
        self.disconnect_reason = reason
        self.note_end(KICK_CAUSES.get(reason, "server-disconnect"), reason)
        self.send_disconnect(reason)
        self.conn.close()
        # A peer that stopped reading would keep a closing connection open for ever.
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self.conn.abort)

    def schedule_drain(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` once the client's write buffer has drained (one waiter at most)."""
        if self._drain_task is not None and not self._drain_task.done():
            return

        async def wait_then_resume() -> None:
            await self.conn.drain()
            if not self.detached:
                resume()

        self._drain_task = asyncio.get_running_loop().create_task(wait_then_resume())


__all__ = ["CLOSE_GRACE", "KICK_CAUSES", "Client", "ClientClosed", "EndCause"]
