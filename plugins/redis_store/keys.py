"""The Redis key layouts (documented in docs/storage.md "Redis key layout").

``P`` is the configured prefix (``hookmq:`` by default); ``<cid>`` is the client id verbatim.

One Redis and Sentinel use the **flat** layout, unchanged since the first release:

=========================  ======  ==========================================================
key                        type    content
=========================  ======  ==========================================================
``P sessions``             hash    client id -> session record
``P subscribers``          set     client ids that have (or had) subscriptions
``P subs:<cid>``           hash    topic filter -> subscription record
``P out:<cid>``            hash    packet id -> outgoing inflight record
``P outorder:<cid>``       zset    packet id scored by first-save time (resend order)
``P in:<cid>``             set     incoming QoS 2 packet ids awaiting PUBREL
``P queue:<cid>``          list    offline queue, head = oldest
``P retained``             hash    topic -> retained message
``P sys``                  string  ``$SYS`` counters as a JSON object
=========================  ======  ==========================================================

Redis Cluster (``cluster = true``) uses the **tagged** layout: every key of one client
carries the hash tag ``{c:<cid>}``, so they all live in one slot and a transaction or a Lua
script over them stays atomic; the session record moves out of the shared hash into the
client's own key, so deleting a session is one single-slot transaction. Keys that several
clients share and that a script reads together carry one tag of their own (``{retained}``).

=================================  ======  ====================================================
key                                type    content
=================================  ======  ====================================================
``P{c:<cid>}:session``             string  the session record
``P{c:<cid>}:subs``                hash    topic filter -> subscription record
``P{c:<cid>}:out``                 hash    packet id -> outgoing inflight record
``P{c:<cid>}:outorder``            zset    resend order
``P{c:<cid>}:in``                  set     incoming QoS 2 packet ids
``P{c:<cid>}:queue``               list    offline queue
``P{c:<cid>}:<anything>``          any     room for other per-client state (the owner/epoch
                                           claim of a session): name it with ``client_key``
``P retained``                     hash    topic -> retained message (one key: any slot)
``P{retained}:<name>``             any     keys read together with other retained keys
``P sys``                          string  ``$SYS`` counters
=================================  ======  ====================================================

The tag is the text between the first ``{`` and the first ``}`` after it. A client id with a
``}`` in it ends its tag early (``c:`` plus the part before the ``}``): still one tag for all
of that client's keys, so atomicity holds; such clients merely share slots more. Listing all
sessions or subscriptions scans every primary for the per-client keys (no shared index,
which a transaction could not update together with the client's own keys).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeyLayout"]

_CLIENT_KINDS = ("subs", "out", "outorder", "in", "queue")


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds every key the Redis store uses from one prefix; ``tagged`` for Redis Cluster."""

    prefix: str = "hookmq:"
    tagged: bool = False

    @property
    def sessions(self) -> str:
        """Hash of all sessions (flat layout only)."""
        return f"{self.prefix}sessions"

    @property
    def subscribers(self) -> str:
        """Set of client ids with subscriptions (flat layout only)."""
        return f"{self.prefix}subscribers"

    @property
    def retained(self) -> str:
        """Hash of retained messages."""
        return f"{self.prefix}retained"

    @property
    def sys(self) -> str:
        """The ``$SYS`` counters."""
        return f"{self.prefix}sys"

    def client_tag(self, client_id: str) -> str:
        """The hash tag all of one client's keys share (tagged layout)."""
        return f"{{c:{client_id}}}"

    def client_key(self, client_id: str, kind: str) -> str:
        """One per-client key: ``P{c:<cid>}:<kind>`` tagged, ``P <kind>:<cid>`` flat."""
        if self.tagged:
            return f"{self.prefix}{self.client_tag(client_id)}:{kind}"
        return f"{self.prefix}{kind}:{client_id}"

    def shared_key(self, group: str, name: str) -> str:
        """A key that scripts read together with others of its ``group``: one slot per group when tagged."""
        if self.tagged:
            return f"{self.prefix}{{{group}}}:{name}"
        return f"{self.prefix}{group}:{name}"

    def session(self, client_id: str) -> str:
        """The session record's own key (tagged layout; flat keeps sessions in one hash)."""
        return self.client_key(client_id, "session")

    def subs(self, client_id: str) -> str:
        """Hash of one client's subscriptions."""
        return self.client_key(client_id, "subs")

    def outgoing(self, client_id: str) -> str:
        """Hash of one client's outgoing inflight records."""
        return self.client_key(client_id, "out")

    def outgoing_order(self, client_id: str) -> str:
        """Sorted set giving the resend order of the outgoing records."""
        return self.client_key(client_id, "outorder")

    def incoming(self, client_id: str) -> str:
        """Set of incoming QoS 2 packet ids."""
        return self.client_key(client_id, "in")

    def queue(self, client_id: str) -> str:
        """List holding one client's offline queue."""
        return self.client_key(client_id, "queue")

    def client_keys(self, client_id: str) -> tuple[str, ...]:
        """Every per-client key of the store (the session's own key too, when tagged)."""
        kinds = (*_CLIENT_KINDS, "session") if self.tagged else _CLIENT_KINDS
        return tuple(self.client_key(client_id, kind) for kind in kinds)

    def match_all(self) -> str:
        """A SCAN pattern matching every key under the prefix (glob characters escaped)."""
        return f"{_glob_escape(self.prefix)}*"

    def match_kind(self, kind: str) -> str:
        """A SCAN pattern matching one kind of per-client key of every client (tagged layout)."""
        return f"{_glob_escape(self.prefix)}\\{{c:*\\}}:{_glob_escape(kind)}"

    def client_of(self, key: str, kind: str) -> str | None:
        """The client id in a tagged per-client key of ``kind`` (None when it is not one)."""
        head, tail = f"{self.prefix}{{c:", f"}}:{kind}"
        if key.startswith(head) and key.endswith(tail) and len(key) >= len(head) + len(tail):
            return key[len(head) : len(key) - len(tail)]
        return None


def _glob_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "*?[]\\{}" else ch for ch in text)
