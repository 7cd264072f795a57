"""Whether a peer that membership declared dead is gone: its link's own evidence decides (sans-I/O).

Membership can declare a live node failed for a moment: right after a partition heals, the
side that was cut off still holds the others dead and its old verdicts travel back before the
accused refute them. Dropping such a node's link at once would hand its unacknowledged
messages back (re-routed elsewhere, and acknowledged to their publishers without ever
reaching its subscribers) and make routing forget its routes. So a peer declared dead is
*held*: its link, outbox, acknowledgement futures and routes stay, and messages keep queuing
for it, while the link has heard from it within the last ``failure_hold`` seconds (a live
link hears a ping or more every ``ping_interval``). The failure is confirmed, and the peer
dropped, once the link has been silent that long and membership still holds the node dead;
it is released when membership says it is alive again. A node that really died (or was cut
off) went silent to membership and to its link at the same moment, and membership needs at
least a probe interval plus the minimum suspicion time to declare it dead (about 4 s with
``local``; 4.1 s the quickest measured); with ``failure_hold`` shorter than that (3 s by default) such a node is dropped the
moment it is declared dead, its unacknowledged frames handed back then (the sessions part
adopts them at that moment), exactly as without holding.
"""

from __future__ import annotations

__all__ = ["hold_remaining"]


def hold_remaining(now: float, last_heard: float | None, failure_hold: float) -> float:
    """Seconds left to hold a peer membership declared dead; 0.0: the failure is confirmed, drop it.

    ``last_heard``: when its link last received anything from it (None: never). A
    ``failure_hold`` of 0 drops at once (membership's verdict alone decides).
    """
    if failure_hold <= 0 or last_heard is None:
        return 0.0
    return max(0.0, last_heard + failure_hold - now)
