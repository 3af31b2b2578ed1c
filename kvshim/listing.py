"""``kv.list()``: selectors, batched snapshot reads, and Deno's cursor text."""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kvshim import limits, validation
from kvshim.entries import KvEntry
from kvshim.errors import KvStateError, KvTypeError, KvValueError
from kvshim.keys import encode_key, prefix_range
from kvshim.model import Consistency, RawEntry, ReadRange

Reader = Callable[[ReadRange, Consistency], Awaitable[list[RawEntry]]]
Decoder = Callable[[RawEntry], KvEntry]


@dataclass(frozen=True, slots=True)
class Selector:
    """A list selector as given: a prefix, a prefix with a start or end, or a start and an end."""

    prefix: bytes | None
    start: bytes | None
    end: bytes | None

    @classmethod
    def build(
        cls,
        prefix: Sequence[Any] | None,
        start: Sequence[Any] | None,
        end: Sequence[Any] | None,
    ) -> Selector:
        """Encode and shape-check a selector (the checks Deno makes synchronously)."""
        if prefix is not None and start is not None and end is not None:
            raise KvTypeError(
                "Selector can not specify both 'start' and 'end' key when specifying 'prefix'"
            )
        if prefix is None and (start is None or end is None):
            raise KvTypeError("Selector must specify either 'prefix' or both 'start' and 'end' key")
        return cls(*(None if k is None else encode_key(k) for k in (prefix, start, end)))

    def bounds(self) -> tuple[bytes, bytes, bytes]:
        """``(start, end, common prefix)`` of the scanned range (the checks Deno makes lazily)."""
        if self.prefix is None:
            assert self.start is not None and self.end is not None
            if self.start > self.end:
                raise KvTypeError("Start key is greater than end key")
            start, end, common = self.start, self.end, _common_prefix(self.start, self.end)
        else:
            start, end = prefix_range(self.prefix)
            common = self.prefix
            if self.start is not None:
                start = _inside(self.prefix, self.start, "Start")
            if self.end is not None:
                end = _inside(self.prefix, self.end, "End")
        return validation.read_bound(start), validation.read_bound(end), common

    def contains(self, first: bytes, last: bytes) -> bool:
        """Whether a cursor's range ``[first, last)`` stays within the selector, as Deno
        checks it: against an explicit start or end key, else by starting with the prefix."""
        prefix = self.prefix or b""
        first_ok = first >= self.start if self.start is not None else first.startswith(prefix)
        last_ok = last <= self.end if self.end is not None else last.startswith(prefix)
        return first_ok and last_ok


def _inside(prefix: bytes, key: bytes, which: str) -> bytes:
    if len(key) <= len(prefix) or not key.startswith(prefix):
        raise KvTypeError(f"{which} key is not in the keyspace defined by prefix")
    return key


def _common_prefix(a: bytes, b: bytes) -> bytes:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return a[:size]


def positive_int(value: object, name: str) -> int | None:
    """``value`` if it is a positive integer or ``None``; Deno's plain ``Error`` otherwise."""
    if value is None:
        return None
    if validation.is_number(value) and float(value).is_integer() and value > 0:  # type: ignore[arg-type,operator]
        return int(value)  # type: ignore[call-overload, no-any-return]
    raise KvValueError(f"{name} must be a positive integer: received {validation.js_number(value)}")


class KvListIterator(AsyncIterator[KvEntry]):
    """The entries of a selector, fetched in batches; ``cursor`` resumes after the last one."""

    def __init__(
        self,
        read: Reader,
        decode: Decoder,
        selector: Selector,
        *,
        limit: int | None,
        reverse: bool,
        cursor: str | None,
        batch_size: int | None,
        consistency: object,
    ) -> None:
        self._read, self._decode, self._selector = read, decode, selector
        self._limit, self._reverse = limit, reverse
        self._consistency_given = consistency  # checked at the first read, as in Deno
        self._consistency: Consistency = "strong"
        self._initial_cursor = cursor or None
        if batch_size is None:
            batch_size = min(limit or limits.DEFAULT_BATCH_SIZE, limits.MAX_DEFAULT_BATCH_SIZE)
        self._batch_size = batch_size
        self._buffer: deque[RawEntry] = deque()
        self._range: tuple[bytes, bytes] | None = None
        self._common = b""
        self._last_key: bytes | None = None
        self._count = 0
        self._is_last_batch = False
        self._is_exhausted = False

    @property
    def cursor(self) -> str:
        """Where the next page starts: ``""`` once the listing is exhausted."""
        if self._is_exhausted:
            return ""
        if self._last_key is None:
            if self._initial_cursor is not None:
                return self._initial_cursor
            raise KvStateError("Cannot get cursor before first iteration")
        tail = self._last_key[len(self._common) :]
        return base64.urlsafe_b64encode(tail).decode()

    def __aiter__(self) -> KvListIterator:
        return self

    async def __anext__(self) -> KvEntry:
        if self._is_exhausted or (self._limit is not None and self._count >= self._limit):
            raise StopAsyncIteration
        if not self._buffer and not await self._fetch():
            self._is_exhausted = True
            raise StopAsyncIteration
        raw = self._buffer.popleft()
        self._last_key = raw.key
        self._count += 1
        return self._decode(raw)

    async def _fetch(self) -> bool:
        if self._is_last_batch:
            return False
        if self._range is None:
            self._range = self._first_range()
            self._consistency = validation.consistency(self._consistency_given)
        elif self._last_key is not None:
            start, end = self._range
            key = self._last_key
            self._range = (start, key) if self._reverse else (key + b"\x00", end)
        start, end = self._range
        if start >= end:
            return False
        batch = await self._read(
            ReadRange(start, end, self._batch_size, self._reverse), self._consistency
        )
        self._is_last_batch = len(batch) < self._batch_size
        self._buffer.extend(batch)
        return bool(batch)

    def _first_range(self) -> tuple[bytes, bytes]:
        start, end, self._common = self._selector.bounds()
        if self._batch_size > limits.MAX_READ_ENTRIES:
            raise KvTypeError(f"Too many entries (max {limits.MAX_READ_ENTRIES})")
        if self._initial_cursor is None:
            return start, end
        key = self._common + _decode_cursor(self._initial_cursor)
        first, last = (start, key) if self._reverse else (key + b"\x00", end)
        if not self._selector.contains(first, last):
            raise KvTypeError("cursor out of bounds")
        return validation.read_bound(first), validation.read_bound(last)


def _decode_cursor(cursor: str) -> bytes:
    # Strict, as Deno's decoder: only the one padded base64url text the bytes encode to (no
    # stray characters, no missing padding, no stray bits in the last character).
    try:
        decoded = base64.urlsafe_b64decode(cursor)
    except ValueError:
        raise KvTypeError("invalid cursor") from None
    if base64.urlsafe_b64encode(decoded).decode() != cursor:
        raise KvTypeError("invalid cursor")
    return decoded
