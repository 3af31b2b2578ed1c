"""V8 ValueSerializer wire format, written by hand for the get/set hot path.

Writes format version 16 (``FF 10``), as Deno 2.9.8 does; reads versions 13 to 16. The bytes
match Deno's for the same JavaScript value, down to the padding before two-byte strings, the
number keys of integer-like object properties and the doubles of all-number arrays. The
Python <-> JavaScript mapping is documented in ``kvshim.values``.
"""

from __future__ import annotations

from kvshim.v8.decoder import decode_v8
from kvshim.v8.encoder import encode_v8
from kvshim.v8.jstypes import FORMAT_VERSION, JSArrayBufferView, JSDate, JSError, JSRegExp

__all__ = [
    "FORMAT_VERSION",
    "JSArrayBufferView",
    "JSDate",
    "JSError",
    "JSRegExp",
    "decode_v8",
    "encode_v8",
]
