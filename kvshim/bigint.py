"""JavaScript bigints in Python: ``KvU64`` (Deno's ``Deno.KvU64``) and ``BigInt``.

This is a leaf module (it imports only ``kvshim.errors``), so ``keys`` and ``values`` can both
use it. ``kvshim.values`` re-exports both names; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvshim.errors import KvRangeError, KvTypeError

_U64_MAX = 2**64 - 1


def js_type_name(value: object) -> str:
    """What JavaScript's ``typeof`` says of the value a Python one stands for, as Deno's error
    messages print it (``None``, lists and other objects are all ``object``, as null is)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, BigInt):
        return "bigint"
    return "function" if callable(value) else "object"


@dataclass(frozen=True, slots=True)
class BigInt:
    """A JavaScript bigint: ``BigInt(5)`` is stored as ``5n`` in keys and values alike.

    A plain Python ``int`` becomes a JS number when it is a safe integer (``abs(n) <= 2**53 - 1``)
    and a bigint otherwise; wrap it in ``BigInt`` to force a bigint. Every JS bigint reads back
    as a ``BigInt``, so numbers and bigints stay distinct through a read and a write.
    """

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise KvTypeError(f"BigInt value must be an int: received {js_type_name(self.value)}")

    def __repr__(self) -> str:
        return f"BigInt({self.value})"

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True, init=False)
class KvU64:
    """An unsigned 64-bit integer, Deno's ``Deno.KvU64``: the only type ``sum``, ``min`` and
    ``max`` accept. At the top level it is stored as 8 little-endian bytes (``LE64``); nested
    inside another value it becomes the object ``{"value": BigInt(n)}``, as in Deno."""

    value: int

    def __init__(self, value: int | BigInt) -> None:
        if isinstance(value, BigInt):
            value = value.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise KvTypeError(f"Value must be a bigint: received {js_type_name(value)}")
        if value < 0:
            raise KvRangeError(f"Value must be a positive bigint: received {value}")
        if value > _U64_MAX:
            raise KvRangeError("Value must fit in a 64-bit unsigned integer")
        object.__setattr__(self, "value", int(value))

    def __repr__(self) -> str:
        return f"KvU64({self.value})"

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value
