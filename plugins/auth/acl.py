"""ACL rules compiled for fast decisions, and the precedence that combines them.

Precedence (also in docs/auth.md):

1. Rules are grouped into three tiers: rules naming the client id (optionally also a user),
   rules naming a user, and rules for everyone (patterns with ``%u``/``%c`` included).
2. The most specific tier that has a rule *applying* to the request decides; a tier with no
   applying rule passes the question to the next one.
3. Inside the deciding tier a deny beats an allow.
4. When no tier decides, the plugin abstains, which the hook facade turns into a deny.

"Applying" means: the rule's access covers the request (``write`` = publish, ``read`` =
subscribe) and its filter matches it. For a publish the filter must match the topic name. For
a subscription an allow rule must *cover* the requested filter (every topic it can match), and
a deny rule applies when it covers the requested filter too, or, with
``deny_overlapping_subscriptions``, as soon as the two filters overlap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hookmq.mqtt.topics import parse_shared

from .filters import Levels, covers, matches, overlaps, split
from .settings import AclRule

# Characters that would turn a substituted name into a wildcard or another level, widening the
# rule (user "+" with pattern "users/%u/#" would otherwise reach every user's tree).
_UNSAFE_IN_PATTERN = frozenset("+#/")

_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """An :class:`AclRule` split into levels, with its access as flags."""

    levels: Levels
    read: bool
    write: bool
    deny: bool
    user: str | None
    templated: bool

    @classmethod
    def compile(cls, rule: AclRule) -> CompiledRule:
        """Prepare one configured rule."""
        return cls(
            levels=split(rule.topic),
            read=rule.access in ("read", "readwrite"),
            write=rule.access in ("write", "readwrite"),
            deny=rule.effect == "deny",
            user=rule.user,
            templated="%u" in rule.topic or "%c" in rule.topic,
        )

    def resolve(self, user: str | None, client_id: str) -> Levels | None:
        """The filter levels for this client, or None when a ``%u``/``%c`` cannot be filled safely."""
        if not self.templated:
            return self.levels
        resolved = []
        for level in self.levels:
            if "%u" in level:
                if not user or _UNSAFE_IN_PATTERN.intersection(user):
                    return None
                level = level.replace("%u", user)
            if "%c" in level:
                if not client_id or _UNSAFE_IN_PATTERN.intersection(client_id):
                    return None
                level = level.replace("%c", client_id)
            resolved.append(level)
        return tuple(resolved)


class AclIndex:
    """An immutable set of compiled rules, indexed by tier, that answers ACL checks."""

    def __init__(self, rules: Iterable[AclRule], *, deny_overlapping_subscriptions: bool = False) -> None:
        """Compile ``rules``; the index never changes afterwards (a reload builds a new one)."""
        self._by_client: dict[str, list[CompiledRule]] = {}
        self._by_user: dict[str, list[CompiledRule]] = {}
        self._general: list[CompiledRule] = []
        self._deny_overlapping = deny_overlapping_subscriptions
        self._cache: dict[tuple[str | None, str, str, bool], bool | None] = {}
        self.size = 0
        for rule in rules:
            compiled = CompiledRule.compile(rule)
            self.size += 1
            if rule.client_id is not None:
                self._by_client.setdefault(rule.client_id, []).append(compiled)
            elif rule.user is not None:
                self._by_user.setdefault(rule.user, []).append(compiled)
            else:
                self._general.append(compiled)

    def decide(self, *, user: str | None, client_id: str, topic: str, write: bool) -> bool | None:
        """True (allowed), False (explicitly denied) or None (no rule applies: abstain).

        ``topic`` is a topic name when ``write`` (a publish) and a topic filter otherwise (a
        subscription, ``$share/<group>/`` prefix allowed).
        """
        key = (user, client_id, topic, write)
        try:
            return self._cache[key]
        except KeyError:
            pass
        decision = self._decide_uncached(user, client_id, topic, write)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # simple bound; the hot keys come back at once
        self._cache[key] = decision
        return decision

    def _decide_uncached(self, user: str | None, client_id: str, topic: str, write: bool) -> bool | None:
        if not write:
            topic = parse_shared(topic)[1]
        levels = split(topic)
        tiers = (
            self._by_client.get(client_id, ()),
            self._by_user.get(user, ()) if user is not None else (),
            self._general,
        )
        for rules in tiers:
            decision = self._tier_decision(rules, user, client_id, levels, write)
            if decision is not None:
                return decision
        return None

    def _tier_decision(
        self, rules: Iterable[CompiledRule], user: str | None, client_id: str, requested: Levels, write: bool
    ) -> bool | None:
        allowed = False
        for rule in rules:
            if not (rule.write if write else rule.read):
                continue
            if rule.user is not None and rule.user != user:
                continue
            levels = rule.resolve(user, client_id)
            if levels is None:
                continue
            if rule.deny and self._deny_applies(levels, requested, write):
                return False
            if not rule.deny and (matches(levels, requested) if write else covers(levels, requested)):
                allowed = True
        return True if allowed else None

    def _deny_applies(self, levels: Levels, requested: Levels, write: bool) -> bool:
        if write:
            return matches(levels, requested)
        if self._deny_overlapping:
            return overlaps(levels, requested)
        return covers(levels, requested)
