"""The V8 deserializer: everything Deno 2.9.8 stores, read into the Python types of
``kvshim.values``."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, TypeVar

from kvshim.bigint import BigInt
from kvshim.errors import KvRangeError
from kvshim.limits import MAX_SAFE_INTEGER
from kvshim.v8.jstypes import (
    DOUBLE,
    EPOCH,
    ERROR_NAMES,
    FORMAT_VERSION,
    REGEXP_FLAGS,
    VIEW_KINDS,
    JSArrayBufferView,
    JSDate,
    JSError,
    JSRegExp,
)

_T = TypeVar("_T")


def decode_v8(data: bytes | bytearray | memoryview) -> object:
    """Deserialize V8 bytes (format 13 to 16); raise ``KvRangeError`` if they are not valid."""
    decoder = _Decoder(data if type(data) is bytes else bytes(data))
    try:
        if decoder.data[0] != 0xFF:
            raise ValueError("no V8 header")
        decoder.pos = 1
        if decoder.data[1] != FORMAT_VERSION:
            decoder.version = decoder.varint()
            if not 13 <= decoder.version <= FORMAT_VERSION:
                raise ValueError(f"unsupported V8 format version {decoder.version}")
        else:
            decoder.pos = 2
        return decoder.read()
    except (
        ValueError,
        IndexError,
        KeyError,
        OverflowError,
        RecursionError,
        struct.error,
    ) as exc:
        raise KvRangeError("could not deserialize value") from exc


_PENDING: Final = object()  # stands for an object whose id is taken but which is not built yet
_MAX_SPARSE_LENGTH: Final = 2**20


class _Decoder:
    __slots__ = ("data", "pos", "objects", "version")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.objects: list[object] = []
        self.version = FORMAT_VERSION

    def read(self) -> object:
        tag = self.data[self.pos]
        self.pos += 1
        return _READERS[tag](self)

    def varint(self) -> int:
        data = self.data
        pos = self.pos
        byte = data[pos]
        result = byte & 0x7F
        shift = 7
        while byte & 0x80:
            pos += 1
            byte = data[pos]
            result |= (byte & 0x7F) << shift
            shift += 7
        self.pos = pos + 1
        return result

    def take(self, n: int) -> bytes:
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise ValueError("V8 data ends early")
        self.pos = end
        return self.data[start:end]

    def double(self) -> float:
        value: float = DOUBLE.unpack_from(self.data, self.pos)[0]
        self.pos += 8
        return value

    def string(self) -> str:
        value = self.read()
        if type(value) is not str:
            raise ValueError("expected a string")
        return value

    def consume(self, tag: int) -> bool:
        """Step over ``tag`` if it comes next."""
        if self.data[self.pos] == tag:
            self.pos += 1
            return True
        return False

    def register(self, value: _T) -> _T:
        self.objects.append(value)
        return value


def _number(value: float) -> int | float:
    # Integral doubles read as int; -0.0 and unsafe integers stay floats so they re-encode alike.
    if (
        value.is_integer()
        and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
        and (value != 0 or math.copysign(1, value) > 0)
    ):
        return int(value)
    return value


def _bigint(dec: _Decoder) -> BigInt:
    # A bigint stays a BigInt, so writing it back does not turn Deno's 5n into the number 5.
    bitfield = dec.varint()
    magnitude = int.from_bytes(dec.take(bitfield >> 1), "little")
    return BigInt(-magnitude if bitfield & 1 else magnitude)


def _property_key(key: object) -> str:
    if type(key) is str:
        return key
    if type(key) is int:
        return str(key)
    if type(key) is float:
        return "NaN" if key != key else repr(key).replace("inf", "Infinity")
    raise ValueError("object keys must be strings or numbers")


def _read_padding(dec: _Decoder) -> object:
    return dec.read()


def _read_verify_count(dec: _Decoder) -> object:
    dec.varint()
    return dec.read()


def _read_int32(dec: _Decoder) -> int:
    zigzag = dec.varint()
    return (zigzag >> 1) ^ -(zigzag & 1)


def _read_one_byte(dec: _Decoder) -> str:
    return dec.take(dec.varint()).decode("latin-1")


def _read_two_byte(dec: _Decoder) -> str:
    n = dec.varint()
    if n & 1:
        raise ValueError("odd two-byte string length")
    return dec.take(n).decode("utf-16-le", "surrogatepass")


def _read_utf8(dec: _Decoder) -> str:
    return dec.take(dec.varint()).decode("utf-8", "surrogatepass")


def _read_reference(dec: _Decoder) -> object:
    value = dec.objects[dec.varint()]
    if value is _PENDING:
        raise ValueError("reference to an object still being read")
    if type(value) is bytes:
        return _read_view_if_next(dec, value)
    return value


def _read_object(dec: _Decoder) -> dict[str, object]:
    obj: dict[str, object] = {}
    dec.objects.append(obj)
    data = dec.data
    read = dec.read
    while True:
        tag = data[dec.pos]
        if tag == 0x22 and data[dec.pos + 1] < 0x80:  # '"': a short key, read inline
            start = dec.pos + 2
            end = start + data[start - 1]
            if end > len(data):
                raise ValueError("V8 data ends early")
            key = data[start:end].decode("latin-1")
            dec.pos = end
        elif tag == 0x7B:  # '{'
            dec.pos += 1
            dec.varint()
            return obj
        else:
            key = _property_key(read())
        obj[key] = read()


def _read_dense_array(dec: _Decoder) -> list[object]:
    n = dec.varint()
    if n > len(dec.data) - dec.pos:
        raise ValueError("array longer than its data")
    array: list[object] = dec.register([None] * n)
    data = dec.data
    read = dec.read
    for i in range(n):
        if data[dec.pos] == 0x2D:  # '-': a hole
            dec.pos += 1
        else:
            array[i] = read()
    _read_array_properties(dec, array, 0x24)  # '$'
    return array


def _read_sparse_array(dec: _Decoder) -> list[object]:
    n = dec.varint()
    if n > _MAX_SPARSE_LENGTH:
        raise ValueError(f"sparse array of length {n} is too long")
    array: list[object] = dec.register([None] * n)
    _read_array_properties(dec, array, 0x40)  # '@'
    return array


def _read_array_properties(dec: _Decoder, array: list[object], end_tag: int) -> None:
    while not dec.consume(end_tag):
        key = dec.read()
        value = dec.read()
        # Named properties of an array have no place in a Python list and are dropped.
        if type(key) is int and 0 <= key < len(array):
            array[key] = value
    dec.varint()
    dec.varint()


def _date(epoch_ms: float) -> datetime | JSDate:
    if epoch_ms == epoch_ms:
        try:
            return EPOCH + timedelta(milliseconds=epoch_ms)
        except OverflowError:
            pass
    return JSDate(epoch_ms)


def _read_date(dec: _Decoder) -> datetime | JSDate:
    return dec.register(_date(dec.double()))


def _read_regexp(dec: _Decoder) -> JSRegExp:
    source = dec.string()
    bits = dec.varint()
    if bits >> 9:
        raise ValueError("unknown RegExp flags")
    flags = "".join(flag for flag, bit in REGEXP_FLAGS if bits >> bit & 1)
    return dec.register(JSRegExp(source, flags))


def _read_map(dec: _Decoder) -> object:
    index = len(dec.objects)
    result: dict[object, object] = dec.register({})
    pairs: list[tuple[object, object]] = []
    while not dec.consume(0x3A):  # ':'
        key = dec.read()
        pairs.append((key, dec.read()))
    dec.varint()
    try:
        result.update(pairs)
    except TypeError:  # a key Python cannot hash, such as an object or an array
        result.clear()
        dec.objects[index] = pairs
        return pairs
    return result


def _read_set(dec: _Decoder) -> object:
    index = len(dec.objects)
    result: set[object] = dec.register(set())
    members: list[object] = []
    while not dec.consume(0x2C):  # ','
        members.append(dec.read())
    dec.varint()
    try:
        result.update(members)
    except TypeError:  # a member Python cannot hash, such as an object or an array
        result.clear()
        dec.objects[index] = members
        return members
    return result


def _read_array_buffer(dec: _Decoder) -> object:
    return _read_view_if_next(dec, dec.register(dec.take(dec.varint())))


def _read_resizable_array_buffer(dec: _Decoder) -> object:
    n = dec.varint()
    dec.varint()  # the maximum length
    return _read_view_if_next(dec, dec.register(dec.take(n)))


def _read_view_if_next(dec: _Decoder, buffer: bytes) -> object:
    if dec.pos < len(dec.data) and dec.data[dec.pos] == 0x56:  # 'V'
        dec.pos += 1
        return _read_view(dec, buffer)
    return buffer


def _read_view(dec: _Decoder, buffer: bytes) -> bytes | JSArrayBufferView:
    tag = dec.varint()
    offset = dec.varint()
    length = dec.varint()
    flags = dec.varint() if dec.version >= 14 else 0
    if flags & 1:  # length-tracking: V8 writes 0 and the view spans the rest of the buffer
        length = max(len(buffer) - offset, 0)
    kind, size = VIEW_KINDS[tag]
    if offset + length > len(buffer) or offset % size or length % size:
        raise ValueError("ArrayBufferView outside its buffer")
    data = buffer[offset : offset + length]
    return dec.register(data if tag == 0x42 else JSArrayBufferView(kind, data))


def _read_error(dec: _Decoder) -> JSError:
    index = len(dec.objects)
    dec.objects.append(_PENDING)
    name, message, stack, cause = "Error", None, None, None
    while (tag := dec.varint()) != 0x2E:  # '.'
        if tag == 0x6D:  # 'm'
            message = dec.string()
        elif tag == 0x73:  # 's'
            stack = dec.string()
        elif tag == 0x63:  # 'c'
            cause = dec.read()
        else:
            name = ERROR_NAMES[tag]
    error = JSError(name, message, stack, cause)
    dec.objects[index] = error
    return error


def _read_host_object(dec: _Decoder) -> object:
    index = len(dec.objects)
    dec.objects.append(_PENDING)
    # Deno writes u32::MAX, then the web object's plain-data form (Blob, DOMException…).
    if dec.varint() != 0xFFFFFFFF:
        raise ValueError("transferred host objects cannot be read")
    value = dec.read()
    dec.objects[index] = value
    return value


def _read_invalid(dec: _Decoder) -> object:
    raise ValueError(f"unexpected V8 tag {dec.data[dec.pos - 1]:#04x}")


_Reader = Callable[[_Decoder], object]
_READERS: list[_Reader] = [_read_invalid] * 256
for _tag, _reader in {
    0x00: _read_padding,
    ord("?"): _read_verify_count,
    ord("_"): lambda dec: None,
    ord("0"): lambda dec: None,
    ord("T"): lambda dec: True,
    ord("F"): lambda dec: False,
    ord("I"): _read_int32,
    ord("U"): lambda dec: dec.varint(),
    ord("N"): lambda dec: _number(dec.double()),
    ord("Z"): _bigint,
    ord('"'): _read_one_byte,
    ord("c"): _read_two_byte,
    ord("S"): _read_utf8,
    ord("^"): _read_reference,
    ord("o"): _read_object,
    ord("A"): _read_dense_array,
    ord("a"): _read_sparse_array,
    ord("D"): _read_date,
    ord("y"): lambda dec: dec.register(True),
    ord("x"): lambda dec: dec.register(False),
    ord("n"): lambda dec: dec.register(_number(dec.double())),
    ord("z"): lambda dec: dec.register(_bigint(dec)),
    ord("s"): lambda dec: dec.register(dec.string()),
    ord("R"): _read_regexp,
    ord(";"): _read_map,
    ord("'"): _read_set,
    ord("B"): _read_array_buffer,
    ord("~"): _read_resizable_array_buffer,
    ord("r"): _read_error,
    ord("\\"): _read_host_object,
}.items():
    _READERS[_tag] = _reader
