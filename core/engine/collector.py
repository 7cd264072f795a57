"""The cyclic garbage collector's settings for a running broker (`tune_collector`).

Every connection adds long-lived objects (its client, session, protocol state, transport), so
with the interpreter's defaults a burst of connections keeps triggering collections that walk
every object the process holds, the start-up's modules, classes and configuration included
(about 5 % of the broker's CPU while accepting connections: docs/benchmarks.md, "The connect
path"). `gc.freeze()` moves what start-up made into the permanent generation, which no
collection walks again; a larger first-generation threshold makes the young collections, and
so the promotions into the older generations, fewer. Cycles are still collected: only how
often changes.

State owned: none (the interpreter's collector settings are process-wide). Who changes it:
`Broker.serve`, once the broker has started (a broker embedded by `start()` alone leaves them as they are).
"""

from __future__ import annotations

import gc

#: Allocations (minus deallocations) of container objects between two young collections (the interpreter's default: 700).
#: 100 000 rather than 10 000: the middle and full collections, which follow every 10th young one and walk
#: every connection's objects, come ten times less often (0.89 x the broker CPU of a 10 000-connection burst,
#: docs/benchmarks.md, "The connect path in the read event"); a young collection walks at most this many objects.
YOUNG_THRESHOLD = 100_000


def tune_collector() -> None:
    """Freeze what start-up allocated and raise the young generation's threshold (call once the broker has started)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


__all__ = ["YOUNG_THRESHOLD", "tune_collector"]
