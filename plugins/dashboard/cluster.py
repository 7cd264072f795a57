"""The cluster as the operator sees it: one JSON view for `/api/cluster`, the panel and `/metrics`.

It reads cluster state only through the gossip plugin's public, read-only accessors:
``cluster_of(broker).roster()`` (members with their state, incarnation, address and when this
node saw them join), ``links_of(broker).all_stats()`` (each data link), ``routing_of(broker)
.figures()`` (route counts, messages forwarded and received per peer) and
``figures_of(broker)`` (every node's clients, subscriptions and message rates, exchanged over
the links). Outside cluster mode it says "clustering not enabled".
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

__all__ = ["DISABLED", "STATE_NAMES", "ClusterEvents", "cluster_clients", "cluster_view", "disconnect_in_cluster",
           "readiness_problem"]

DISABLED: dict[str, Any] = {"enabled": False, "nodes": [], "members": [], "detail": "clustering not enabled"}

STATE_NAMES = {"ALIVE": "alive", "SUSPECT": "suspect", "DEAD": "failed", "LEFT": "left"}
"""Membership's state names as the operator reads them (memberlist's DEAD is a failed node)."""

LINK_FIELDS = ("up", "queue_frames", "queue_bytes", "frames_sent", "frames_received", "bytes_sent", "bytes_received",
               "connects", "disconnects", "unreliable_dropped", "endpoint")

MEMBERSHIP_COUNTERS = ("probes", "probes_indirect", "probes_failed", "suspicions", "refutations", "nodes_reaped",
                       "packets_sent", "packets_received")

SESSION_COUNTERS = {"takeovers": "takeovers_sent", "takeovers_handed_over": "takeovers_handled",
                    "adoptions": "sessions_adopted"}
"""Counters of sessions across nodes, from ``hookmq.plugins.gossip.sessions.sessions_of(broker)
.counts`` when that part is installed: sessions taken over here from another node, sessions
this node handed over, and a failed node's sessions adopted here. The hook-up point: it is
looked up by name, so without that module (before the sessions work is merged) ``sessions``
stays empty and no takeover/adoption metric is exported."""
SESSIONS_MODULE = "hookmq.plugins.gossip.sessions"


def _gossip() -> Any | None:
    try:
        from hookmq.plugins import gossip
    except ImportError:  # the gossip plugin is not installed: no cluster to show
        return None
    return gossip


def _routing_of(broker: Any) -> Any | None:
    try:
        from hookmq.plugins.gossip.routing import routing_of
    except ImportError:
        return None
    return routing_of(broker)


def _sessions_of(broker: Any) -> Any | None:
    try:
        module = importlib.import_module(SESSIONS_MODULE)
    except ImportError:
        return None
    return getattr(module, "sessions_of", lambda broker: None)(broker)


def _session_counts(broker: Any) -> dict[str, int]:
    sessions = _sessions_of(broker)
    counts = getattr(sessions, "counts", None)
    if not isinstance(counts, Mapping):
        return {}
    return {name: int(counts.get(key, 0)) for name, key in SESSION_COUNTERS.items()}


def _state(member: Any) -> str:
    name = str(member.state.name)
    return STATE_NAMES.get(name, name.lower())


def _link(stats: Mapping[str, object] | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    view = {key: stats.get(key) for key in LINK_FIELDS}
    view["rtt_seconds"] = stats.get("rtt")
    return view


def _peer_figures(figures: Mapping[str, int | str], node: str) -> dict[str, Any]:
    prefix = f"peers/{node}/"
    return {
        "routes": figures.get(prefix + "routes", 0),
        "messages_forwarded": figures.get(prefix + "messages/forwarded", 0),
        "messages_received": figures.get(prefix + "messages/received", 0),
    }


def cluster_view(broker: Any, now: float | None = None) -> dict[str, Any]:
    """Members, links, routes and figures of the cluster as this node sees them (JSON-ready)."""
    gossip = _gossip()
    cluster = gossip.cluster_of(broker) if gossip is not None else None
    if gossip is None or cluster is None:
        return dict(DISABLED)
    now = time.time() if now is None else now
    links = gossip.links_of(broker)
    book = gossip.figures_of(broker)
    routing = _routing_of(broker)
    link_stats: dict[str, dict[str, object]] = links.all_stats() if links is not None else {}
    routes: Mapping[str, int | str] = routing.figures() if routing is not None else {}
    members = []
    for record in cluster.roster():
        member = record.member
        local = member.name == cluster.name
        figures = book.of(member.name) if book is not None else None
        members.append({
            "name": member.name,
            "state": _state(member),
            "incarnation": member.incarnation,
            "address": f"{member.address}:{member.port}",
            "joined_at": record.joined_at,
            "state_since": record.state_since,
            "local": local,
            "hookmq": member.metadata is not None,
            "link": None if local else _link(link_stats.get(member.name)),
            **({"routes": None, "messages_forwarded": None, "messages_received": None} if local
               else _peer_figures(routes, member.name)),
            "figures": None if figures is None else {**figures.as_json(), "fresh": book.is_fresh(figures, now)},
        })
    live = {m["name"] for m in members if m["state"] in ("alive", "suspect")}
    by_state = dict.fromkeys(STATE_NAMES.values(), 0)
    for entry in members:
        by_state[entry["state"]] = by_state.get(entry["state"], 0) + 1
    stats = cluster.stats
    return {
        "enabled": True,
        "node": cluster.name,
        "joined": cluster.joined,
        "nodes": [m["name"] for m in members],
        "members": members,
        "members_by_state": by_state,
        "totals": book.totals(now, live) if book is not None else None,
        "routes": {"count": routes.get("routes/count", 0), "local_filters": routes.get("filters/count", 0)},
        "membership": {key: int(stats.get(key, 0)) for key in MEMBERSHIP_COUNTERS},
        "sessions": _session_counts(broker),
        "links": dict(links.totals) if links is not None else {},
    }


class NodeUnavailable(Exception):
    """The node named cannot be asked (unknown, not alive, no link, no answer): one line."""


async def cluster_clients(broker: Any, q: str, limit: int) -> dict[str, Any] | None:
    """The connected clients of every live node, each with its ``node``; None outside cluster mode.

    This node answers from its broker; the others through ``control_of(broker)`` (a request over
    the data link, a few seconds at most each, all at once). A node that cannot answer is listed
    under ``nodes`` with its error; its clients are missing, not guessed.
    """
    import asyncio

    gossip = _gossip()
    cluster = gossip.cluster_of(broker) if gossip is not None else None
    if gossip is None or cluster is None:
        return None
    from hookmq.plugins.gossip.control import ControlError, connected_clients

    control = gossip.control_of(broker)
    peers = [m.name for m in cluster.members() if m.name != cluster.name and m.metadata is not None]

    async def ask(node: str) -> tuple[int, list[dict[str, Any]]]:
        if node == cluster.name:
            return await connected_clients(broker, q, limit)
        if control is None:
            raise ControlError("no cluster control on this node")
        answered: tuple[int, list[dict[str, Any]]] = await control.clients(node, q, limit)
        return answered

    nodes = [cluster.name, *sorted(peers)]
    answers = await asyncio.gather(*(ask(node) for node in nodes), return_exceptions=True)
    per_node: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    total = 0
    for node, answer in zip(nodes, answers, strict=True):
        if isinstance(answer, BaseException):
            per_node[node] = {"error": str(answer) or type(answer).__name__}
            continue
        count, found = answer
        per_node[node] = {"total": count}
        total += count
        items += [{**item, "node": node} for item in found]
    items.sort(key=lambda item: (str(item.get("client_id")), item["node"]))
    return {"enabled": True, "total": total, "limit": limit, "items": items[:limit], "nodes": per_node}


async def disconnect_in_cluster(broker: Any, node: str, client_id: str) -> bool:
    """Disconnect ``client_id`` on ``node`` (this one or another); False when it is not connected there.

    :raises NodeUnavailable: the node is not a live member, or it did not answer.
    """
    gossip = _gossip()
    cluster = gossip.cluster_of(broker) if gossip is not None else None
    if gossip is None or cluster is None or node == getattr(cluster, "name", None):
        return bool(await broker.disconnect_client(client_id))
    if cluster.member(node) is None:
        raise NodeUnavailable(f"node {node!r} is not a live member of the cluster")
    control = gossip.control_of(broker)
    if control is None:
        raise NodeUnavailable("no cluster control on this node")
    from hookmq.plugins.gossip.control import ControlError

    try:
        return bool(await control.disconnect(node, client_id))
    except ControlError as error:
        raise NodeUnavailable(str(error)) from None


async def readiness_problem(broker: Any, store_timeout: float = 1.0) -> str | None:
    """Why the node is not ready (not joined yet, the store does not answer), or None.

    In cluster mode the node must have joined: it saw another member alive, or ``[cluster]
    members`` is empty (the first node). The store must answer one read within ``store_timeout``.
    """
    gossip = _gossip()
    cluster = gossip.cluster_of(broker) if gossip is not None else None
    if cluster is not None and not cluster.joined:
        return f"not joined: no member of [cluster] members ({', '.join(cluster.seeds)}) has answered yet"
    check = getattr(broker, "check_store", None)
    if check is not None:
        problem: str | None = await check(store_timeout)
        if problem is not None:
            return f"store unreachable: {problem}"
    return None


class ClusterEvents:
    """Membership changes (join, failed, left, suspect) and sessions moving between nodes
    (takeover, handed over, adoption) turned into live-feed frames.

    Subscribes to ``cluster_of(broker).on_event`` and, when sessions across nodes are installed,
    to ``sessions_of(broker).on_event`` when the dashboard starts; each event is handed to
    ``emit`` as a JSON-ready dict. Does nothing outside cluster mode.
    """

    KINDS: ClassVar[dict[str, str]] = {"JOIN": "join", "DEAD": "failed", "LEFT": "left", "SUSPECT": "suspect"}
    #: Client ids listed in one adoption frame (the count is always exact).
    LISTED = 20

    def __init__(self, broker: Any, emit: Callable[[dict[str, Any]], None]) -> None:
        self._emit = emit
        self._undo: list[Callable[[], None]] = []
        gossip = _gossip()
        cluster = gossip.cluster_of(broker) if gossip is not None else None
        if cluster is not None:
            self._undo.append(cluster.on_event(self._event))
            sessions = _sessions_of(broker)
            subscribe = getattr(sessions, "on_event", None)
            if callable(subscribe):
                self._undo.append(subscribe(self._session_event))

    def _event(self, event: Any) -> None:
        kind = self.KINDS.get(event.kind.name)
        if kind is None:
            return  # metadata updates are not operator events
        member = event.member
        self._emit({"type": "cluster", "event": kind, "node": member.name,
                    "address": f"{member.address}:{member.port}", "incarnation": member.incarnation,
                    "t": round(time.time(), 3)})

    def _session_event(self, event: Any) -> None:
        """``{"type": "cluster", "event": "takeover" | "handed_over" | "adoption", "node", "client_ids", "count", "t"}``."""
        client_ids = list(event.client_ids)
        self._emit({"type": "cluster", "event": str(event.kind), "node": str(event.node),
                    "client_ids": client_ids[: self.LISTED], "count": len(client_ids), "t": round(time.time(), 3)})

    def close(self) -> None:
        """Stop listening."""
        undoes, self._undo = self._undo, []
        for undo in undoes:
            with contextlib.suppress(ValueError):  # the cluster already dropped its callbacks
                undo()
