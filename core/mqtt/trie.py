"""The subscription trie: which subscriptions a published topic name reaches.

Filters are stored level by level. Matching a topic walks its levels once and, at each node,
looks up only three children: the exact word, ``+`` and ``#``. The cost of a match therefore
depends on the topic's depth and on the subscriptions that do match, never on the number of
unrelated ones. Shared subscriptions (``$share/<group>/<filter>``) live on the node of their
real filter, grouped by share name, so one match returns every member of every group.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .packets import SubscriptionOptions
from .topics import parse_shared

_PLUS = "+"
_HASH = "#"


@dataclass(slots=True)
class SubscriberEntry:
    """One client's subscription to one topic filter.

    ``topic_filter`` is the filter as the client sent it (``$share/<group>/`` included);
    ``share_group`` is derived from it when left ``None`` and must agree with it otherwise.
    ``identifier`` is the MQTT 5 subscription identifier, if the SUBSCRIBE carried one.
    """

    client_id: str
    topic_filter: str
    options: SubscriptionOptions
    identifier: int | None = None
    share_group: str | None = None

    def __post_init__(self) -> None:
        group, _ = parse_shared(self.topic_filter)
        if self.share_group is None:
            self.share_group = group
        elif self.share_group != group:
            raise ValueError(
                f"share_group {self.share_group!r} does not agree with topic filter {self.topic_filter!r}"
            )


@dataclass(slots=True)
class Matches:
    """The subscriptions one topic name reaches.

    ``direct`` holds every ordinary subscription (a client with several matching filters
    appears once per filter). ``shared`` maps ``(share group, real filter)`` to all members
    of that group; the engine picks which member gets the message.
    """

    direct: list[SubscriberEntry]
    shared: dict[tuple[str, str], list[SubscriberEntry]]

    def __init__(self, direct: list[SubscriberEntry], shared: dict[tuple[str, str], list[SubscriberEntry]]) -> None:
        # Written out (dataclass keeps it): mypyc compiles it, while the __init__ dataclass generates
        # stays interpreted, and one Matches is built per routed message.
        self.direct = direct
        self.shared = shared

    def __bool__(self) -> bool:
        """True when at least one subscription matched."""
        return bool(self.direct or self.shared)


class _ShareGroup:
    """The members of one share group on one real filter."""

    __slots__ = ("key", "members")

    def __init__(self, group: str, real_filter: str) -> None:
        # The Matches key is built once here so a match allocates no tuple per group.
        self.key = (group, real_filter)
        self.members: dict[str, SubscriberEntry] = {}


class _Node:
    """One topic level. ``+`` and ``#`` children sit in their own slots for a cheap match."""

    __slots__ = ("children", "groups", "hash", "plus", "subscribers")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.plus: _Node | None = None
        self.hash: _Node | None = None
        # Allocated on first use: most nodes are inner nodes and never hold a subscription.
        self.subscribers: dict[str, SubscriberEntry] | None = None
        self.groups: dict[str, _ShareGroup] | None = None

    def child(self, word: str) -> _Node | None:
        """The child for one filter level, if it exists."""
        if word == _PLUS:
            return self.plus
        if word == _HASH:
            return self.hash
        return self.children.get(word)

    def child_or_create(self, word: str) -> _Node:
        """The child for one filter level, created when missing."""
        node = self.child(word)
        if node is not None:
            return node
        node = _Node()
        if word == _PLUS:
            self.plus = node
        elif word == _HASH:
            self.hash = node
        else:
            self.children[word] = node
        return node

    def drop_child(self, word: str) -> None:
        """Forget the child for one filter level."""
        if word == _PLUS:
            self.plus = None
        elif word == _HASH:
            self.hash = None
        else:
            del self.children[word]

    def is_empty(self) -> bool:
        """True when the node holds no subscription and has no child, so it can be pruned."""
        return not (self.subscribers or self.groups or self.children or self.plus or self.hash)

    def iter_children(self) -> Iterator[_Node]:
        """Every child, wildcards included."""
        yield from self.children.values()
        if self.plus is not None:
            yield self.plus
        if self.hash is not None:
            yield self.hash


