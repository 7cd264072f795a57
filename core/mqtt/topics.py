"""Topic names, topic filters and how they match (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7 and §4.8).

A *topic name* is what a PUBLISH is sent to; it has no wildcards. A *topic filter* is what a
SUBSCRIBE asks for; ``+`` stands for exactly one level and ``#`` for any number of trailing
levels (zero included). A filter of the form ``$share/<group>/<filter>`` is an MQTT 5 shared
subscription: the messages matching ``<filter>`` are spread over the members of ``<group>``.

Every check raises :class:`~hookmq.mqtt.errors.ProtocolError`; see ``docs/topics.md`` for the
reason code chosen for each rule.
"""

from __future__ import annotations

from .errors import ProtocolError
from .packets import Subscription
from .reason_codes import ReasonCode

#: The prefix that makes a topic filter a shared subscription.
SHARE_PREFIX = "$share/"

#: The largest UTF-8 encoded string MQTT can carry (a two-byte length prefix).
MAX_TOPIC_BYTES = 65_535

# A UTF-8 code point takes at most 4 bytes, so a string this short is always within the limit
# and we can skip the encoding on the hot path.
_ALWAYS_SHORT_ENOUGH = MAX_TOPIC_BYTES // 4


def validate_topic_name(name: str) -> None:
    """Check a PUBLISH topic name; raise ``ProtocolError(TOPIC_NAME_INVALID)`` when it is bad.

    A topic name is at least one character long, at most 65 535 UTF-8 bytes, and contains
    neither wildcard (``+``, ``#``) nor U+0000. Names starting with ``$`` are valid here;
    whether a client may publish to them is the engine's policy.
    """
    if not name:
        raise _bad_name("a topic name must not be empty")
    if "+" in name or "#" in name:
        raise _bad_name(f"a topic name must not contain wildcards: {name!r}")
    if "\x00" in name:
        raise _bad_name("a topic name must not contain U+0000")
    if _too_long(name):
        raise _bad_name(f"a topic name must not exceed {MAX_TOPIC_BYTES} UTF-8 bytes")


def validate_topic_filter(topic_filter: str) -> None:
    """Check a SUBSCRIBE/UNSUBSCRIBE filter; raise ``ProtocolError(TOPIC_FILTER_INVALID)``.

    Rules: non-empty, at most 65 535 UTF-8 bytes, no U+0000; ``+`` fills a whole level; ``#``
    fills a whole level and is the last one. A ``$share/<group>/<filter>`` filter needs a
    non-empty group without ``/``, ``+`` or ``#``, followed by a non-empty valid filter.
    """
    if not topic_filter:
        raise _bad_filter("a topic filter must not be empty")
    if "\x00" in topic_filter:
        raise _bad_filter("a topic filter must not contain U+0000")
    if _too_long(topic_filter):
        raise _bad_filter(f"a topic filter must not exceed {MAX_TOPIC_BYTES} UTF-8 bytes")
    if topic_filter.startswith(SHARE_PREFIX):
        _validate_share(topic_filter)
    else:
        _validate_wildcards(topic_filter)


def validate_subscription(subscription: Subscription) -> None:
    """Check one SUBSCRIBE entry: its filter, then the rules that tie options to the filter.

    Setting No Local on a shared subscription is a protocol error (MQTT-3.8.3-4), so that
    case raises ``ProtocolError(PROTOCOL_ERROR)``; filter errors are as for
    :func:`validate_topic_filter`.
    """
    validate_topic_filter(subscription.topic_filter)
    if subscription.options.no_local and subscription.topic_filter.startswith(SHARE_PREFIX):
        raise ProtocolError(
            ReasonCode.PROTOCOL_ERROR,
            f"No Local must not be set on a shared subscription: {subscription.topic_filter!r}",
        )


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split a filter into ``(share group, real filter)``; the group is ``None`` if unshared.

    ``parse_shared("$share/g/a/+")`` is ``("g", "a/+")``; ``parse_shared("a/+")`` is
    ``(None, "a/+")``. The filter is assumed valid (see :func:`validate_topic_filter`).
    """
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, _, real_filter = topic_filter[len(SHARE_PREFIX) :].partition("/")
    return group, real_filter


def is_wildcard(topic_filter: str) -> bool:
    """Tell whether a filter contains ``+`` or ``#`` (and so can match more than one name)."""
    return "+" in topic_filter or "#" in topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Tell whether a topic name matches a (valid) topic filter.

    A ``$share/<group>/`` prefix is ignored: what matters is the real filter. A filter whose
    first level is ``+`` or ``#`` never matches a name starting with ``$`` (MQTT-4.7.2-1), and
    ``a/#`` matches ``a`` itself as well as everything below it.
    """
    _, real_filter = parse_shared(topic_filter)
    if topic.startswith("$") and real_filter[:1] in ("+", "#"):
        return False
    filter_levels = real_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)


def _validate_share(topic_filter: str) -> None:
    group, separator, real_filter = topic_filter[len(SHARE_PREFIX) :].partition("/")
    if not group:
        raise _bad_filter(f"a shared subscription needs a non-empty share name: {topic_filter!r}")
    if "+" in group or "#" in group:
        raise _bad_filter(f"a share name must not contain wildcards: {topic_filter!r}")
    if not separator or not real_filter:
        raise _bad_filter(f"a share name must be followed by '/' and a topic filter: {topic_filter!r}")
    _validate_wildcards(real_filter)


def _validate_wildcards(topic_filter: str) -> None:
    if not is_wildcard(topic_filter):
        return
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        if level in ("+", "#"):
            if level == "#" and index != last:
                raise _bad_filter(f"'#' must be the last level of a topic filter: {topic_filter!r}")
        elif "+" in level or "#" in level:
            raise _bad_filter(f"a wildcard must occupy a whole topic level: {topic_filter!r}")


def _too_long(text: str) -> bool:
    return len(text) > _ALWAYS_SHORT_ENOUGH and len(text.encode("utf-8", "surrogatepass")) > MAX_TOPIC_BYTES


def _bad_name(message: str) -> ProtocolError:
    return ProtocolError(ReasonCode.TOPIC_NAME_INVALID, message)


def _bad_filter(message: str) -> ProtocolError:
    return ProtocolError(ReasonCode.TOPIC_FILTER_INVALID, message)
