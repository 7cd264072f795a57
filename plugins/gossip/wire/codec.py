"""msgpack the way go-msgpack's default ``MsgpackHandle`` writes it, and strict field reading.

memberlist encodes its structs as msgpack maps keyed by the Go field names in sorted order,
with strings and byte slices both as the legacy *raw* type (no str8, no bin) and a nil byte
slice as nil. ``msgpack.packb(use_bin_type=False)`` writes exactly that; reading uses
``raw=True`` so names and bytes come back as ``bytes``. A field spec (name, kind) turns a map
into checked Python values: a peer's wrong type or out-of-range number is a
:class:`WireError`, never a ``TypeError`` deep inside the state machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgpack  # type: ignore[import-untyped]

from .errors import WireError

__all__ = ["FieldKind", "decode_fields", "encode_fields", "from_go_string", "pack", "to_go_string", "unpack_one"]

FieldKind = Literal["u8", "u16", "u32", "int", "bool", "str", "bytes", "nbytes"]
"""How a field travels: unsigned widths, Go ``int``, bool, string, ``[]byte`` (``nbytes``: nil when empty)."""

_MAX_OBJECT = 32 * 1024 * 1024
_LIMITS = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFF_FFFF, "int": (1 << 63) - 1}


def to_go_string(text: str) -> bytes:
    """A Python name as the bytes Go sends (names are arbitrary bytes in Go; round-trips losslessly)."""
    return text.encode("utf-8", "surrogateescape")


def from_go_string(raw: bytes) -> str:
    """Bytes from the wire as a Python string; invalid UTF-8 survives as surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


def pack(value: Any) -> bytes:
    """msgpack-encode as go-msgpack does (raw strings, no bin type)."""
    packed: bytes = msgpack.packb(value, use_bin_type=False)
    return packed


def unpack_one(data: bytes) -> tuple[Any, int]:
    """Decode the first msgpack object of ``data``; returns it and how many bytes it took.

    Bytes after the object are left alone, as Go's decoder does with a packet body.
    """
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=max(len(data), 1))
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
    except msgpack.OutOfData:
        raise WireError("truncated", "msgpack object is cut short") from None
    except (ValueError, TypeError, OverflowError, msgpack.ExtraData, msgpack.StackError) as error:
        raise WireError("msgpack", f"invalid msgpack: {error}") from None
    return value, unpacker.tell()


def encode_fields(spec: Sequence[tuple[str, FieldKind]], values: Sequence[Any], omit_empty: frozenset[str] = frozenset()) -> bytes:
    """A struct as a map in Go field-name order; ``omit_empty`` names fields left out when zero."""
    body: dict[bytes, Any] = {}
    for (name, kind), value in sorted(zip(spec, values, strict=True), key=lambda item: item[0][0]):
        if name in omit_empty and not value:
            continue
        body[name.encode()] = _to_wire(kind, value)
    return pack(body)


def _to_wire(kind: FieldKind, value: Any) -> Any:
    if kind == "str":
        return to_go_string(value)
    if kind == "nbytes":
        return bytes(value) if value else None
    if kind == "bytes":
        return bytes(value)
    return value


def decode_fields(obj: object, spec: Sequence[tuple[str, FieldKind]], what: str) -> list[Any]:
    """Read the fields of a decoded map; absent fields take Go's zero value, unknown ones are ignored."""
    if not isinstance(obj, Mapping):
        raise WireError("field", f"{what}: expected a map, got {type(obj).__name__}")
    values = []
    for name, kind in spec:
        raw = obj.get(name.encode())
        values.append(_from_wire(kind, raw, f"{what}.{name}"))
    return values


def _from_wire(kind: FieldKind, raw: object, where: str) -> Any:
    if kind in _LIMITS:
        if raw is None:
            return 0
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= _LIMITS[kind]:
            raise WireError("field", f"{where}: expected an integer in 0..{_LIMITS[kind]}")
        return raw
    if kind == "bool":
        if raw is None:
            return False
        if not isinstance(raw, bool):
            raise WireError("field", f"{where}: expected a boolean")
        return raw
    if raw is None:
        return "" if kind == "str" else b""
    if not isinstance(raw, bytes):
        raise WireError("field", f"{where}: expected a string")
    return from_go_string(raw) if kind == "str" else raw
