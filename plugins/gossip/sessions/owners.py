"""Which live node adopts a session whose owner died: one deterministic rule every node computes alike.

Rendezvous (highest random weight) hashing over the live nodes' names: each node scores
``sha256(node + NUL + client_id)`` and the highest score adopts. Every node that sees the
same set of live members picks the same adopter, the sessions of a dead node spread evenly
over the survivors, and a node joining or leaving moves only the sessions it wins or loses.
The adopter's claim is conditional in the store (it takes the client id only while the dead
node still owns it), so two nodes that briefly disagree about membership still cannot both
adopt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["adopter"]


def _score(node: str, client_id: str) -> bytes:
    return hashlib.sha256(node.encode("utf-8", "surrogatepass") + b"\0"
                          + client_id.encode("utf-8", "surrogatepass")).digest()


def adopter(client_id: str, live_nodes: Iterable[str]) -> str | None:
    """The live node that adopts ``client_id`` (None when there is none)."""
    best: tuple[bytes, str] | None = None
    for node in live_nodes:
        candidate = (_score(node, client_id), node)
        if best is None or candidate > best:
            best = candidate
    return best[1] if best is not None else None
