"""The link handshake, sans-I/O: who the peer is, that it holds the cluster key, and the session keys.

After the dialer's preamble the acceptor speaks first::

    acceptor → dialer   HELLO   {version, name, boot, nonce, keyed, label, max_frame, features}
    dialer → acceptor   CLAIM   [body {version, name, target, boot, nonce, keyed, label, max_frame, base, stream,
                                       features}, proof]
    acceptor → dialer   ACCEPT  {fields {base, stream}, proof}      (or REFUSE {reason}, then close)

With a cluster key, ``proof`` is HMAC-SHA256 under the key over a role tag and the messages
exactly as sent (the dialer's over HELLO and the claim, the acceptor's over those and its
fields), so each side proves it holds the key against the other's fresh 32-byte nonce (a
recording replayed later meets a new nonce and fails), and nothing that sets the numbering
can be altered in flight. The dialer proves with its primary
key; the acceptor tries every key of its keyring (rotation) and answers with the one that
matched. Both then derive two AES-256-GCM session keys (one per direction) with HKDF-SHA256
from the key, salted by both nonces and bound to the transcript, so every connection has keys
of its own. Without a key, both sides must be keyless, and the handshake only names the nodes.

``boot`` is 8 random bytes per process start. ``stream`` is 8 random bytes per sender's
:class:`~.peer.PeerLink`: the reliable-frame numbering of :mod:`.sequencing` belongs to one
stream, so a restarted peer is recognised, and so is a peer that dropped its side of the link
(it declared us dead) and numbers from 1 again while we did not. ``base`` is
the first reliable sequence number the sender will (re)send. ``max_frame`` is the largest
frame content the speaker accepts. ``features`` (``x``, a bit set, absent from older nodes:
none) says what the speaker can read beyond version 1: bit 0, BATCH frames. Each side uses a
feature only if the other offered it, so nodes of both kinds share a cluster; with a key the
offers are covered by the proofs, so they cannot be stripped in flight.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgpack  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..wire import Keyring
from .errors import LinkError

__all__ = ["FEATURES", "FEATURE_BATCH", "HANDSHAKE_MAX_FRAME", "Established", "Handshake", "LocalIdentity", "Role"]

VERSION = 1
FEATURE_BATCH = 1
FEATURES = FEATURE_BATCH
"""The features this node offers (every one it can read)."""
HELLO, CLAIM, ACCEPT, REFUSE = 1, 2, 3, 4
HANDSHAKE_MAX_FRAME = 4096
"""No handshake message is larger; a bigger frame before the keys exist closes the link."""
NONCE_SIZE = 32
BOOT_SIZE = 8
MIN_FRAME = 65_536
MAX_FRAME = 1 << 30
_DIALER_TAG = b"hookmq link dialer\x00"
_ACCEPTOR_TAG = b"hookmq link acceptor\x00"
_KEYS_INFO = b"hookmq link session keys v1\x00"

Role = Literal["dialer", "acceptor"]


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """This node as the handshake presents it."""

    name: str
    boot: bytes
    keyring: Keyring | None
    label: str
    max_frame: int
    #: The features offered (FEATURES; 0 speaks as a node from before them).
    features: int = FEATURES


@dataclass(frozen=True, slots=True)
class Established:
    """A finished handshake: the peer, its stream and limits, and the session keys (None without a key)."""

    peer: str
    #: The peer's stream id (the identity of its numbering; see the module docstring).
    peer_boot: bytes
    peer_max_frame: int
    #: The first reliable sequence number the peer will send on this connection.
    peer_base: int
    send_key: bytes | None
    receive_key: bytes | None
    #: The features the peer offered (FEATURE_BATCH: it reads BATCH frames).
    peer_features: int = 0

    @property
    def batches(self) -> bool:
        """Whether frames to the peer may be sent in BATCH frames."""
        return bool(self.peer_features & FEATURE_BATCH)


def _pack(kind: int, body: Any) -> bytes:
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return bytes((kind,)) + packed


def _unpack(content: bytes) -> tuple[int, Any]:
    if not content:
        raise LinkError("malformed", "empty handshake message")
    try:
        body = msgpack.unpackb(content[1:], raw=False, strict_map_key=True)
    except Exception as error:  # any bytes may arrive: one answer for all of them
        raise LinkError("malformed", f"handshake message does not decode: {type(error).__name__}") from None
    return content[0], body


def _field(body: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(body, dict):
        raise LinkError("malformed", "handshake message is not a map")
    value = body.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LinkError("malformed", f"handshake field {key!r} missing or of the wrong type")
    return value


def _sized(body: Any, key: str, size: int) -> bytes:
    value: bytes = _field(body, key, bytes)
    if len(value) != size:
        raise LinkError("malformed", f"handshake field {key!r} is {len(value)} bytes, not {size}")
    return value


def _max_frame(body: Any) -> int:
    value: int = _field(body, "m", int)
    if not MIN_FRAME <= value <= MAX_FRAME:
        raise LinkError("malformed", f"max frame {value} out of range")
    return value


def _features(body: Any) -> int:
    value = body.get("x", 0)  # absent from older nodes: no features
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 32:
        raise LinkError("malformed", "handshake field 'x' of the wrong type")
    return value


def _base(body: Any) -> int:
    value: int = _field(body, "a", int)
    if not 1 <= value < 1 << 63:
        raise LinkError("malformed", f"base {value} out of range")
    return value


def _session_keys(key: bytes, hello: bytes, claim: bytes, acceptor_nonce: bytes, dialer_nonce: bytes) -> tuple[bytes, bytes]:
    """(dialer→acceptor, acceptor→dialer) keys, bound to this transcript."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=acceptor_nonce + dialer_nonce,
        info=_KEYS_INFO + hashlib.sha256(hello + claim).digest(),
    ).derive(key)
    return derived[:32], derived[32:]


