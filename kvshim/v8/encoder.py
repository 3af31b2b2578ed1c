"""The V8 serializer: Python values to the bytes Deno 2.9.8 writes for the same JS value."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from kvshim.bigint import BigInt, KvU64
from kvshim.errors import KvRangeError, KvTypeError
from kvshim.limits import MAX_SAFE_INTEGER
from kvshim.v8.jstypes import (
    DOUBLE,
    EPOCH,
    ERROR_TAGS,
    FORMAT_VERSION,
    ONE_MICROSECOND,
    REGEXP_BITS,
    SMI_MAX,
    SMI_MIN,
    VIEW_TAGS,
    JSArrayBufferView,
    JSDate,
    JSError,
    JSRegExp,
)

_HEADER: Final = bytes((0xFF, FORMAT_VERSION))
_NAN: Final = DOUBLE.pack(math.nan)
_MAX_ARRAY_INDEX: Final = 2**32 - 2


def encode_v8(value: object) -> bytes:
    """Serialize ``value`` as V8 does for Deno KV (format version 16, header included)."""
    encoder = _Encoder()
    try:
        encoder.write(value)
    except RecursionError:
        raise KvRangeError("Maximum call stack size exceeded") from None
    return bytes(encoder.buf)


def _write_varint(buf: bytearray, n: int) -> None:
    while n >= 0x80:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


class _Encoder:
    __slots__ = ("buf", "ids", "next_id")

    def __init__(self) -> None:
        self.buf = bytearray(_HEADER)
        self.ids: dict[int, int] = {}
        self.next_id = 0

    def write(self, value: object) -> None:
        writer = _WRITERS.get(type(value)) or _writer_for_subclass(value)
        writer(self, value)

    def is_reference(self, obj: object) -> bool:
        """Write a back-reference if ``obj`` was written before; else give it the next id."""
        ids = self.ids
        key = id(obj)
        ref = ids.get(key)
        if ref is not None:
            self.buf.append(0x5E)  # '^'
            _write_varint(self.buf, ref)
            return True
        ids[key] = self.next_id
        self.next_id += 1
        return False


def _write_smi(buf: bytearray, n: int) -> None:
    buf.append(0x49)  # 'I'
    zigzag = (n << 1) ^ (n >> 31)
    if zigzag < 0x80:
        buf.append(zigzag)
    else:
        _write_varint(buf, zigzag)


def _write_double(buf: bytearray, x: float) -> None:
    buf.append(0x4E)  # 'N'
    buf += DOUBLE.pack(x) if x == x else _NAN


def _write_bigint(buf: bytearray, n: int) -> None:
    magnitude = -n if n < 0 else n
    size = (magnitude.bit_length() + 63) // 64 * 8
    buf.append(0x5A)  # 'Z'
    _write_varint(buf, size << 1 | (n < 0))
    buf += magnitude.to_bytes(size, "little")


def _write_none(enc: _Encoder, value: None) -> None:
    enc.buf.append(0x30)  # '0'


def _write_bool(enc: _Encoder, value: bool) -> None:
    enc.buf.append(0x54 if value else 0x46)  # 'T' / 'F'


def _write_int(enc: _Encoder, value: int) -> None:
    if SMI_MIN <= value <= SMI_MAX:
        _write_smi(enc.buf, value)
    elif -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        _write_double(enc.buf, value)
    else:
        _write_bigint(enc.buf, value)


def _is_smi_float(value: float) -> bool:
    return (
        value.is_integer()
        and SMI_MIN <= value <= SMI_MAX
        and (value != 0 or math.copysign(1, value) > 0)  # -0.0 is not a Smi
    )


def _write_float(enc: _Encoder, value: float) -> None:
    # JS has one number type, so 1.0 is written like 1 (a Smi), but -0.0 keeps its double.
    if _is_smi_float(value):
        _write_smi(enc.buf, int(value))
    else:
        _write_double(enc.buf, value)


def _write_big_int(enc: _Encoder, value: BigInt) -> None:
    _write_bigint(enc.buf, value.value)


def _write_str(enc: _Encoder, value: str) -> None:
    try:
        data = value.encode("latin-1")
    except UnicodeEncodeError:
        data = value.encode("utf-16-le", "surrogatepass")
        buf = enc.buf
        n = len(data)
        # V8 pads so that the UTF-16 data starts at an even offset.
        if (len(buf) + 2 + (n >= 0x80) + (n >= 0x4000) + (n >= 0x200000)) & 1:
            buf.append(0x00)
        buf.append(0x63)  # 'c'
    else:
        buf = enc.buf
        buf.append(0x22)  # '"'
    n = len(data)
    if n < 0x80:
        buf.append(n)
    else:
        _write_varint(buf, n)
    buf += data


def _write_bytes(enc: _Encoder, value: bytes | bytearray | memoryview) -> None:
    data = value.tobytes() if isinstance(value, memoryview) else value
    _write_view(enc, ord("B"), data)


def _write_view(enc: _Encoder, tag: int, data: bytes | bytearray) -> None:
    buf = enc.buf
    n = len(data)
    buf.append(0x42)  # 'B': the ArrayBuffer, then the view over all of it
    _write_varint(buf, n)
    buf += data
    buf.append(0x56)  # 'V'
    buf.append(tag)
    buf.append(0)
    _write_varint(buf, n)
    buf.append(0)  # flags: neither length-tracking nor resizable
    enc.next_id += 2


def _array_index(key: str) -> int | None:
    if key.isdigit() and key.isascii() and (key[0] != "0" or key == "0"):
        index = int(key)
        return index if index <= _MAX_ARRAY_INDEX else None
    return None


def _write_dict(enc: _Encoder, value: dict[Any, Any]) -> None:
    if enc.is_reference(value):
        return
    indexed: list[tuple[int, str]] | None = None
    for key in value:
        if type(key) is not str and not isinstance(key, str):
            return _write_map_body(enc, value)
        if "0" <= key[:1] <= "9" and (index := _array_index(key)) is not None:
            indexed = [] if indexed is None else indexed
            indexed.append((index, key))
    buf = enc.buf
    buf.append(0x6F)  # 'o'
    write = enc.write
    if indexed is None:
        for key, item in value.items():
            _write_str(enc, key)
            write(item)
    else:
        _write_indexed_properties(enc, value, sorted(indexed))
    buf.append(0x7B)  # '{'
    _write_varint(buf, len(value))


def _write_indexed_properties(
    enc: _Encoder, value: dict[str, Any], indexed: list[tuple[int, str]]
) -> None:
    # JS orders integer-like keys first, ascending, and V8 writes them as numbers.
    for index, key in indexed:
        _write_int(enc, index)
        enc.write(value[key])
    for key, item in value.items():
        if "0" <= key[:1] <= "9" and _array_index(key) is not None:
            continue
        enc.write(key)
        enc.write(item)


def _write_map_body(enc: _Encoder, value: dict[Any, Any]) -> None:
    buf = enc.buf
    buf.append(0x3B)  # ';'
    write = enc.write
    for key, item in value.items():
        write(key)
        write(item)
    buf.append(0x3A)  # ':'
    _write_varint(buf, 2 * len(value))


def _is_double_array(value: list[Any] | tuple[Any, ...]) -> bool:
    """True if JS would hold this array as doubles: all numbers, at least one not a Smi."""
    has_double = False
    for item in value:
        kind = type(item)
        if kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
            has_double = has_double or not SMI_MIN <= item <= SMI_MAX
        elif kind is float:
            has_double = has_double or not _is_smi_float(item)
        else:
            return False
    return has_double


def _write_list(enc: _Encoder, value: list[Any] | tuple[Any, ...]) -> None:
    if enc.is_reference(value):
        return
    buf = enc.buf
    n = len(value)
    buf.append(0x41)  # 'A'
    _write_varint(buf, n)
    if n and type(value[0]) in (int, float) and _is_double_array(value):
        for item in value:
            _write_double(buf, item)
    else:
        write = enc.write
        for item in value:
            write(item)
    buf.append(0x24)  # '$'
    buf.append(0)
    _write_varint(buf, n)


def _write_set(enc: _Encoder, value: set[Any] | frozenset[Any]) -> None:
    if enc.is_reference(value):
        return
    buf = enc.buf
    buf.append(0x27)  # "'"
    for item in value:
        enc.write(item)
    buf.append(0x2C)  # ','
    _write_varint(buf, len(value))


def _write_datetime(enc: _Encoder, value: datetime) -> None:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    micros = (value - EPOCH) // ONE_MICROSECOND
    # JS dates hold whole milliseconds, truncated towards zero.
    _write_date(enc, float(micros // 1000 if micros >= 0 else -(-micros // 1000)))


def _write_js_date(enc: _Encoder, value: JSDate) -> None:
    _write_date(enc, value.epoch_ms)


def _write_date(enc: _Encoder, epoch_ms: float) -> None:
    enc.next_id += 1
    enc.buf.append(0x44)  # 'D'
    enc.buf += DOUBLE.pack(epoch_ms) if epoch_ms == epoch_ms else _NAN


def _write_regexp(enc: _Encoder, value: JSRegExp) -> None:
    try:
        bits = sum(1 << REGEXP_BITS[flag] for flag in set(value.flags))
    except KeyError:
        raise KvTypeError(f"Invalid regular expression flags: {value.flags!r}") from None
    enc.next_id += 1
    enc.buf.append(0x52)  # 'R'
    _write_str(enc, value.source)
    _write_varint(enc.buf, bits)


def _write_error(enc: _Encoder, value: JSError) -> None:
    enc.next_id += 1
    buf = enc.buf
    buf.append(0x72)  # 'r'
    if value.name in ERROR_TAGS:
        buf.append(ERROR_TAGS[value.name])
    if value.message is not None:
        buf.append(0x6D)  # 'm'
        _write_str(enc, value.message)
    if value.stack is not None:
        buf.append(0x73)  # 's'
        _write_str(enc, value.stack)
    if value.cause is not None:
        buf.append(0x63)  # 'c'
        enc.write(value.cause)
    buf.append(0x2E)  # '.'


def _write_view_object(enc: _Encoder, value: JSArrayBufferView) -> None:
    tag = VIEW_TAGS.get(value.kind)
    if tag is None:
        raise KvTypeError(f"Unknown ArrayBufferView kind: {value.kind!r}")
    _write_view(enc, tag, value.data)


def _write_kv_u64(enc: _Encoder, value: KvU64) -> None:
    # Nested, a Deno.KvU64 is a plain object holding its bigint.
    enc.next_id += 1
    enc.buf += b'o"\x05value'
    _write_bigint(enc.buf, value.value)
    enc.buf += b"{\x01"


_Writer = Callable[[_Encoder, Any], None]
_WRITERS: dict[type, _Writer] = {
    type(None): _write_none,
    bool: _write_bool,
    int: _write_int,
    float: _write_float,
    str: _write_str,
    dict: _write_dict,
    list: _write_list,
    tuple: _write_list,
    bytes: _write_bytes,
    bytearray: _write_bytes,
    memoryview: _write_bytes,
    set: _write_set,
    frozenset: _write_set,
    datetime: _write_datetime,
    BigInt: _write_big_int,
    KvU64: _write_kv_u64,
    JSDate: _write_js_date,
    JSRegExp: _write_regexp,
    JSError: _write_error,
    JSArrayBufferView: _write_view_object,
}
# Checked in order for subclasses (IntEnum, StrEnum, OrderedDict…): bool before int.
_SUBCLASS_WRITERS: tuple[tuple[type | tuple[type, ...], _Writer], ...] = (
    (bool, _write_bool),
    (int, _write_int),
    (float, _write_float),
    (str, _write_str),
    (dict, _write_dict),
    ((list, tuple), _write_list),
    ((bytes, bytearray, memoryview), _write_bytes),
    ((set, frozenset), _write_set),
    (datetime, _write_datetime),
)


def _writer_for_subclass(value: object) -> _Writer:
    for base, writer in _SUBCLASS_WRITERS:
        if isinstance(value, base):
            return writer
    raise KvTypeError(f"{type(value)!r} could not be cloned.")
