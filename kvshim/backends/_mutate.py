"""What a commit does to stored values and to the version counter; shared by every backend that
applies mutations itself."""

from __future__ import annotations

import random

from kvshim.errors import KvTypeError
from kvshim.model import EncodedValue, MutationKind, ValueEncoding

_MASK = (1 << 64) - 1


def apply_u64(
    kind: MutationKind, current: EncodedValue | None, operand: EncodedValue
) -> EncodedValue:
    """The value after applying a SUM, MIN or MAX ``operand`` (LE64) to ``current``."""
    if current is None:
        return operand
    if current.encoding != ValueEncoding.LE64:
        raise KvTypeError(
            f"Failed to perform '{kind.value}' mutation on a non-U64 value in the database"
        )
    a = int.from_bytes(current.data, "little")
    b = int.from_bytes(operand.data, "little")
    if kind is MutationKind.SUM:
        result = (a + b) & _MASK
    elif kind is MutationKind.MIN:
        result = min(a, b)
    else:
        result = max(a, b)
    return EncodedValue(result.to_bytes(8, "little"), ValueEncoding.LE64)


def versionstamped_key(key: bytes, versionstamp: bytes) -> bytes:
    """``key`` with the commit's versionstamp appended as a string part."""
    return key + b"\x02" + versionstamp.hex().encode() + b"\x00"


def commit_step() -> int:
    """How far a commit moves the version counter: a random 1–9, as Deno's local backends do
    (so that nobody comes to rely on consecutive versionstamps). Expiry sweeps move it by 1."""
    return random.randint(1, 9)
