"""Python values <-> stored values: V8 structured clone, raw bytes, or a ``KvU64``.

``encode_value`` picks Deno's encoding: a top-level ``bytes``/``bytearray``/``memoryview`` is
stored raw (``BYTES``), a top-level ``KvU64`` as 8 little-endian bytes (``LE64``), and anything
else as V8 structured-clone bytes (``V8``) that Deno 2.9.8 reads as the JavaScript value below,
and writes byte for byte the same.

=================================  ===========================  ================================
Python (written)                   JavaScript                   Python (read back)
=================================  ===========================  ================================
``None``                           ``null``                     ``None``
(nothing)                          ``undefined``                ``None``
``bool``                           boolean                      ``bool``
``int``, ``abs(n) <= 2**53 - 1``   number                       ``int``
``int``, larger                    bigint                       ``BigInt``
``BigInt(n)``                      bigint (always)              ``BigInt``
``float``                          number (``1.0`` is ``1``)    ``int`` if integral and safe,
                                                                except ``-0.0``; else ``float``
``str``                            string                       ``str``
``list``, ``tuple``                Array                        ``list`` (holes become ``None``)
``dict``, all keys ``str``         Object                       ``dict`` with ``str`` keys
``dict``, any other key            Map                          ``dict`` (see below)
``set``, ``frozenset``             Set                          ``set`` (see below)
``datetime``                       Date                         ``datetime`` in UTC
``JSDate(ms)``                     Date                         ``JSDate`` outside years 1-9999
                                                                or when invalid (NaN)
``bytes`` etc. (nested)            Uint8Array                   ``bytes``
(nothing)                          ArrayBuffer                  ``bytes``
``JSArrayBufferView(kind, data)``  other TypedArray, DataView   ``JSArrayBufferView``
``JSRegExp(source, flags)``        RegExp                       ``JSRegExp``
``JSError(name, message, ...)``    Error and its subclasses     ``JSError``
``KvU64(n)`` (nested)              ``{value: n}`` (bigint)      ``{"value": BigInt(n)}``
(nothing)                          ``new Number(1)`` etc.       the primitive (``1``)
(nothing)                          Blob, File, DOMException     the ``dict`` Deno stores for it
=================================  ===========================  ================================

Details:

- JavaScript has one number type: ``1.0`` is written exactly like ``1``, and a number read
  back is an ``int`` when it is integral and a safe integer. A bigint always reads back as a
  ``BigInt`` (``.value`` is the ``int``), so writing an entry back never turns ``5n`` into
  ``5``; a Python ``int`` beyond 2**53 - 1 is written as a bigint and so reads back as one.
- A naive ``datetime`` is taken as UTC. Dates hold whole milliseconds (microseconds are
  truncated towards zero) and read back as timezone-aware UTC ``datetime``s.
- Object keys that look like array indices (``"0"``, ``"17"``) come first, in ascending order,
  as in JavaScript; object keys always read back as ``str``.
- A Map whose keys Python cannot hash (objects, arrays) reads back as a ``list`` of
  ``(key, value)`` tuples; a Set with such members as a ``list``. Keys that are distinct in JS
  but equal in Python (``1`` and ``true``) collapse, and a Map with only ``str`` keys is written
  back as an Object.
- Named properties of arrays are dropped; sparse arrays longer than 2**20 fail to decode.
- Shared and cyclic containers are written once and referenced, so cycles round-trip.
- Other values raise ``KvTypeError`` (``<class 'object'> could not be cloned.``).
"""

from __future__ import annotations

from typing import Final

from kvshim.bigint import BigInt, KvU64
from kvshim.errors import KvRangeError, KvTypeError
from kvshim.model import EncodedValue, ValueEncoding
from kvshim.v8 import (
    JSArrayBufferView,
    JSDate,
    JSError,
    JSRegExp,
    decode_v8,
    encode_v8,
)

__all__ = [
    "BigInt",
    "JSArrayBufferView",
    "JSDate",
    "JSError",
    "JSRegExp",
    "KvU64",
    "decode_v8",
    "decode_value",
    "encode_v8",
    "encode_value",
]

_V8: Final = ValueEncoding.V8
_LE64: Final = ValueEncoding.LE64
_BYTES: Final = ValueEncoding.BYTES
_RAW_TYPES: Final = (bytes, bytearray, memoryview)


def encode_value(value: object) -> EncodedValue:
    """Encode a value for storage as Deno does: raw ``BYTES``, ``LE64`` for a ``KvU64``, or V8."""
    if isinstance(value, _RAW_TYPES):
        data = value.tobytes() if isinstance(value, memoryview) else bytes(value)
        return EncodedValue(data, _BYTES)
    if isinstance(value, KvU64):
        return EncodedValue(value.value.to_bytes(8, "little"), _LE64)
    return EncodedValue(encode_v8(value), _V8)


def decode_value(value: EncodedValue) -> object:
    """Decode a stored value; ``KvTypeError`` for an unknown encoding, ``KvRangeError`` for bad
    bytes."""
    encoding = value.encoding
    if encoding == _V8:
        return decode_v8(value.data)
    if encoding == _BYTES:
        return bytes(value.data)
    if encoding == _LE64:
        if len(value.data) != 8:
            raise KvRangeError("could not deserialize value")
        return KvU64(int.from_bytes(value.data, "little"))
    raise KvTypeError(f"The value encoding {encoding} is unknown.")
