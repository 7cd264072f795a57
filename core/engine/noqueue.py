"""The one empty queue every session shares until it queues its first message.

An empty deque costs 624 bytes, and most sessions never queue a message; `Session.enqueue` and
`Session.restore_queued` give a session its own deque when it first needs one. It lives apart
from `hookmq.engine.session` because that module is compiled, and a compiled module cannot
define a subclass of a built-in type that replaces its methods.

State owned: the shared empty deque. Who changes it: nobody; it refuses every change.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NoReturn


class _NoQueue(deque[Any]):
    """One shared, empty deque that refuses changes."""

    def _refuse(self, *args: object) -> NoReturn:
        raise TypeError("the shared empty queue cannot change: use Session.enqueue or Session.restore_queued")

    append = appendleft = extend = extendleft = insert = _refuse
    #: Hashable by identity, so a dataclass takes the one shared instance as a field default.
    __hash__ = object.__hash__  # type: ignore[assignment]


#: Shared by every session with nothing queued.
NO_QUEUE: deque[Any] = _NoQueue()

__all__ = ["NO_QUEUE"]