def _proof(key: bytes, tag: bytes, hello: bytes, claim: bytes) -> bytes:
    return hmac.new(key, tag + len(hello).to_bytes(4, "big") + hello + claim, hashlib.sha256).digest()


class Handshake:
    """One side of one connection's handshake; feed it frame contents, send what it returns.

    :param expected_peer: (dialer) the node we mean to reach; another name closes the link.
    :param admit: (acceptor) ``admit(name)`` returns None to accept that node, or why not
        (``unknown-node``, ...); the refusal is sent to the dialer and the link closed.
    :param base: ``base(peer)``: the first reliable sequence number we will send to ``peer``.
    :param stream: ``stream(peer)``: the id of our numbering towards ``peer`` (8 bytes;
        default: our boot).
    :param random: the source of nonces (injected for tests).
    """

    def __init__(
        self,
        role: Role,
        local: LocalIdentity,
        *,
        base: Callable[[str], int],
        expected_peer: str | None = None,
        admit: Callable[[str], str | None] | None = None,
        random: Callable[[int], bytes] = os.urandom,
        stream: Callable[[str], bytes] | None = None,
    ) -> None:
        if role == "dialer" and expected_peer is None:
            raise ValueError("a dialer names the peer it dials")
        self.role = role
        self.local = local
        self.expected_peer = expected_peer
        self._admit = admit
        self._base = base
        self._stream = stream or (lambda _: local.boot)
        self._nonce = random(NONCE_SIZE)
        self._hello = b""
        self._claim = b""
        self._key: bytes | None = None
        self._peer: tuple[str, bytes, int] | None = None
        self._peer_features = 0
        self.done: Established | None = None

    @property
    def keyed(self) -> bool:
        """Whether this node has a cluster key."""
        return self.local.keyring is not None

    def start(self) -> list[bytes]:
        """What to send first: the acceptor's HELLO (the dialer waits for it)."""
        if self.role == "dialer":
            return []
        local = self.local
        self._hello = _pack(HELLO, {"v": VERSION, "n": local.name, "b": local.boot, "c": self._nonce, "k": self.keyed,
                                    "l": local.label, "m": local.max_frame, "x": local.features})
        return [self._hello]

    def receive(self, content: bytes) -> list[bytes]:
        """One handshake frame in; frames to send out. :attr:`done` is set once established."""
        if self.done is not None:
            raise LinkError("malformed", "handshake message after the handshake")
        kind, body = _unpack(content)
        if kind == REFUSE:
            reason = body.get("e") if isinstance(body, dict) else None
            raise LinkError("refused", f"the peer refused the link: {reason if isinstance(reason, str) else '?'}")
        if self.role == "dialer":
            return self._dialer_step(kind, content, body)
        return self._acceptor_step(kind, content, body)

    # ------------------------------------------------------------------ dialer

    def _dialer_step(self, kind: int, content: bytes, body: Any) -> list[bytes]:
        if kind == HELLO and not self._hello:
            return self._claim_for(content, body)
        if kind == ACCEPT and self._claim:
            self._accepted(body)
            return []
        raise LinkError("malformed", f"unexpected handshake message {kind}")

    def _common(self, body: Any) -> tuple[str, bytes, bytes, int]:
        if _field(body, "v", int) != VERSION:
            raise LinkError("version", f"link protocol version {body.get('v')}, not {VERSION}")
        name: str = _field(body, "n", str)
        boot = _sized(body, "b", BOOT_SIZE)
        nonce = _sized(body, "c", NONCE_SIZE)
        keyed: bool = _field(body, "k", bool)
        label: str = _field(body, "l", str)
        max_frame = _max_frame(body)
        if not name or len(name) > 512:
            raise LinkError("malformed", "bad node name")
        if keyed != self.keyed:
            raise LinkError("key-mismatch", "one node has a cluster key and the other has none")
        if label != self.local.label:
            raise LinkError("label", f"cluster label {label!r}, ours is {self.local.label!r}")
        return name, boot, nonce, max_frame

    def _claim_for(self, hello: bytes, body: Any) -> list[bytes]:
        name, boot, nonce, max_frame = self._common(body)
        if name != self.expected_peer:
            raise LinkError("wrong-node", f"dialled {self.expected_peer!r} but {name!r} answered")
        self._hello, self._acceptor_nonce = hello, nonce
        self._peer = (name, boot, max_frame)
        self._peer_features = _features(body)
        local = self.local
        claim = _pack(CLAIM, {"v": VERSION, "n": local.name, "t": name, "b": local.boot, "c": self._nonce, "k": self.keyed,
                              "l": local.label, "m": local.max_frame, "a": self._base(name), "s": self._stream(name),
                              "x": local.features})
        self._claim = claim
        proof = b""
        if local.keyring is not None:
            self._key = local.keyring.keys[0]
            proof = _proof(self._key, _DIALER_TAG, hello, claim)
        return [_pack(CLAIM, [claim, proof])]

    def _accepted(self, body: Any) -> None:
        assert self._peer is not None
        fields: bytes = _field(body, "f", bytes)
        proof: bytes = _field(body, "p", bytes)
        send_key = receive_key = None
        key = self._key
        if key is not None and not hmac.compare_digest(proof, _proof(key, _ACCEPTOR_TAG, self._hello, self._claim + fields)):
            raise LinkError("auth", "the acceptor's proof does not match our key")
        fields_kind, accepted = _unpack(fields)
        if fields_kind != ACCEPT:
            raise LinkError("malformed", "accept fields of another kind")
        base = _base(accepted)
        stream = _sized(accepted, "s", BOOT_SIZE)
        if self._key is not None:
            send_key, receive_key = _session_keys(self._key, self._hello, self._claim, self._acceptor_nonce, self._nonce)
        name, _, max_frame = self._peer
        self.done = Established(name, stream, max_frame, base, send_key, receive_key, self._peer_features)

    # ------------------------------------------------------------------ acceptor

    def _acceptor_step(self, kind: int, content: bytes, body: Any) -> list[bytes]:
        if kind != CLAIM or self._claim:
            raise LinkError("malformed", f"unexpected handshake message {kind}")
        if not (isinstance(body, list) and len(body) == 2 and isinstance(body[0], bytes) and isinstance(body[1], bytes)):
            raise LinkError("malformed", "a claim is [body, proof]")
        claim, proof = body
        inner_kind, inner = _unpack(claim)
        if inner_kind != CLAIM:
            raise LinkError("malformed", "claim body of another kind")
        name, _, nonce, max_frame = self._common(inner)
        target: str = _field(inner, "t", str)
        peer_base = _base(inner)
        peer_stream = _sized(inner, "s", BOOT_SIZE)
        features = _features(inner)
        key = self._verify(proof, claim)
        if target != self.local.name:
            raise LinkError("wrong-node", f"{name!r} dialled {target!r}, we are {self.local.name!r}",
                            reply=_pack(REFUSE, {"e": "wrong-node"}))
        if name == self.local.name:
            raise LinkError("wrong-node", "a link to ourselves", reply=_pack(REFUSE, {"e": "wrong-node"}))
        refusal = self._admit(name) if self._admit is not None else None
        if refusal is not None:
            raise LinkError(refusal, f"link from {name!r} refused", reply=_pack(REFUSE, {"e": refusal}))
        self._claim = claim
        fields = _pack(ACCEPT, {"a": self._base(name), "s": self._stream(name)})
        reply_proof = b""
        send_key = receive_key = None
        if key is not None:
            reply_proof = _proof(key, _ACCEPTOR_TAG, self._hello, claim + fields)
            receive_key, send_key = _session_keys(key, self._hello, claim, self._nonce, nonce)
        self.done = Established(name, peer_stream, max_frame, peer_base, send_key, receive_key, features)
        return [_pack(ACCEPT, {"f": fields, "p": reply_proof})]

    def _verify(self, proof: bytes, claim: bytes) -> bytes | None:
        """The key that made ``proof`` (every installed key is tried), None without a keyring."""
        keyring = self.local.keyring
        if keyring is None:
            return None
        for key in keyring.keys:
            if hmac.compare_digest(proof, _proof(key, _DIALER_TAG, self._hello, claim)):
                return key
        raise LinkError("auth", "the dialer's proof matches none of our keys")
