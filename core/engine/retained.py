"""Retained messages: the last retained message of each topic, found by topic filter."""

from __future__ import annotations

from collections.abc import Iterator

from ..mqtt.topics import topic_matches
from .message import Message


class RetainedMessages:
    """Topic name → last retained message.

    A filter without wildcards is one dictionary lookup; a wildcard filter scans the retained
    topics, which happens once per subscription, never per published message.
    """

    def __init__(self) -> None:
        self._by_topic: dict[str, Message] = {}
        #: How many of them are on `$`-topics (`$SYS`), which clients never publish.
        self.system_count = 0

    def __len__(self) -> int:
        return len(self._by_topic)

    @property
    def client_count(self) -> int:
        """Retained messages on topics clients publish to (all but the `$`-topics)."""
        return len(self._by_topic) - self.system_count

    def _added(self, topic: str) -> None:
        if topic.startswith("$"):
            self.system_count += 1

    def _removed(self, topic: str) -> None:
        if topic.startswith("$"):
            self.system_count -= 1

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self._by_topic.values()))

    def topics(self) -> list[str]:
        """Every topic holding a retained message, oldest first."""
        return list(self._by_topic)

    def get(self, topic: str) -> Message | None:
        """The retained message of exactly this topic."""
        return self._by_topic.get(topic)

    def store(self, message: Message) -> bool:
        """Keep ``message`` (an empty payload clears the topic); returns True when one is now stored."""
        if message.payload:
            if self._by_topic.get(message.topic) is None:
                self._added(message.topic)
            self._by_topic[message.topic] = message
            return True
        self.delete(message.topic)
        return False

    def delete(self, topic: str) -> bool:
        """Clear a topic; returns whether a message was retained there."""
        if self._by_topic.pop(topic, None) is None:
            return False
        self._removed(topic)
        return True

    def matching(self, topic_filter: str) -> list[Message]:
        """Retained messages whose topic matches ``topic_filter``."""
        if "+" not in topic_filter and "#" not in topic_filter:
            found = self._by_topic.get(topic_filter)
            return [found] if found is not None else []
        return [m for topic, m in self._by_topic.items() if topic_matches(topic_filter, topic)]

    def expired(self, now: float) -> list[Message]:
        """Remove and return the retained messages whose expiry has passed."""
        gone = [m for m in self._by_topic.values() if m.expiry_at is not None and now >= m.expiry_at]
        for message in gone:
            del self._by_topic[message.topic]
            self._removed(message.topic)
        return gone
