"""Membership timings and limits: memberlist's ``lan``, ``wan`` and ``local`` presets, overridable.

The numbers are memberlist's own (``DefaultLANConfig``, ``DefaultWANConfig``,
``DefaultLocalConfig`` in config.go); durations are seconds. Three settings are hookmq's:
``rejoin_interval`` and ``rejoin_timeout`` (re-joining after a partition, which memberlist
leaves to its user) and ``expect`` (the cluster size below which re-joining goes on).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

__all__ = ["PROFILES", "MembershipConfig", "ProfileName", "profile"]

ProfileName = Literal["lan", "wan", "local"]


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """Every knob of the failure detector and the gossip, in memberlist's terms."""

    #: Seconds allowed for a TCP stream (push/pull, reliable user message, join).
    tcp_timeout: float = 10.0
    #: Peers asked to probe a node indirectly after a direct probe failed (``k``).
    indirect_checks: int = 3
    #: A broadcast is sent ``retransmit_mult × ceil(log10(n + 1))`` times.
    retransmit_mult: int = 4
    #: Suspicion lasts ``suspicion_mult × max(1, log10 n) × probe_interval`` at least.
    suspicion_mult: int = 4
    #: … and at most this many times the minimum, when no peer confirms it.
    suspicion_max_timeout_mult: int = 6
    #: Seconds between full state exchanges over TCP (scaled up beyond 32 nodes).
    push_pull_interval: float = 30.0
    #: Seconds to wait for a direct ack before asking peers to probe indirectly.
    probe_timeout: float = 0.5
    #: Seconds between probes (one node each, round robin); scaled by local health.
    probe_interval: float = 1.0
    #: Local health (Lifeguard awareness) scales probe intervals up to this factor.
    awareness_max_multiplier: int = 8
    #: Random nodes each gossip round sends its pending broadcasts to.
    gossip_nodes: int = 3
    #: Seconds between gossip rounds.
    gossip_interval: float = 0.2
    #: Seconds a dead node is still gossiped to, then forgotten (reaped).
    gossip_to_the_dead_time: float = 30.0
    #: No TCP ping to a node whose UDP probe failed.
    disable_tcp_pings: bool = False
    #: LZW-compress packets (when smaller) and streams, as memberlist does by default.
    compression: bool = True
    #: Bytes per UDP packet that broadcasts are packed into.
    udp_buffer_size: int = 1400
    #: Seconds after which a dead node's name may be taken by another address (0: never).
    dead_node_reclaim_time: float = 0.0
    #: Seconds between re-join attempts while nodes are missing (hookmq; memberlist has none).
    rejoin_interval: float = 30.0
    #: Seconds a failed node keeps being re-joined (0: until it returns or leaves).
    rejoin_timeout: float = 0.0
    #: Re-join while fewer members than this are alive (0: only while failed nodes are missing).
    expect: int = 0
    #: Detect failures exactly as memberlist does, without hookmq's additions (the confirmations
    #: of docs/cluster.md, "Confirmations that always arrive"): the baseline that simulations
    #: compare hookmq with. Re-joining is separate (``rejoin_interval = 0`` turns it off).
    strict_memberlist: bool = False

    def with_overrides(self, **overrides: Any) -> MembershipConfig:
        """A copy with some fields changed; ``None`` values are ignored (not overridden)."""
        known = {field.name for field in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown membership setting(s): {', '.join(unknown)}")
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})


PROFILES: dict[str, MembershipConfig] = {
    "lan": MembershipConfig(),
    "wan": MembershipConfig(
        tcp_timeout=30.0,
        suspicion_mult=6,
        push_pull_interval=60.0,
        probe_timeout=3.0,
        probe_interval=5.0,
        gossip_nodes=4,
        gossip_interval=0.5,
        gossip_to_the_dead_time=60.0,
        rejoin_interval=60.0,
    ),
    "local": MembershipConfig(
        tcp_timeout=1.0,
        indirect_checks=1,
        retransmit_mult=2,
        suspicion_mult=3,
        push_pull_interval=15.0,
        probe_timeout=0.2,
        probe_interval=1.0,
        gossip_interval=0.1,
        gossip_to_the_dead_time=15.0,
        rejoin_interval=15.0,
    ),
}
"""memberlist's three default configurations (plus hookmq's re-join interval, equal to push/pull's)."""


def profile(name: str, **overrides: Any) -> MembershipConfig:
    """A preset by name with overrides applied (``None`` overrides keep the preset's value)."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown gossip profile {name!r}: choose lan, wan or local") from None
    return base.with_overrides(**overrides)
