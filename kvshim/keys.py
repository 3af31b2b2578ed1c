"""Keys: Python tuples of typed parts <-> Deno's byte encoding (a FoundationDB tuple-layer dialect).

Byte order of encodings is key order: ``bytes < str < BigInt < number < False < True``.

A Python ``int`` is a JS *number* (a double), so ``["users", 1]`` here is the key that Deno's
``["users", 1]`` is; a JS ``bigint`` part is written ``BigInt(n)``. Number parts with an integral
value decode back to ``int`` (``-0.0``, infinities and NaN stay ``float``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from kvshim.bigint import BigInt
from kvshim.errors import KvTypeError
from kvshim.limits import MAX_BIGINT_KEY_BYTES, MAX_SAFE_INTEGER

KeyPart = str | bytes | int | float | bool | BigInt
Key = tuple[KeyPart, ...]

BYTES, STRING = 0x01, 0x02
NEG_INT_LONG, INT_ZERO, POS_INT_LONG = 0x0B, 0x14, 0x1D
DOUBLE, FALSE, TRUE = 0x21, 0x26, 0x27

INVALID_PART = "expected string, number, bigint, ArrayBufferView, boolean"
BIGINT_TOO_LARGE = "BigUint requires more than 255 bytes to be represented"
"""A bigint key part too large to encode; a write prefixes it (``Invalid mutation: ...``)."""
_DOUBLE = struct.Struct(">d")
_U64 = struct.Struct(">Q")
_SIGN = 1 << 63
_ALL = (1 << 64) - 1
_POS_NAN = 0x7FF8000000000000
_NEG_NAN = 0xFFF8000000000000
KEY_SEQUENCES = (list, tuple)
"""What a key may be given as (a tuple, not ``list | tuple``: that builds a union per call)."""


def _escaped(raw: bytes) -> bytes:
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00" if b"\x00" in raw else raw + b"\x00"


_STR_PARTS: dict[str, bytes] = {}
"""Encodings of recent string parts: most keys share a few (``"users"``, ``"counter"``)."""
_STR_PARTS_MAX = 1024


def _encode_str(part: str) -> bytes:
    exact = type(part) is str  # a subclass may hash and compare as it likes: not cached
    if exact and (known := _STR_PARTS.get(part)) is not None:
        return known
    try:
        raw = part.encode()
    except UnicodeEncodeError:  # lone surrogates become U+FFFD, as in JS
        raw = part.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
    encoded = b"\x02" + _escaped(raw)
    if exact and len(raw) <= 64:
        if len(_STR_PARTS) >= _STR_PARTS_MAX:
            _STR_PARTS.clear()
        _STR_PARTS[part] = encoded
    return encoded


def _encode_bytes(part: bytes | bytearray | memoryview) -> bytes:
    return b"\x01" + _escaped(bytes(part))


def _encode_double(value: float) -> bytes:
    if value != value:
        bits = _NEG_NAN if math.copysign(1.0, value) < 0 else _POS_NAN
    else:
        bits = _U64.unpack(_DOUBLE.pack(value))[0]
    bits = bits ^ _ALL if bits & _SIGN else bits ^ _SIGN
    return b"\x21" + _U64.pack(bits)


def _encode_int(part: int) -> bytes:
    if -MAX_SAFE_INTEGER <= part <= MAX_SAFE_INTEGER:
        # _encode_double without its NaN case (an int is never NaN)
        bits = _U64.unpack(_DOUBLE.pack(part))[0]
        return b"\x21" + _U64.pack(bits ^ _ALL if bits & _SIGN else bits ^ _SIGN)
    raise KvTypeError(
        f"Invalid key part: {part} is outside JS's safe integer range ±(2**53-1); "
        "a Python int key part is a JS number: use kvshim.BigInt(n) for a bigint part"
    )


def _encode_bigint(part: BigInt) -> bytes:
    n = part.value
    if n == 0:
        return b"\x14"
    magnitude = abs(n)
    size = (magnitude.bit_length() + 7) // 8
    if size > MAX_BIGINT_KEY_BYTES:
        raise KvTypeError(BIGINT_TOO_LARGE)
    if n > 0:
        body = magnitude.to_bytes(size, "big")
        return bytes([INT_ZERO + size]) + body if size <= 8 else bytes([POS_INT_LONG, size]) + body
    body = ((1 << (8 * size)) - 1 - magnitude).to_bytes(size, "big")
    if size <= 8:
        return bytes([INT_ZERO - size]) + body
    return bytes([NEG_INT_LONG, size ^ 0xFF]) + body


def _encode_bool(part: bool) -> bytes:
    return b"\x27" if part else b"\x26"


_ENCODERS: dict[type, Callable[[object], bytes]] = {
    str: _encode_str,  # type: ignore[dict-item]
    bytes: _encode_bytes,  # type: ignore[dict-item]
    bytearray: _encode_bytes,  # type: ignore[dict-item]
    memoryview: _encode_bytes,  # type: ignore[dict-item]
    bool: _encode_bool,  # type: ignore[dict-item]
    int: _encode_int,  # type: ignore[dict-item]
    float: _encode_double,  # type: ignore[dict-item]
    BigInt: _encode_bigint,  # type: ignore[dict-item]
}


def encode_part(part: object) -> bytes:
    """The encoding of one key part; ``KvTypeError`` for a type Deno does not accept."""
    encoder = _ENCODERS.get(type(part))
    if encoder is None:
        encoder = _encoder_for_subclass(part)
    return encoder(part)


def _encoder_for_subclass(part: object) -> Callable[[object], bytes]:
    # bool before int: bool subclasses int.
    for kind in (bool, str, bytes, bytearray, memoryview, int, float, BigInt):
        if isinstance(part, kind):
            return _ENCODERS[kind]
    raise KvTypeError(INVALID_PART)


def encode_key(key: Sequence[object]) -> bytes:
    """The byte encoding of a key given as a list or tuple of parts."""
    if not isinstance(key, KEY_SEQUENCES):
        raise KvTypeError(
            f"Invalid key: expected a list or tuple of key parts, got {type(key).__name__}"
        )
    get = _ENCODERS.get
    return b"".join([(get(type(part)) or _encoder_for_subclass(part))(part) for part in key])


def _unescape(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(0, pos)
    if end + 1 == len(data) or data[end + 1] != 0xFF:  # no escaped NUL: the common case
        return data[pos:end], end + 1
    out = bytearray()
    while True:
        end = data.index(0, pos)
        out += data[pos:end]
        if end + 1 < len(data) and data[end + 1] == 0xFF:
            out.append(0)
            pos = end + 2
        else:
            return bytes(out), end + 1


def _decode_double(data: bytes, pos: int) -> float | int:
    stored = _U64.unpack_from(data, pos)[0]
    is_positive = stored & _SIGN
    value: float = _DOUBLE.unpack(_U64.pack(stored ^ _SIGN if is_positive else stored ^ _ALL))[0]
    # -0.0 stays a float: only a positive zero decodes to int 0.
    if value.is_integer() and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        if value or is_positive:
            return int(value)
    return value


def _decode_int(tag: int, data: bytes, pos: int) -> tuple[BigInt, int]:
    if tag == INT_ZERO:
        return BigInt(0), pos
    if tag == POS_INT_LONG:
        size, pos = data[pos], pos + 1
        return BigInt(int.from_bytes(data[pos : pos + size], "big")), pos + size
    if tag == NEG_INT_LONG:
        size, pos = data[pos] ^ 0xFF, pos + 1
    else:
        size = abs(tag - INT_ZERO)
    if pos + size > len(data):
        raise KvTypeError("Invalid key: truncated integer part")
    raw = int.from_bytes(data[pos : pos + size], "big")
    if tag > INT_ZERO:
        return BigInt(raw), pos + size
    return BigInt(raw - ((1 << (8 * size)) - 1)), pos + size


def decode_key(data: bytes) -> Key:
    """The tuple of parts that ``data`` encodes; ``KvTypeError`` on an invalid encoding."""
    parts: list[KeyPart] = []
    pos, size = 0, len(data)
    try:
        while pos < size:
            tag = data[pos]
            pos += 1
            if tag == STRING:
                raw, pos = _unescape(data, pos)
                parts.append(raw.decode())
            elif tag == BYTES:
                raw, pos = _unescape(data, pos)
                parts.append(raw)
            elif tag == DOUBLE:
                parts.append(_decode_double(data, pos))
                pos += 8
            elif NEG_INT_LONG <= tag <= POS_INT_LONG:
                part, pos = _decode_int(tag, data, pos)
                parts.append(part)
            elif tag in (FALSE, TRUE):
                parts.append(tag == TRUE)
            else:
                raise KvTypeError(f"Invalid key: invalid tag 0x{tag:02x}")
    except (ValueError, IndexError, struct.error) as exc:
        if isinstance(exc, KvTypeError):
            raise
        raise KvTypeError("Invalid key: truncated encoding") from exc
    return tuple(parts)


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """The byte range of every key strictly below ``prefix``: ``[P+00, P+FF)``."""
    return prefix + b"\x00", prefix + b"\xff"
