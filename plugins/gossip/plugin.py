"""The gossip plugin's work for one broker: settings to a running node, and the operator's log lines.

The log lines are those a Go-broker operator knows: ``A node has joined: NAME`` (ourselves
included, as memberlist reports), ``A node was updated: NAME``, ``A node has left: NAME``
(the Go broker also said so for a crash; hookmq says ``A node has failed: NAME`` then),
``Local member ADDR:PORT`` and ``Cluster Node Created!``.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

from .addresses import choose_advertise, is_private
from .api import Cluster
from .control import ClusterControl
from .driver import GossipNode, NodeEvent
from .figures import FigureExchange
from .hostfigures import HostFigures
from .link import LINK_META_KEY, LinkLimits, Links
from .link.frames import PREAMBLE
from .link.links import SHARED_PORT, UNIX_META_KEY
from .membership import EventKind, MemberEvent, MembershipConfig, profile
from .membership.formulas import suspicion_timeout
from .metadata import ListenerEndpoint, NodeMetadata
from .runner import GossipRunner
from .wire import Keyring, WireCodec

__all__ = ["ClusterPlugin", "default_node_name", "membership_config", "quickest_verdict"]

log = logging.getLogger("hookmq.plugins.gossip")

TIMING_KEYS = (
    "probe_interval", "probe_timeout", "indirect_checks", "suspicion_mult", "suspicion_max_timeout_mult",
    "retransmit_mult", "gossip_interval", "gossip_nodes", "gossip_to_the_dead_time", "push_pull_interval",
    "tcp_timeout", "awareness_max_multiplier", "rejoin_interval", "rejoin_timeout", "disable_tcp_pings", "compression",
)
"""``[cluster]`` keys that override the profile, named as the membership config fields."""

FRAME_HEADROOM = 262_144
"""Bytes a link frame may hold beyond the largest MQTT packet: routing's envelope (origin
client id, share groups, properties travelling beside the packet)."""

_EVENT_LINES = {
    EventKind.JOIN: "A node has joined: %s",
    EventKind.UPDATE: "A node was updated: %s",
    EventKind.LEFT: "A node has left: %s",
    EventKind.DEAD: "A node has failed: %s",
}


def default_node_name() -> str:
    """The host name, a dash and a random UUID (the Go broker's choice)."""
    return f"{socket.gethostname()}-{uuid.uuid4()}"


def membership_config(settings: Any) -> MembershipConfig:
    """The profile named by ``[cluster] profile`` with the ``[cluster]`` overrides applied."""
    overrides = {key: getattr(settings, key) for key in TIMING_KEYS}
    return profile(settings.profile, expect=settings.expect, **overrides)


def quickest_verdict(config: MembershipConfig) -> float:
    """Seconds from a node going silent to the soonest it can be declared failed: one probe
    interval to notice, then the shortest suspicion (a cluster of up to ten nodes)."""
    return config.probe_interval + suspicion_timeout(config.suspicion_mult, 1, config.probe_interval)


def link_limits(config: Any) -> LinkLimits:
    """The link bounds for this broker (``[cluster] link_*``): a frame holds any PUBLISH the broker
    accepts, with room for its envelope."""
    max_packet = int(config.mqtt.max_packet_size)
    cluster = config.cluster
    return LinkLimits(
        max_frame=max(max_packet, 1_048_576) + FRAME_HEADROOM, send_buffer=cluster.link_send_buffer,
        reliable_bytes=cluster.link_queue_bytes, reliable_frames=cluster.link_queue_frames,
        receive_window=cluster.link_receive_window, ping_interval=cluster.link_ping_interval,
        idle_timeout=cluster.link_idle_timeout, failure_hold=cluster.link_failure_hold,
    )


def listener_endpoints(config: Any, advertise: str, bound: list[Any] | None = None) -> tuple[ListenerEndpoint, ...]:
    """The MQTT listeners as other nodes reach them (a wildcard host becomes the advertised address)."""
    from hookmq.transport.config import parse_address

    endpoints = []
    if bound is not None:
        for listener in bound:
            host, port = listener.address
            endpoints.append(ListenerEndpoint(listener.kind, advertise if listener.all_interfaces else host, port))
        return tuple(endpoints)
    for listener in config.listeners:
        host, port = parse_address(listener.address)
        endpoints.append(ListenerEndpoint(listener.type, host or advertise, port))
    return tuple(endpoints)


class ClusterPlugin:
    """Builds the node from ``[cluster]``, runs it, logs its events, and stops it."""

    def __init__(self, broker: Any, settings: Any) -> None:
        self.broker = broker
        self.settings = settings
        try:
            keys = settings.gossip_keys()
        except ValueError as error:
            raise ValueError(f"[cluster] {error}") from None
        self.keyring = Keyring(keys) if keys else None
        self.config = membership_config(settings)
        self.advertise = choose_advertise(settings.bind, settings.advertise)
        self.unix_path = str(settings.link_unix_path) if settings.link_unix_path is not None else None
        extra: dict[str, Any] = {LINK_META_KEY: SHARED_PORT}
        if self.unix_path is not None:
            extra[UNIX_META_KEY] = self.unix_path
        self.metadata = NodeMetadata(listener_endpoints(broker.config, self.advertise), extra)
        codec = WireCodec(keyring=self.keyring, label=settings.label, compression=self.config.compression)
        self.node = GossipNode(
            self.config, name=settings.node_name or default_node_name(), bind=settings.bind, port=settings.port,
            advertise=self.advertise, codec=codec, meta=self.metadata.encode(), members=(*settings.members, *settings.sibling_members),
        )
        self.runner = GossipRunner(self.node, settings.runner, self._event, in_node_loop=_log_event)
        self.cluster = Cluster(self.runner, self.metadata)
        self.links: Links | None = None
        #: The figures exchange (:mod:`.figures`), started with routing.
        self.figures: FigureExchange | None = None
        #: Operator requests to other nodes (:mod:`.control`), started with routing.
        self.control: ClusterControl | None = None
        #: ``$SYS/host/…`` for the workers of one host (:mod:`.hostfigures`), started with routing.
        self.host_figures: HostFigures | None = None

    async def start(self) -> None:
        """Bind, join the members (failures are logged; re-joining keeps trying), log the Go lines."""
        verdict = quickest_verdict(self.config)
        if self.settings.link_failure_hold >= verdict:
            # Not an error: it only makes a crashed node's messages wait longer before they are dropped.
            log.warning("[cluster] link_failure_hold (%g s) is not shorter than membership's quickest verdict on a "
                        "silent node (%g s with profile %s): a node that crashed is still held for up to %g s "
                        "after it is declared failed", self.settings.link_failure_hold, verdict,
                        self.settings.profile, self.settings.link_failure_hold)
        if self.keyring is None:
            log.warning("[cluster] has no key: cluster traffic is neither authenticated nor encrypted (set key or key_file)")
            if not is_private(self.advertise) and not self.advertise.startswith("127.") and self.advertise != "::1":
                log.warning("Binding to public address %s without encryption!", self.advertise)
        self.links = Links(self.cluster, keyring=self.keyring, label=self.settings.label,
                           limits=link_limits(self.broker.config), unix_path=self.unix_path)
        self.node.stream_taps[PREAMBLE[0]] = self.links.adopt_threadsafe
        await self.links.listen_unix()
        await self.runner.start()
        self.links.start()
        await self._join()
        log.info("Local member %s:%d", self.advertise, self.node.port)
        log.info("Cluster Node Created!")

    async def _join(self) -> None:
        """Join the configured members (a failure is a warning) and the sibling workers (one not up yet is expected)."""
        members, siblings = tuple(self.settings.members), tuple(self.settings.sibling_members)
        joined = 0
        if members:
            joined, errors = await self.runner.call(lambda: self.node.join(members))
            for error in errors:
                log.warning("Failed to join %s", error)
        if siblings:
            joined_siblings, errors = await self.runner.call(lambda: self.node.join(siblings))
            joined += joined_siblings
            for error in errors:  # the workers start together: that sibling joins this node when it is up
                log.debug("sibling worker not up yet: %s", error)
        if joined or not (members or siblings):
            return
        if members:
            log.warning("joined no cluster member yet; retrying every %.0f s", self.config.rejoin_interval)
        else:
            log.info("no sibling worker is up yet: each joins this one as it starts")

    def status(self) -> str:
        """One line for the startup banner."""
        keys = len(self.keyring.keys) if self.keyring is not None else 0
        security = f"encrypted ({keys} key{'s' if keys > 1 else ''})" if keys else "not encrypted"
        label = f", label {self.settings.label!r}" if self.settings.label else ""
        return (f"node {self.node.name} at {self.advertise}:{self.node.port}, {len(self.node.members())} member(s), "
                f"{security}{label}, profile {self.settings.profile}, runner {self.settings.runner}")

    async def listeners_bound(self) -> None:
        """Gossip the bound MQTT listener ports when they differ from the configured ones."""
        bound = listener_endpoints(self.broker.config, self.advertise, list(getattr(self.broker, "listeners", []) or []))
        if bound and bound != self.metadata.listeners:
            self.metadata = NodeMetadata(bound, self.metadata.extra)
            await self.cluster.update_metadata(self.metadata)

    async def stop(self) -> None:
        """Close the links (after at most a second for unacknowledged frames), leave (waiting at most ``leave_timeout``), close."""
        if self.links is not None:  # the tap stays: a closed Links refuses links, quietly
            await self.links.close(min(1.0, self.settings.leave_timeout))
        left = await self.runner.stop(self.settings.leave_timeout)
        if left:
            return
        if self.settings.members or not self.settings.sibling_members:
            log.warning("the leave did not spread within %.1f s; the others will notice the node is gone", self.settings.leave_timeout)
        else:  # a worker of a host alone: its siblings are stopping with it (a restarted one rejoins anyway)
            log.info("the leave did not reach the sibling workers within %.1f s (they stop with this one)",
                     self.settings.leave_timeout)

    def _event(self, event: NodeEvent) -> None:
        self.cluster.dispatch(event)


def _log_event(event: NodeEvent) -> None:
    """The operator's line for a member event, logged where membership runs, when it happens."""
    if isinstance(event, MemberEvent):
        line = _EVENT_LINES.get(event.kind)
        if line is not None:
            log.info(line, event.member.name)