class SubscriptionTrie:
    """Every subscription of the broker, indexed by filter level and by client.

    Not thread-safe; the engine owns one and calls it from its event loop.
    """

    __slots__ = ("_by_client", "_count", "_root")

    def __init__(self) -> None:
        self._root = _Node()
        # client id -> topic filter as sent -> entry; makes per-client look-ups O(own subscriptions).
        self._by_client: dict[str, dict[str, SubscriberEntry]] = {}
        self._count = 0

    def __len__(self) -> int:
        """The number of subscriptions (client, filter pairs)."""
        return self._count

    def __iter__(self) -> Iterator[SubscriberEntry]:
        """Every subscription, grouped by client."""
        for own in self._by_client.values():
            yield from own.values()

    def subscribe(self, entry: SubscriberEntry) -> SubscriberEntry | None:
        """Add a subscription; return the same client's entry it replaced on that filter, if any."""
        group, real_filter = parse_shared(entry.topic_filter)
        node = self._root
        for word in real_filter.split("/"):
            node = node.child_or_create(word)
        replaced = _put_direct(node, entry) if group is None else _put_shared(node, group, real_filter, entry)
        self._by_client.setdefault(entry.client_id, {})[entry.topic_filter] = entry
        if replaced is None:
            self._count += 1
        return replaced

    def unsubscribe(self, client_id: str, topic_filter: str) -> SubscriberEntry | None:
        """Remove one subscription and prune the nodes it leaves empty; return it, or ``None``."""
        own = self._by_client.get(client_id)
        if own is None or topic_filter not in own:
            return None
        removed = own.pop(topic_filter)
        if not own:
            del self._by_client[client_id]
        self._count -= 1
        self._remove_from_nodes(client_id, topic_filter)
        return removed

    def remove_client(self, client_id: str) -> list[SubscriberEntry]:
        """Remove every subscription of a client; return them."""
        removed = self.subscriptions_of(client_id)
        for entry in removed:
            self.unsubscribe(client_id, entry.topic_filter)
        return removed

    def subscriptions_of(self, client_id: str) -> list[SubscriberEntry]:
        """The client's subscriptions, in the order they were first made."""
        own = self._by_client.get(client_id)
        return list(own.values()) if own else []

    def get(self, client_id: str, topic_filter: str) -> SubscriberEntry | None:
        """The client's subscription to exactly this filter (as sent), if any."""
        own = self._by_client.get(client_id)
        return own.get(topic_filter) if own else None

    def match(self, topic: str) -> Matches:
        """Every subscription whose filter matches the topic name ``topic``."""
        direct: list[SubscriberEntry] = []
        shared: dict[tuple[str, str], list[SubscriberEntry]] = {}
        words = iter(topic.split("/"))
        root = self._root
        nodes: list[_Node] = []
        first = root.children.get(next(words))
        if first is not None:
            nodes.append(first)
        # MQTT-4.7.2-1: a leading wildcard never matches a topic name starting with '$'.
        if topic[:1] != "$":
            if root.hash is not None:
                _collect(root.hash, direct, shared)
            if root.plus is not None:
                nodes.append(root.plus)
        for word in words:
            if not nodes:
                return Matches(direct, shared)
            next_nodes: list[_Node] = []
            for node in nodes:
                if node.hash is not None:
                    _collect(node.hash, direct, shared)
                child = node.children.get(word)
                if child is not None:
                    next_nodes.append(child)
                if node.plus is not None:
                    next_nodes.append(node.plus)
            nodes = next_nodes
        for node in nodes:
            _collect(node, direct, shared)
            # 'a/#' also matches 'a' itself: the parent level of '#' counts as a match.
            if node.hash is not None:
                _collect(node.hash, direct, shared)
        return Matches(direct, shared)

    def node_count(self) -> int:
        """The number of trie nodes below the root (a diagnostic; walks the whole trie)."""
        count = 0
        pending = list(self._root.iter_children())
        while pending:
            node = pending.pop()
            count += 1
            pending.extend(node.iter_children())
        return count

    def _remove_from_nodes(self, client_id: str, topic_filter: str) -> None:
        group, real_filter = parse_shared(topic_filter)
        words = real_filter.split("/")
        path = [self._root]
        for word in words:
            node = path[-1].child(word)
            if node is None:
                raise RuntimeError(f"subscription index out of step with the trie at {topic_filter!r}")
            path.append(node)
        leaf = path[-1]
        if group is None:
            _drop_direct(leaf, client_id)
        else:
            _drop_shared(leaf, group, client_id)
        for depth in range(len(words), 0, -1):
            if not path[depth].is_empty():
                break
            path[depth - 1].drop_child(words[depth - 1])


def _collect(
    node: _Node,
    direct: list[SubscriberEntry],
    shared: dict[tuple[str, str], list[SubscriberEntry]],
) -> None:
    if node.subscribers:
        direct.extend(node.subscribers.values())
    if node.groups:
        for share_group in node.groups.values():
            shared[share_group.key] = list(share_group.members.values())


def _put_direct(node: _Node, entry: SubscriberEntry) -> SubscriberEntry | None:
    if node.subscribers is None:
        node.subscribers = {}
    replaced = node.subscribers.get(entry.client_id)
    node.subscribers[entry.client_id] = entry
    return replaced


def _put_shared(node: _Node, group: str, real_filter: str, entry: SubscriberEntry) -> SubscriberEntry | None:
    if node.groups is None:
        node.groups = {}
    share_group = node.groups.get(group)
    if share_group is None:
        share_group = node.groups[group] = _ShareGroup(group, real_filter)
    replaced = share_group.members.get(entry.client_id)
    share_group.members[entry.client_id] = entry
    return replaced


def _drop_direct(node: _Node, client_id: str) -> None:
    if node.subscribers is not None:
        node.subscribers.pop(client_id, None)
        if not node.subscribers:
            node.subscribers = None


def _drop_shared(node: _Node, group: str, client_id: str) -> None:
    if node.groups is None or group not in node.groups:
        return
    members = node.groups[group].members
    members.pop(client_id, None)
    if not members:
        del node.groups[group]
        if not node.groups:
            node.groups = None
