"""Topic-filter algebra for ACL rules: does a rule's filter match a name, cover a filter, or overlap it.

All functions take filters already split on ``/`` (tuples of levels), because rules are split
once when they are loaded and the checks run on the publish path. The MQTT rule that a filter
starting with a wildcard never matches a topic starting with ``$`` (MQTT 5.0 §4.7.2) is applied
everywhere, which is what keeps ``$SYS/#`` closed behind a general ``#`` grant.
"""

from __future__ import annotations

Levels = tuple[str, ...]


def split(topic: str) -> Levels:
    """Split a topic name or filter into its levels."""
    return tuple(topic.split("/"))


def _dollar_guarded(rule: Levels, other: Levels) -> bool:
    """True when ``other`` starts with a ``$`` level that a leading wildcard in ``rule`` may not reach."""
    return rule[0] in ("+", "#") and other[0].startswith("$")


def matches(rule: Levels, name: Levels) -> bool:
    """True when the filter ``rule`` matches the topic name ``name``."""
    if _dollar_guarded(rule, name):
        return False
    for index, level in enumerate(rule):
        if level == "#":
            return True
        if index >= len(name):
            return False
        if level != "+" and level != name[index]:
            return False
    return len(rule) == len(name)


def covers(rule: Levels, requested: Levels) -> bool:
    """True when every topic the filter ``requested`` can match is matched by ``rule``.

    This is the test for granting a subscription: ``a/#`` covers ``a/+/b`` and ``a``, but
    ``a/+`` does not cover ``a/#``.
    """
    if _dollar_guarded(rule, requested):
        return False
    for index, level in enumerate(rule):
        if level == "#":
            return True
        if index >= len(requested):
            return False
        wanted = requested[index]
        if wanted == "#":
            # A requested `#` also matches its parent level, which a rule `+` cannot, except at
            # the first level, where no parent exists: there `+/#` is the same set as `#`.
            return index == 0 and level == "+" and rule[1:] == ("#",)
        if level == "+":
            continue
        if wanted == "+" or level != wanted:
            return False
    return len(rule) == len(requested)


def overlaps(rule: Levels, requested: Levels) -> bool:
    """True when at least one topic name is matched by both filters."""
    if _dollar_guarded(rule, requested) or _dollar_guarded(requested, rule):
        return False
    for index in range(max(len(rule), len(requested))):
        left = rule[index] if index < len(rule) else None
        right = requested[index] if index < len(requested) else None
        if left == "#" or right == "#":
            return True
        if left is None or right is None:
            # One filter ended: they still meet when the other's remainder is a lone `#`
            # (which matches the parent level too), handled by the check above on the next level.
            return False
        if left != right and left != "+" and right != "+":
            return False
    return True
