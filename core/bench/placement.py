"""Which cluster node each connection of a workload uses, for the ``hookmq:xN`` and ``hookmq:nN`` brokers of compare.

- ``hookmq:xN`` (cross-node): every client that subscribes (subscribers, the filters holder)
  connects to the nodes after the first, round-robin; every other client to the first node.
  A ``pair`` client (publishing to its own topic) becomes two: its subscriber on another node,
  its publisher on the first, so that every message crosses a link; same topics, same counts.
  A device subscriber subscribes during setup (its publisher's session is the timed one), else
  the first messages could be published before its route has reached the publisher's node.
- ``hookmq:nN`` (scale-out): the clients in turn on each node (client k on node k mod N): the
  pairs workload's traffic stays local, each node carrying 1/N of the pairs.

Sans-I/O: plans in, plans out, given the nodes' ports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .plan import ClientPlan

#: ``hookmq:x2``: publishers on node 1, subscribers on the others.
CROSS = "x"
#: ``hookmq:n2``: the clients spread in turn over the nodes.
SPREAD = "n"
LAYOUTS = (CROSS, SPREAD)


def split_cluster(name: str) -> tuple[str, str, int] | None:
    """``hookmq:x2`` -> (``hookmq``, ``x``, 2); None for a name that is not a cluster of at least two nodes."""
    base, _, suffix = name.rpartition(":")
    layout, count = suffix[:1], suffix[1:]
    if base and layout in LAYOUTS and count.isdigit() and int(count) >= 2:
        return base, layout, int(count)
    return None


def place(plans: Sequence[ClientPlan], layout: str, ports: Sequence[int]) -> list[ClientPlan]:
    """``plans`` placed on the nodes listening on ``ports`` (the first is node 1) by ``layout``."""
    if len(ports) < 2:
        raise ValueError(f"a cluster layout needs two nodes or more, not {len(ports)}")
    if layout == CROSS:
        return cross_node(plans, ports[0], ports[1:])
    if layout == SPREAD:
        return spread(plans, ports)
    raise ValueError(f"unknown cluster layout {layout!r}: choose from {', '.join(LAYOUTS)}")


def cross_node(plans: Sequence[ClientPlan], publish_port: int, subscribe_ports: Sequence[int]) -> list[ClientPlan]:
    """Subscribing clients on ``subscribe_ports`` in turn, the others on ``publish_port``; pairs split in two."""
    placed: list[ClientPlan] = []
    turn = 0
    for plan in plans:
        if plan.role == "pair":
            subscriber = dataclasses.replace(
                plan, client_id=f"{plan.client_id}s", role="subscriber", publish_topic=None, publish_count=0,
                rate=None, session_in_run=False, port=subscribe_ports[turn % len(subscribe_ports)],
            )
            publisher = dataclasses.replace(
                plan, client_id=f"{plan.client_id}p", role="publisher", subscriptions=(), expected=0,
                port=publish_port,
            )
            placed += [subscriber, publisher]
            turn += 1
        elif plan.subscriptions:
            placed.append(dataclasses.replace(plan, port=subscribe_ports[turn % len(subscribe_ports)]))
            turn += 1
        else:
            placed.append(dataclasses.replace(plan, port=publish_port))
    return placed


def spread(plans: Sequence[ClientPlan], ports: Sequence[int]) -> list[ClientPlan]:
    """Client k on ``ports[k % len(ports)]``."""
    return [dataclasses.replace(plan, port=ports[index % len(ports)]) for index, plan in enumerate(plans)]
