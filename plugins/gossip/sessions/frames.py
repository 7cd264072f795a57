"""The bodies cluster sessions send over the data links, sans-I/O: encode to bytes, decode or raise `FrameError`.

Kinds 64–71 are cluster sessions' (routing has 32–63). Bodies are msgpack arrays; a session's
state travels as the store's own record encodings (`hookmq.store.serialize`), so what moves
between nodes is exactly what a store would have kept.

========================  ==================================================================
kind                      body
========================  ==================================================================
``TAKEOVER``      64      ``[request_id, client_id, clean_start, want_state, epoch]``: end the
                          client id's session here as a takeover would, flush, hand it over,
                          unless this node holds a newer epoch than ``epoch`` (0: no store)
``HANDOVER``      65      ``[request_id, state or nil]``: the answer to a ``TAKEOVER`` that
                          wanted the state (nodes without a shared store)
``ORPHANED``      66      ``[dead, last, [[client_id, message], ...]]``: messages the sender
                          had forwarded to the failed node ``dead`` without acknowledgement,
                          for the sessions of ``dead`` the receiver adopts (``message`` is a
                          stored message); ``last``: the sender has sent all it had
========================  ==================================================================

``state`` is ``[session, [subscription...], [outgoing...], [incoming packet id...], [queued...]]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]

from hookmq.store.records import SessionState, StoredMessage
from hookmq.store.serialize import (
    decode_message,
    decode_outgoing,
    decode_session,
    decode_subscription,
    encode_message,
    encode_outgoing,
    encode_session,
    encode_subscription,
)

__all__ = ["HANDOVER", "KINDS", "ORPHANED", "TAKEOVER", "FrameError", "Handover", "Orphaned", "Takeover",
           "decode", "encode_handover", "encode_orphaned", "encode_takeover"]

TAKEOVER = 64
HANDOVER = 65
ORPHANED = 66
KINDS = frozenset({TAKEOVER, HANDOVER, ORPHANED})

#: A client id is an MQTT string: at most 65 535 UTF-8 bytes.
MAX_CLIENT_ID = 65_535


class FrameError(ValueError):
    """A body that is not a well-formed frame of its kind."""


@dataclass(frozen=True, slots=True)
class Takeover:
    """Another node asks this one to end and hand over the session of ``client_id``."""

    request_id: int
    client_id: str
    clean_start: bool
    want_state: bool
    #: The owner's epoch the asking node saw; a node holding a newer one keeps its session.
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Handover:
    """The state of a session handed over (None: there was none, or it ended with clean start)."""

    request_id: int
    state: SessionState | None


@dataclass(frozen=True, slots=True)
class Orphaned:
    """Messages for sessions of the failed node ``dead`` that the receiver adopts."""

    dead: str
    last: bool
    messages: tuple[tuple[str, StoredMessage], ...]


def encode_orphaned(dead: str, last: bool, messages: list[tuple[str, StoredMessage]]) -> bytes:
    """The body of an ``ORPHANED``."""
    return bytes(msgpack.packb([dead, last, [[cid, encode_message(m)] for cid, m in messages]]))


def encode_takeover(request_id: int, client_id: str, clean_start: bool, want_state: bool, epoch: int = 0) -> bytes:
    """The body of a ``TAKEOVER``."""
    return bytes(msgpack.packb([request_id, client_id, clean_start, want_state, epoch]))


def encode_handover(request_id: int, state: SessionState | None) -> bytes:
    """The body of a ``HANDOVER``."""
    encoded = None
    if state is not None:
        encoded = [encode_session(state.session), [encode_subscription(s) for s in state.subscriptions],
                   [encode_outgoing(o) for o in state.outgoing], list(state.incoming),
                   [encode_message(m) for m in state.queue]]
    return bytes(msgpack.packb([request_id, encoded]))


def decode(kind: int, body: bytes) -> Takeover | Handover | Orphaned:
    """One frame of cluster sessions; :raises FrameError: when it is not one."""
    try:
        value: Any = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types for bad input
        raise FrameError(f"not msgpack: {error}") from None
    if not isinstance(value, list):
        raise FrameError("not an array")
    try:
        if kind == TAKEOVER:
            return _takeover(value)
        if kind == HANDOVER:
            return _handover(value)
        if kind == ORPHANED:
            return _orphaned(value)
    except (TypeError, ValueError) as error:
        raise FrameError(f"bad frame of kind {kind}: {error}") from None
    raise FrameError(f"kind {kind} is not a sessions frame")


def _request_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ValueError("request id")
    return value


def _takeover(value: list[Any]) -> Takeover:
    request_id, client_id, clean_start, want_state, epoch = value
    if not isinstance(client_id, str) or len(client_id.encode("utf-8", "surrogatepass")) > MAX_CLIENT_ID:
        raise ValueError("client id")
    if not isinstance(clean_start, bool) or not isinstance(want_state, bool):
        raise ValueError("flags")
    return Takeover(_request_id(request_id), client_id, clean_start, want_state, _request_id(epoch))


def _handover(value: list[Any]) -> Handover:
    request_id, encoded = value
    if encoded is None:
        return Handover(_request_id(request_id), None)
    session, subscriptions, outgoing, incoming, queue = encoded
    if not all(isinstance(part, list) for part in (subscriptions, outgoing, incoming, queue)):
        raise ValueError("state parts")
    if not all(isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 65_536 for pid in incoming):
        raise ValueError("incoming packet ids")
    state = SessionState(decode_session(_bytes(session)),
                         tuple(decode_subscription(_bytes(s)) for s in subscriptions),
                         tuple(decode_outgoing(_bytes(o)) for o in outgoing),
                         tuple(incoming),
                         tuple(decode_message(_bytes(m)) for m in queue))
    return Handover(_request_id(request_id), state)


def _orphaned(value: list[Any]) -> Orphaned:
    dead, last, items = value
    if not isinstance(dead, str) or not isinstance(last, bool) or not isinstance(items, list):
        raise ValueError("orphaned header")
    messages = []
    for item in items:
        client_id, message = item
        if not isinstance(client_id, str):
            raise ValueError("client id")
        messages.append((client_id, decode_message(_bytes(message))))
    return Orphaned(dead, last, tuple(messages))


def _bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("record bytes")
    return value
