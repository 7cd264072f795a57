"""Retained messages: the last retained message of each topic, with a version per topic.

Every change (a retained message set, a topic cleared, a message expired) gets a version, an
integer from a hybrid logical clock: the wall clock in nanoseconds, but always above every
version this broker has made or seen. A change from elsewhere (`apply`) wins only when its
version is newer than the one held, and a cleared topic keeps its version as a tombstone for a
while, so an older update arriving late never resurrects it. That is what a cluster's cache
needs to stay consistent with a shared store.

State owned: topic → message, topic → version, the tombstones and the version clock. Who
changes it: the router (retained publishes), the Broker API (delete, replace), the broker's
housekeeping (expiry, old tombstones) and the broker at start (what the store held).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..mqtt.topics import topic_matches
from .message import Message

#: Nanoseconds a cleared topic's version is remembered (older updates arriving later lose).
TOMBSTONE_NS = 300 * 1_000_000_000

#: Cleared topics remembered at most (the oldest clears are forgotten first), so that clients
#: clearing endless distinct topics cannot grow the broker's memory.
MAX_TOMBSTONES = 100_000


@dataclass(frozen=True, slots=True)
class RetainedVersion:
    """One topic of the retained set: its message (``None``: cleared) and the version of that state."""

    topic: str
    message: Message | None
    version: int


class RetainedMessages:
    """Topic name → last retained message, with versions.

    A filter without wildcards is one dictionary lookup; a wildcard filter scans the retained
    topics, which happens once per subscription, never per published message.
    """

    __slots__ = ("_by_topic", "_clock", "_last", "_tombstones", "_versions", "system_count")

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._by_topic: dict[str, Message] = {}
        self._versions: dict[str, int] = {}
        #: Cleared topics → the version of the clear.
        self._tombstones: OrderedDict[str, int] = OrderedDict()
        self._clock = clock
        self._last = 0
        #: How many of them are on `$`-topics (`$SYS`), which clients never publish.
        self.system_count = 0

    def __len__(self) -> int:
        return len(self._by_topic)

    @property
    def client_count(self) -> int:
        """Retained messages on topics clients publish to (all but the `$`-topics)."""
        return len(self._by_topic) - self.system_count

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self._by_topic.values()))

    def topics(self) -> list[str]:
        """Every topic holding a retained message, oldest first."""
        return list(self._by_topic)

    def get(self, topic: str) -> Message | None:
        """The retained message of exactly this topic."""
        return self._by_topic.get(topic)

    # ------------------------------------------------------------------ versions

    def next_version(self) -> int:
        """A version newer than every one made or seen here."""
        version = self._clock()
        if version <= self._last:
            version = self._last + 1
        self._last = version
        return version

    def version(self, topic: str) -> int | None:
        """The version of the topic's current state (set or cleared), or None when never seen."""
        version = self._versions.get(topic)
        return version if version is not None else self._tombstones.get(topic)

    # ------------------------------------------------------------------ local changes

    def store(self, message: Message, version: int | None = None) -> bool:
        """Keep ``message`` (an empty payload clears the topic); returns True when one is now stored."""
        if version is None:
            version = self.next_version()
        else:
            self._last = max(self._last, version)
        topic = message.topic
        if message.payload:
            self._put(topic, message, version)
            return True
        self._clear(topic, version)
        return False

    def delete(self, topic: str) -> bool:
        """Clear a topic; returns whether a message was retained there."""
        if topic not in self._by_topic:
            return False
        self._clear(topic, self.next_version())
        return True

    def _put(self, topic: str, message: Message, version: int) -> None:
        by_topic = self._by_topic
        if topic not in by_topic and topic.startswith("$"):
            self.system_count += 1
        by_topic[topic] = message
        self._versions[topic] = version
        self._tombstones.pop(topic, None)

    def _clear(self, topic: str, version: int) -> None:
        if self._by_topic.pop(topic, None) is not None and topic.startswith("$"):
            self.system_count -= 1
        self._versions.pop(topic, None)
        tombstones = self._tombstones
        tombstones[topic] = version
        tombstones.move_to_end(topic)
        if len(tombstones) > MAX_TOMBSTONES:
            tombstones.popitem(last=False)

    # ------------------------------------------------------------------ changes from elsewhere

    def apply(self, topic: str, message: Message | None, version: int) -> bool:
        """Take a state made elsewhere if it is newer than the one held; returns whether it was taken."""
        self._last = max(self._last, version)
        held = self.version(topic)
        if held is not None and version <= held:
            return False
        if message is not None and message.payload:
            self._put(topic, message, version)
        else:
            self._clear(topic, version)
        return True

    def snapshot(self) -> list[RetainedVersion]:
        """Every topic's state with its version, cleared topics (still remembered) included."""
        entries = [RetainedVersion(topic, message, self._versions[topic]) for topic, message in self._by_topic.items()]
        entries.extend(RetainedVersion(topic, None, version) for topic, version in self._tombstones.items())
        return entries

    def changes(self, entries: Iterable[RetainedVersion]) -> list[RetainedVersion]:
        """Apply each entry (newer wins); returns the ones taken."""
        return [entry for entry in entries if self.apply(entry.topic, entry.message, entry.version)]

    # ------------------------------------------------------------------ reading, expiry

    def matching(self, topic_filter: str) -> list[Message]:
        """Retained messages whose topic matches ``topic_filter``."""
        if "+" not in topic_filter and "#" not in topic_filter:
            found = self._by_topic.get(topic_filter)
            return [found] if found is not None else []
        return [m for topic, m in self._by_topic.items() if topic_matches(topic_filter, topic)]

    def expired(self, now: float) -> list[Message]:
        """Remove and return the retained messages whose expiry has passed (each keeps its version as a tombstone)."""
        gone = [m for m in self._by_topic.values() if m.expiry_at is not None and now >= m.expiry_at]
        for message in gone:
            self._clear(message.topic, self._versions[message.topic])
        return gone

    def forget_tombstones(self, before: int) -> None:
        """Drop the tombstones of clears older than version ``before`` (the oldest come first)."""
        tombstones = self._tombstones
        while tombstones:
            topic, version = next(iter(tombstones.items()))
            if version >= before:
                return
            del tombstones[topic]


__all__ = ["MAX_TOMBSTONES", "TOMBSTONE_NS", "RetainedMessages", "RetainedVersion"]
