"""LZW as Go's ``compress/lzw`` writes and reads it: LSB bit order, literal width 8.

memberlist compresses packets and streams with exactly this codec (util.go, ``lzwLitWidth``),
and no maintained Python library produces Go's stream, so it is written here. The encoder's
output is byte-identical to Go's writer (a clear code first, codes growing from 9 to 12 bits,
a clear code when the table is full, an end code, the last partial byte); the decoder
accepts everything Go's reader accepts and raises :class:`WireError` for the rest, including a
missing end code, which Go reports as an unexpected EOF.
"""

from __future__ import annotations

from .errors import WireError

__all__ = ["compress", "decompress"]

_LITERAL_WIDTH = 8
_CLEAR = 1 << _LITERAL_WIDTH  # 256
_END = _CLEAR + 1  # 257
_MAX_WIDTH = 12
_MAX_CODE = (1 << _MAX_WIDTH) - 1  # 4095: the writer clears when its next code would reach it


def compress(data: bytes) -> bytes:
    """Compress ``data`` exactly as ``lzw.NewWriter(w, lzw.LSB, 8)`` followed by ``Close``."""
    out = bytearray()
    bits = 0
    count = 0
    width = _LITERAL_WIDTH + 1

    # The bit packing (Go's writeLSB) is written out inline below: this loop is the hot path.
    bits |= _CLEAR << count
    count += width
    while count >= 8:
        out.append(bits & 0xFF)
        bits >>= 8
        count -= 8
    if data:
        table: dict[int, int] = {}
        hi = _END
        overflow = 1 << width
        code = data[0]
        for literal in data[1:]:
            key = (code << 8) | literal
            found = table.get(key)
            if found is not None:
                code = found
                continue
            bits |= code << count
            count += width
            while count >= 8:
                out.append(bits & 0xFF)
                bits >>= 8
                count -= 8
            code = literal
            hi += 1
            if hi == overflow:
                width += 1
                overflow <<= 1
            if hi == _MAX_CODE:
                # Table full: a clear code (at the current width), then start over at 9 bits.
                bits |= _CLEAR << count
                count += width
                while count >= 8:
                    out.append(bits & 0xFF)
                    bits >>= 8
                    count -= 8
                width = _LITERAL_WIDTH + 1
                hi = _END
                overflow = _CLEAR << 1
                table.clear()
            else:
                table[key] = hi
        # Close: the pending code, one more code number (which may widen, or clear), the end code.
        bits |= code << count
        count += width
        while count >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            count -= 8
        hi += 1
        if hi == overflow:
            width += 1
            overflow <<= 1
        if hi == _MAX_CODE:
            bits |= _CLEAR << count
            count += width
            while count >= 8:
                out.append(bits & 0xFF)
                bits >>= 8
                count -= 8
            width = _LITERAL_WIDTH + 1
    bits |= _END << count
    count += width
    while count >= 8:
        out.append(bits & 0xFF)
        bits >>= 8
        count -= 8
    if count > 0:
        out.append(bits & 0xFF)
    return bytes(out)


def decompress(data: bytes, max_output: int) -> bytes:
    """Decompress a Go LZW stream; more than ``max_output`` bytes out is refused as a bomb."""
    out = bytearray()
    entries: list[bytes] = [bytes([i]) for i in range(_CLEAR)] + [b"", b""]
    width = _LITERAL_WIDTH + 1
    hi = _END
    overflow = 1 << width
    last: bytes | None = None
    bits = count = position = 0
    size = len(data)
    while True:
        while count < width:
            if position >= size:
                raise WireError("lzw", "compressed data ends without an end code")
            bits |= data[position] << count
            position += 1
            count += 8
        code = bits & ((1 << width) - 1)
        bits >>= width
        count -= width
        if code == _CLEAR:
            width, hi, overflow, last = _LITERAL_WIDTH + 1, _END, 1 << (_LITERAL_WIDTH + 1), None
            del entries[_END + 1 :]
            continue
        if code == _END:
            return bytes(out)
        if code < _CLEAR or code < hi:
            entry = entries[code]
        elif code == hi:
            # The code being defined right now: the previous string plus its own first byte.
            entry = last + last[:1] if last is not None else entries[code] if code < len(entries) else b""
            if not entry:
                raise WireError("lzw", f"code {code} used before it was defined")
        else:
            raise WireError("lzw", f"invalid code {code} (highest defined {hi})")
        out += entry
        if len(out) > max_output:
            raise WireError("oversized", f"decompressed data exceeds {max_output} bytes")
        if last is not None:
            new = last + entry[:1]
            if hi < len(entries):
                entries[hi] = new
            else:
                entries.append(new)
        last = entry
        hi += 1
        if hi >= overflow:
            if width == _MAX_WIDTH:
                # Table full: no new entries until the next clear code, as Go's reader.
                last = None
                hi -= 1
            else:
                width += 1
                overflow = 1 << width
