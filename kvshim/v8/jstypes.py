"""JavaScript types that have no Python built-in, and the V8 wire tables that name them."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

FORMAT_VERSION: Final = 16
"""The V8 serialization format version written (Deno 2.9.8 writes 16 and reads 13 to 16)."""
DOUBLE: Final = struct.Struct("<d")
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND: Final = timedelta(microseconds=1)
SMI_MIN: Final = -(2**31)
SMI_MAX: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class JSRegExp:
    """A JavaScript ``RegExp``: its ``source`` pattern and ``flags`` (letters of ``"dgimsuvy"``)."""

    source: str
    flags: str = ""


@dataclass(frozen=True, slots=True)
class JSError:
    """A JavaScript ``Error``. V8 keeps only the six built-in subclass names (``TypeError``…);
    any other ``name`` reads back as ``"Error"``. ``message`` is ``None`` when the error had no
    own message; ``cause`` is ``None`` when it had none."""

    name: str = "Error"
    message: str | None = None
    stack: str | None = None
    cause: object = None


@dataclass(frozen=True, slots=True)
class JSDate:
    """A JavaScript ``Date`` that ``datetime`` cannot hold: invalid (NaN) or outside years 1-9999.
    ``epoch_ms`` is the milliseconds since the epoch."""

    epoch_ms: float


@dataclass(frozen=True, slots=True)
class JSArrayBufferView:
    """A typed array other than ``Uint8Array`` (which reads as ``bytes``), or a ``DataView``:
    its constructor name (``"Int32Array"``, ``"DataView"``…) and the bytes it views."""

    kind: str
    data: bytes


VIEW_KINDS: Final = {
    ord("b"): ("Int8Array", 1),
    ord("B"): ("Uint8Array", 1),
    ord("C"): ("Uint8ClampedArray", 1),
    ord("w"): ("Int16Array", 2),
    ord("W"): ("Uint16Array", 2),
    ord("d"): ("Int32Array", 4),
    ord("D"): ("Uint32Array", 4),
    ord("h"): ("Float16Array", 2),
    ord("f"): ("Float32Array", 4),
    ord("F"): ("Float64Array", 8),
    ord("q"): ("BigInt64Array", 8),
    ord("Q"): ("BigUint64Array", 8),
    ord("?"): ("DataView", 1),
}
VIEW_TAGS: Final = {name: tag for tag, (name, _) in VIEW_KINDS.items()}
ERROR_NAMES: Final = {
    ord("E"): "EvalError",
    ord("R"): "RangeError",
    ord("F"): "ReferenceError",
    ord("S"): "SyntaxError",
    ord("T"): "TypeError",
    ord("U"): "URIError",
}
ERROR_TAGS: Final = {name: tag for tag, name in ERROR_NAMES.items()}
# In the order of RegExp.prototype.flags; the number is the bit in V8's flags varint.
REGEXP_FLAGS: Final = (
    ("d", 7), ("g", 0), ("i", 1), ("l", 6), ("m", 2), ("s", 5), ("u", 4), ("v", 8), ("y", 3)
)  # fmt: skip
REGEXP_BITS: Final = dict(REGEXP_FLAGS)
