"""Input checks at the API edge, with Deno's messages: keys, sizes, TTLs and queue options."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kvshim import limits
from kvshim.errors import KvTypeError
from kvshim.keys import BIGINT_TOO_LARGE, encode_key
from kvshim.model import Consistency


def js_number(value: object) -> str:
    """How JS prints a number in an error message (``1``, ``1.5``, ``NaN``, ``Infinity``), or
    another primitive a caller passed instead (``true``, ``null``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer():
            return str(int(value))
    return str(value)


def is_number(value: object) -> bool:
    """Whether ``value`` is a Python number that JS would see as a number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def consistency(value: object) -> Consistency:
    """``"strong"`` or ``"eventual"``; Deno's serde error for anything else."""
    if value == "strong" or value == "eventual":
        return value
    raise KvTypeError(f"unknown variant `{value}`, expected `strong` or `eventual`")


def encode_key_for(key: Sequence[Any], too_large_bigint: str) -> bytes:
    """``encode_key(key)``, with the error for a bigint part too large to encode worded as
    Deno words it for the operation (reads keep the bare reason)."""
    try:
        return encode_key(key)
    except KvTypeError as exc:
        if exc.args != (BIGINT_TOO_LARGE,):
            raise
        raise KvTypeError(too_large_bigint) from None


def write_key(
    key: Sequence[Any], *, too_large_bigint: str = f"Invalid mutation: {BIGINT_TOO_LARGE}"
) -> bytes:
    """Encode a key that a write (mutation or check) names: non-empty, at most 2048 bytes."""
    encoded = encode_key_for(key, too_large_bigint)
    if not encoded:
        raise KvTypeError("key cannot be empty")
    if len(encoded) > limits.MAX_WRITE_KEY_SIZE_BYTES:
        raise KvTypeError(f"Key too large for write (max {limits.MAX_WRITE_KEY_SIZE_BYTES} bytes)")
    return encoded


def read_bound(encoded: bytes) -> bytes:
    """Check a range bound against the read limit (2049 bytes)."""
    if len(encoded) > limits.MAX_READ_KEY_SIZE_BYTES:
        raise KvTypeError(f"Key too large for read (max {limits.MAX_READ_KEY_SIZE_BYTES} bytes)")
    return encoded


def value_size(size: int) -> None:
    """Reject a serialized value over 65536 bytes."""
    if size > limits.MAX_VALUE_SIZE_BYTES:
        raise KvTypeError(f"Value too large (max {limits.MAX_VALUE_SIZE_BYTES} bytes)")


def expire_in(value: object) -> int:
    """A TTL in milliseconds: a non-negative integer."""
    if not is_number(value) or not (
        math.isfinite(value) and float(value).is_integer() and value >= 0  # type: ignore[arg-type,operator]
    ):
        raise KvTypeError(f"expireIn must be a non-negative integer: received {js_number(value)}")
    return int(value)  # type: ignore[call-overload, no-any-return]


def expire_at(expire_in: int, now_ms: int) -> int:
    """The absolute expiry time of a TTL of ``expire_in`` milliseconds from ``now_ms``."""
    at = now_ms + expire_in
    if at > limits.MAX_EXPIRE_AT_MS:
        raise KvTypeError(f"Invalid mutation: expireIn is too large: {expire_in}")
    return at


def delay(value: object) -> float:
    """A queue delay in milliseconds: 0 to 30 days inclusive."""
    if not is_number(value):
        raise KvTypeError(f"Delay must be a number: received {type(value).__name__}")
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        raise KvTypeError("Delay cannot be NaN")
    if number < 0:
        raise KvTypeError(f"Delay must be >= 0: received {js_number(value)}")
    if number > limits.MAX_QUEUE_DELAY_MS:
        raise KvTypeError(f"Delay cannot be greater than 30 days: received {js_number(value)}")
    return number


def backoff_schedule(schedule: Sequence[object] | None) -> tuple[int, ...]:
    """Retry intervals in milliseconds: at most 5, each 0 to 3,600,000; Deno's default if None."""
    if schedule is None:
        return limits.DEFAULT_BACKOFF_SCHEDULE
    if len(schedule) > limits.MAX_BACKOFF_INTERVALS:
        raise KvTypeError(
            f"Invalid backoffSchedule, max {limits.MAX_BACKOFF_INTERVALS} intervals allowed"
        )
    for index, interval in enumerate(schedule):
        if not is_number(interval) or not (0 <= interval <= limits.MAX_BACKOFF_MS):  # type: ignore[operator]
            raise KvTypeError(f"Invalid backoffSchedule, interval at index {index} is invalid")
    return tuple(int(interval) for interval in schedule)  # type: ignore[call-overload]  # Deno truncates


def versionstamp(value: object) -> bytes | None:
    """A check's versionstamp: 20 hex characters (any case) or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 20:
        raise KvTypeError("Invalid check")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 10:
        raise KvTypeError("Invalid check")
    return raw
