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
YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """Freeze what start-up allocated and raise the young generation's threshold (call once the broker has started)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


__all__ = ["YOUNG_THRESHOLD", "tune_collector"]
