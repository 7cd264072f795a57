"""Inter-node data links: one persistent, ordered, authenticated TCP connection per pair of nodes.

The cluster-routing plugin sends its messages, route snapshots and deltas over these; this
package knows nothing of their meaning. Get the API with :func:`hookmq.plugins.gossip.links_of`
(``None`` unless ``[cluster] mode`` is on); every callback runs in the broker's event loop::

    links = links_of(broker)
    links.on_up(lambda node: ...)          # a link to node is (re)established: send a route snapshot
    links.on_down(lambda node: ...)        # an established link was lost (it is being re-dialled)
    links.on_receive(handler)              # handler(node, kind, body) -> Awaitable[None] | None
    links.on_gone(lambda node: ...)        # node left, or declared dead and its link silent: drop its state
    links.on_unacked(lambda node, frames: ...)   # node gone: its unacknowledged [(kind, body)]
    links.held("node-b")                   # declared dead, but its link still hears from it (kept)
    future = links.send("node-b", 1, body, reliable=True)    # asyncio.Future[None]
    links.send("node-b", 1, body, reliable=False)            # None: sent once or dropped
    links.is_up("node-b"); links.peers(); links.stats("node-b"); links.max_body("node-b")
    links.has_room("node-b", len(body))                      # would a reliable frame be taken now?
    await links.wait_for_room("node-b", len(body))           # True: room again; False: node gone
    links.all_stats(); links.totals                          # every peer's figures; node-wide counters

Semantics (docs/cluster.md "Links" says the same for operators):

- ``kind`` is 1-239 and belongs to the layer above; 240-255 and 0 are the link's own.
- **Order.** Frames to one node arrive in the order sent, reliable and unreliable alike, over
  one stream per pair of nodes (an unreliable frame is dropped rather than overtake a
  reliable one that waits for room).
- **Reliable** frames are numbered, kept until the receiver acknowledges them, and sent again
  after a broken connection comes back; the receiver drops the copies it already had. The
  receiver acknowledges a frame once every ``on_receive`` handler returned and the awaitable it
  returned (if any) completed. The future resolves then. It fails with
  :class:`~.links.RemoteFailure` when a handler raised (the receiver sends a NACK: sending the
  frame again would fail again), :class:`~.links.LinkOverloaded` when the peer's outbox holds
  its bound (``LinkLimits.reliable_bytes`` / ``reliable_frames``), and
  :class:`~.links.PeerGone` when the node is unknown, or is gone before it acknowledged: then
  ``on_gone`` runs and every unacknowledged frame is handed to ``on_unacked`` (oldest first),
  for re-routing. A node is gone when it left, or when membership declared it dead and its
  link has heard nothing from it for ``LinkLimits.failure_hold`` (``[cluster]
  link_failure_hold``); until then it is *held*, everything kept and sent as before, and a
  held node that membership says is alive again just goes on (:mod:`.hold`). A peer that restarts (a new process with the same name, still alive
  to membership) is sent every unacknowledged frame again: what its previous process had taken
  but not acknowledged is delivered twice (at least once).
- **Back-pressure.** A peer's outbox holds at most ``LinkLimits.reliable_bytes`` body bytes
  and ``reliable_frames`` reliable frames (``[cluster] link_queue_bytes`` / ``link_queue_frames``;
  every bound is a ``[cluster] link_*`` key, read by ``plugin.link_limits``) (written and unacknowledged, or waiting for the send
  buffer). ``has_room(node, size)`` says whether ``send`` would take one more now; when it is
  False, await ``wait_for_room(node, size)`` rather than send (cluster routing does this before
  forwarding a QoS ≥ 1 PUBLISH, so the publisher's PUBACK/PUBREC waits, and the publisher's
  Receive Maximum stops it). Waiters are woken oldest first when acknowledgements bring the
  outbox to half its bounds; they are told False when the node is gone (then ``send`` fails
  with ``PeerGone``). A woken sender can still lose the room to another: ``send`` then fails
  with ``LinkOverloaded``, never blocks.
- **Unreliable** frames are sent once when the link is up and its send buffer has room, else
  dropped and counted (``stats(node)["unreliable_dropped"]``).
- **Handlers** are called one frame after the other in frame order, without waiting for the
  awaitable of the previous frame (return an ``asyncio.Future`` rather than a coroutine on the
  per-message path: a coroutine costs a task). While ``LinkLimits.receive_window`` reliable
  frames wait for their handlers, the link stops reading, and TCP pushes back on the sender.
- **Statistics** (``stats(node)``, ``all_stats()``): ``up``, ``connects`` / ``disconnects``,
  ``queue_frames`` / ``queue_bytes`` (reliable frames held), ``waiting_frames`` (not yet
  written), ``send_buffer_bytes``, ``in_progress`` (received, handler not finished),
  ``frames_sent`` / ``frames_received`` (data frames) and ``bytes_sent`` / ``bytes_received``
  (everything on the wire), ``writes`` (socket writes: frames per write is the batching),
  ``rtt`` (seconds, from keep-alive pings, None before the first), ``resent``,
  ``duplicates_dropped``, ``unreliable_dropped``, ``overloaded``, ``room_waits``,
  ``room_waiting``, ``acks_sent``, ``nacks_received``, ``handler_failures``, ``dialer``,
  ``endpoint``. ``totals`` counts node-wide events: ``closed_<reason>`` for every connection
  closed for a bad frame or handshake (``malformed``, ``oversized``, ``auth``,
  ``unknown-node``, ``dead-node``, ``preamble``, ``gap``, ``bad-ack``, ``timeout``, ...),
  ``accepted``, ``dialed``, ``dial_failures``, ``handshake_incomplete``, ``handler_errors``.
- ``on_up`` fires for every established connection, including reconnections to the same
  process: what the reconnecting side resends comes first, then whatever ``on_up`` sends.

Layers (sans-I/O first; each imports only those before it): :mod:`.errors`, :mod:`.frames`
(framing, AES-GCM per frame), :mod:`.handshake` (mutual challenge-response, HKDF session
keys), :mod:`.sequencing` (numbering, acks, duplicates), :mod:`.connection` (one connection),
:mod:`.peer` (one peer over successive connections, send-buffer bound, keep-alive), then the
asyncio :mod:`.transport` and :mod:`.links`.
"""

from __future__ import annotations

from .errors import LinkError
from .links import (
    LINK_META_KEY,
    UNIX_META_KEY,
    LinkOverloaded,
    Links,
    PeerGone,
    RemoteFailure,
    link_endpoint,
    unix_endpoint,
)
from .peer import LinkLimits

__all__ = [
    "LINK_META_KEY",
    "UNIX_META_KEY",
    "LinkError",
    "LinkLimits",
    "LinkOverloaded",
    "Links",
    "PeerGone",
    "RemoteFailure",
    "link_endpoint",
    "unix_endpoint",
]
