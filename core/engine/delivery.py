"""Delivering one message to one session: send now, queue, or drop; the inflight window.

This is the per-message hot path: everything here is synchronous, writes into the subscribers'
transport buffers, and allocates no task per message (a QoS 2 message from another node for a
persistent session under ``ack_after_write`` is written once its save is stored, by the
broker's one deferred-calls task). The router calls `deliver` once per
receiving session; the connection handler calls `complete` when an acknowledgement frees an
inflight slot; the session lifecycle calls `resume` after CONNACK.

State owned: none of its own. Who changes it: nobody; it is the part that changes the
sessions' ``inflight``, ``queue`` and ``next_packet_id`` (see `hookmq.engine.session`), and it
writes through their attached clients.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from .persistence import StorageFailed
from .session import AWAIT_ACK, AWAIT_PUBCOMP, Outgoing, Queued, Session, ShareKey

if TYPE_CHECKING:
    from ..hooks import HookFacade
    from .client import Client
    from .deferred import Deferred
    from .message import Message
    from .persistence import Persistence
    from .settings import MqttSettings
    from .stats import Stats


class Delivery:
    """Send, queue or drop per session, within each client's window and write buffer."""

    __slots__ = ("deferred", "hooks", "persistence", "settings", "stats")

    def __init__(self, settings: MqttSettings, stats: Stats, persistence: Persistence, deferred: Deferred) -> None:
        self.settings = settings
        self.stats = stats
        self.persistence = persistence
        self.deferred = deferred
        self.hooks: HookFacade = deferred.hooks

    def deliver(self, session: Session, message: Message, qos: int, retain: bool,
                ids: tuple[int, ...], share: ShareKey | None) -> int:
        """Send now, queue, or drop one message for one session (the per-message hot path)."""
        client = session.client
        now = time.time()
        if message.expiry_at is not None and now >= message.expiry_at:
            return 0
        if qos == 0:
            if client is None:
                return 0
            if client.conn.buffered_size() > self.settings.max_write_buffer:
                self.dropped(session, message, "client too slow: write buffer full")
                return 0
            return self._write_qos0(client, session, message, retain, ids, now)
        if (client is not None and not session.queue and len(session.inflight) < client.protocol.send_quota
                and client.conn.buffered_size() <= self.settings.max_write_buffer):
            self._send_new(client, session, message, qos, retain, ids, share, now)
            return 1
        self._enqueue(session, Queued(message, qos, retain, ids, share))
        if client is not None and session.queue and len(session.inflight) < client.protocol.send_quota:
            client.schedule_drain(lambda: self.fill_window(session))
        return 1

    def _write_qos0(self, client: Client, session: Session, message: Message, retain: bool,
                    ids: tuple[int, ...], now: float) -> int:
        """Write a QoS 0 message from the shared encoding."""
        data = client.protocol.publish_bytes(message, 0, retain, ids, now)
        if data is None:
            self.dropped(session, message, "larger than the client's Maximum Packet Size")
            return 0
        hooks = self.hooks
        if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
            client.send_hooked(message.to_publish(0, retain, 0, now, ids))
        else:
            client.write_bytes(data)
        self.stats.messages_sent += 1
        return 1

    def _send_new(self, client: Client, session: Session, message: Message, qos: int, retain: bool,
                  ids: tuple[int, ...], share: ShareKey | None, now: float) -> None:
        """Give a QoS 1/2 message an inflight slot and a packet id, and write it."""
        protocol = client.protocol
        if protocol.max_packet_out:
            size = len(message.wire(protocol.level, qos, retain, ids, now)[0])
            if size > protocol.max_packet_out:
                self.dropped(session, message, "larger than the client's Maximum Packet Size")
                return
        packet_id = session.allocate_packet_id()
        out = Outgoing(packet_id, message, qos, retain, ids, share)
        session.inflight[packet_id] = out
        persistence = self.persistence
        if qos == 2 and message.identity is not None and persistence.must_wait and session.persistent:
            # A QoS 2 message from another node is stored before the client sees it: if this node
            # dies before acknowledging the forward, the copy sent again is recognised by the
            # session's stored identity; one the client saw unstored would reach it twice.
            persistence.save_outgoing(session, out)
            self.deferred.call(self._send_once_stored, client=client, session=session, out=out,
                               target=persistence.issued)
        else:
            self.send_outgoing(client, out, now)
            if persistence.active:  # (the memory store records nothing: no call per message)
                persistence.save_outgoing(session, out)  # after sending: a reload resends it with DUP
        self.stats.messages_sent += 1
        if self.hooks.enabled("on_qos_publish"):
            self.deferred.notify("on_qos_publish", client=client,
                                 packet=message.to_publish(qos, retain, packet_id, now, ids), resends=0)

    async def _send_once_stored(self, client: Client, session: Session, out: Outgoing, target: int) -> None:
        """Send ``out`` once its save is stored (in order: the deferred calls run one by one)."""
        with contextlib.suppress(StorageFailed):  # the store failing: sent anyway (the forward waits unacknowledged)
            await self.persistence.barrier(target)
        if (session.client is client and not client.detached and session.inflight.get(out.packet_id) is out
                and out.sends == 0 and not out.awaiting_resend):
            self.send_outgoing(client, out, time.time())

    def send_outgoing(self, client: Client, out: Outgoing, now: float, dup: bool = False) -> None:
        """Write a QoS 1/2 message (or its PUBREL) that holds an inflight slot."""
        if out.state == AWAIT_PUBCOMP:
            client.send_ack(0x62, out.packet_id)
            return
        out.sends += 1
        hooks = self.hooks
        if hooks.enabled("on_packet_encode") or hooks.enabled("on_packet_sent"):
            client.send_hooked(out.message.to_publish(out.qos, out.retain, out.packet_id, now,
                                                      out.subscription_ids, dup))
            return
        data = client.protocol.publish_bytes(out.message, out.qos, out.retain, out.subscription_ids, now,
                                             out.packet_id, dup)
        if data is not None:
            client.write_bytes(data)

    def _enqueue(self, session: Session, item: Queued) -> None:
        """Queue within the configured bound, reporting what the drop policy discards."""
        settings = self.settings
        dropped = session.enqueue(item, settings.max_queued_messages, settings.queue_drop_policy == "drop_oldest")
        if dropped is not item:
            # The store applies the same bound and policy, so it drops the same oldest message.
            self.persistence.queue_append(session, item)
        if dropped is not None:
            self.dropped(session, dropped.message, "queue full")

    # ------------------------------------------------------------------ the window

    def fill_window(self, session: Session) -> None:
        """Move queued messages into free inflight slots while the client keeps up."""
        client = session.client
        if client is None or client.detached:
            return
        queue = session.queue
        now = time.time()
        limit = self.settings.max_write_buffer
        send_quota = client.protocol.send_quota
        if session.inflight and not self._resend_held(client, session, now):
            return
        popped = 0
        while queue and len(session.inflight) < send_quota:
            if client.conn.buffered_size() > limit:
                client.schedule_drain(lambda: self.fill_window(session))
                break
            item = queue.popleft()
            popped += 1
            if item.message.expired(now):
                self.dropped(session, item.message, "expired")
                continue
            if item.qos == 0:
                self._write_qos0(client, session, item.message, item.retain, item.subscription_ids, now)
            else:
                self._send_new(client, session, item.message, item.qos, item.retain, item.subscription_ids,
                               item.share, now)
        self.persistence.queue_popped(session, popped)

    def _resend_held(self, client: Client, session: Session, now: float) -> bool:
        """Resend inflight messages held back at reconnect, within the client's Receive Maximum.

        Returns False while some are still held (new messages must wait behind them).
        """
        held = [out for out in session.inflight.values() if out.awaiting_resend]
        if not held:
            return True
        send_quota = client.protocol.send_quota
        in_flight = len(session.inflight) - len(held)
        for out in held:
            if in_flight >= send_quota:
                return False
            out.awaiting_resend = False
            self.send_outgoing(client, out, now, dup=out.sends > 0)
            in_flight += 1
            if out.state == AWAIT_ACK and self.hooks.enabled("on_qos_publish"):
                self.deferred.notify("on_qos_publish", client=client, resends=out.sends - 1,
                                     packet=out.message.to_publish(out.qos, out.retain, out.packet_id, now,
                                                                   out.subscription_ids, out.sends > 1))
        return True

    def complete(self, session: Session, client: Client, packet_id: int, expect: int) -> bool:
        """``client`` acknowledged ``packet_id``: free its slot and refill the window.

        False for an id not awaiting this acknowledgement.
        """
        out = session.inflight.get(packet_id)
        if out is None or out.qos != expect:
            return False
        del session.inflight[packet_id]
        identity = out.message.identity
        persistence = self.persistence
        if persistence.active:
            persistence.outgoing_done(session, packet_id, identity)
        if identity is not None:
            session.note_completed(identity)
        if (session.queue or len(session.inflight) >= client.protocol.send_quota) and session.client is client:
            self.fill_window(session)
        return True

    def resume(self, session: Session) -> None:
        """After CONNACK: resend unacknowledged messages with DUP, then drain the queue."""
        if not session.inflight and not session.queue:
            return  # a new session, or one that left nothing behind: every connect of a clean client
        now = time.time()
        for out in list(session.inflight.values()):
            if out.state == AWAIT_ACK and out.sends == 0 and out.message.expired(now):
                del session.inflight[out.packet_id]
                self.persistence.outgoing_done(session, out.packet_id)
                self.qos_dropped(session, out, "message expired")
            else:
                out.awaiting_resend = True
        self.fill_window(session)

    # ------------------------------------------------------------------ losses

    def dropped(self, session: Session | None, message: Message, reason: str) -> None:
        """Count a dropped message and tell `on_publish_dropped`."""
        self.stats.messages_dropped += 1
        if session is not None and self.hooks.enabled("on_publish_dropped"):
            self.deferred.notify("on_publish_dropped", client_id=session.client_id,
                                 packet=message.to_publish(message.qos, message.retain), reason=reason)

    def qos_dropped(self, session: Session, out: Outgoing, reason: str) -> None:
        """An inflight QoS 1/2 message will never complete: count it and tell `on_qos_dropped`."""
        self.stats.messages_dropped += 1
        if self.hooks.enabled("on_qos_dropped"):
            self.deferred.notify("on_qos_dropped", client_id=session.client_id,
                                 packet=out.message.to_publish(out.qos, out.retain, out.packet_id), reason=reason)


__all__ = ["Delivery"]
