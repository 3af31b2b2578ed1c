"""``Kv``: Deno KV's API (get, set, list, atomic, watch, queues) over any ``Backend``."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any

from kvshim import limits, queues, validation
from kvshim.atomic import AtomicOperation, delete_mutation, set_mutation, single_write
from kvshim.backends.base import Backend
from kvshim.clock import Clock, wall_clock_ms
from kvshim.entries import COMMIT_VERSIONSTAMP, CommitResult, KvEntry, make_entry
from kvshim.errors import KvClosedError, KvTypeError, QueueClosedError
from kvshim.keys import Key, decode_key, encode_key
from kvshim.listing import KvListIterator, Selector, positive_int
from kvshim.model import AtomicWrite, Consistency, RawEntry, ReadRange, ValueEncoding
from kvshim.values import decode_v8, decode_value

KeyLike = Sequence[Any]


class Kv:
    """A Deno KV database. Open one with ``await kvshim.open_kv(...)``."""

    def __init__(self, backend: Backend, *, clock: Clock = wall_clock_ms) -> None:
        self._backend = backend
        self._clock = clock
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._closed

    def _ensure_open(self) -> None:
        if self._closed:
            raise KvClosedError()

    async def get(self, key: KeyLike, *, consistency: Consistency = "strong") -> KvEntry:
        """The entry at ``key`` (``value`` and ``versionstamp`` are ``None`` if missing)."""
        # get_many([key]) without its per-call lists: this is the hottest read path.
        if self._closed:
            raise KvClosedError()
        level = consistency if consistency == "strong" else validation.consistency(consistency)
        encoded = encode_key(key)
        read = ReadRange(encoded, validation.read_bound(encoded + b"\x00"), 1)
        # The entry found is at exactly ``encoded``: for the usual keys, decoding its bytes
        # would only give back the key as passed (taken now: a list may change meanwhile).
        plain = _plain_key(key)
        found = (await self._backend.snapshot_read((read,), level))[0]
        if not found:
            return KvEntry(tuple(key), None, None)
        return _decode_entry(found[0], plain)

    async def get_many(
        self, keys: Sequence[KeyLike], *, consistency: Consistency = "strong"
    ) -> list[KvEntry]:
        """The entries at up to 10 ``keys``, read from one snapshot, in the order given."""
        self._ensure_open()
        level = validation.consistency(consistency)
        if len(keys) > limits.MAX_READ_RANGES:
            raise KvTypeError(f"Too many ranges (max {limits.MAX_READ_RANGES})")
        ranges = []
        for key in keys:
            encoded = encode_key(key)
            ranges.append(ReadRange(encoded, validation.read_bound(encoded + b"\x00"), 1))
        results = await self._backend.snapshot_read(ranges, level) if ranges else []
        return [
            _decode_entry(found[0]) if found else KvEntry(tuple(key), None, None)
            for key, found in zip(keys, results, strict=True)
        ]

    def list(
        self,
        *,
        prefix: KeyLike | None = None,
        start: KeyLike | None = None,
        end: KeyLike | None = None,
        limit: int | None = None,
        reverse: bool = False,
        cursor: str | None = None,
        batch_size: int | None = None,
        consistency: Consistency = "strong",
    ) -> KvListIterator:
        """Iterate over the entries under ``prefix`` (the prefix key itself excluded) or from
        ``start`` (inclusive) to ``end`` (exclusive), in key order or ``reverse``."""
        selector = Selector.build(prefix, start, end)
        return KvListIterator(
            self._read_range,
            _decode_entry,
            selector,
            limit=positive_int(limit, "Limit"),
            reverse=bool(reverse),
            cursor=cursor,
            batch_size=positive_int(batch_size, "batchSize"),
            consistency=consistency,
        )

    async def _read_range(
        self, read: ReadRange, consistency: Consistency
    ) -> builtins.list[RawEntry]:
        self._ensure_open()
        return (await self._backend.snapshot_read([read], consistency))[0]

    async def set(
        self, key: KeyLike, value: object, *, expire_in: int | None = None
    ) -> CommitResult:
        """Store ``value`` at ``key``; with ``expire_in``, it expires after that many ms."""
        # atomic().set().commit(), without the builder's lists and generic limit checks.
        mutation, ttl = set_mutation(key, value, expire_in)
        return await self._commit(single_write(mutation, ttl, self._clock))

    async def delete(self, key: KeyLike) -> None:
        """Remove ``key`` (removing a missing key is not an error)."""
        await self._commit(single_write(delete_mutation(key), None, self._clock))

    def atomic(self) -> AtomicOperation:
        """A new atomic operation; nothing happens until its ``commit()``."""
        return AtomicOperation(self._commit, self._clock)

    async def _commit(self, write: AtomicWrite) -> CommitResult:
        self._ensure_open()
        versionstamp = await self._backend.atomic_write(write)
        if versionstamp is None:
            return CommitResult(False, None)
        return CommitResult(True, versionstamp.hex())

    @staticmethod
    def commit_versionstamp() -> Any:
        """A marker that, as the last part of a ``set`` key, becomes the commit's versionstamp."""
        return COMMIT_VERSIONSTAMP

    async def enqueue(
        self,
        value: object,
        *,
        delay: float = 0,
        keys_if_undelivered: Sequence[KeyLike] | None = None,
        backoff_schedule: Sequence[float] | None = None,
    ) -> CommitResult:
        """Queue ``value`` for ``listen_queue`` after ``delay`` ms. A failed delivery is retried
        after each interval of ``backoff_schedule`` (default ``[100, 1000, 5000, 30000,
        60000]``); after the last, ``value`` is written to every key of ``keys_if_undelivered``."""
        operation = self.atomic().enqueue(
            value,
            delay=delay,
            keys_if_undelivered=keys_if_undelivered,
            backoff_schedule=backoff_schedule,
        )
        return await operation.commit()

    async def listen_queue(self, handler: queues.Handler) -> None:
        """Call ``handler(value)`` (sync or async) for each queued message until the database
        closes. A handler that raises is logged and its message retried."""
        if self._closed:
            raise QueueClosedError()
        await queues.listen(self._backend, handler)

    def watch(
        self, keys: Sequence[KeyLike], *, raw: bool = False
    ) -> AsyncIterator[builtins.list[KvEntry]]:
        """Yield the entries of up to 10 ``keys`` now, and again whenever one of their
        versionstamps changes (with ``raw``, on every write that touches one of them)."""
        self._ensure_open()
        if len(keys) > limits.MAX_WATCHED_KEYS:
            raise KvTypeError(f"Too many keys (max {limits.MAX_WATCHED_KEYS})")
        encoded = [validation.read_bound(encode_key(key)) for key in keys]
        return self._watch([tuple(key) for key in keys], encoded, raw)

    async def _watch(
        self, keys: builtins.list[Key], encoded: builtins.list[bytes], raw: bool
    ) -> AsyncGenerator[builtins.list[KvEntry], None]:
        if not encoded and not raw:
            return
        last: builtins.list[bytes | None] | None = None
        async with aclosing(self._backend.watch(encoded)) as stream:
            async for found in stream:
                stamps = [entry.versionstamp if entry else None for entry in found]
                if raw or stamps != last:
                    last = stamps
                    yield [
                        _decode_entry(entry) if entry else KvEntry(key, None, None)
                        for key, entry in zip(keys, found, strict=True)
                    ]

    async def close(self) -> None:
        """Close the database: watches end, ``listen_queue`` returns, later calls fail."""
        self._ensure_open()
        self._closed = True
        await self._backend.close()

    async def __aenter__(self) -> Kv:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            await self.close()


def _decode_entry(raw: RawEntry, key: Key | None = None) -> KvEntry:
    """``raw`` as the user sees it; ``key``, if given, is what ``decode_key(raw.key)`` gives."""
    value = raw.value
    # Most values are V8: call its decoder directly (this runs once per entry listed).
    data = decode_v8(value.data) if value.encoding == _V8 else decode_value(value)
    return make_entry(decode_key(raw.key) if key is None else key, data, raw.versionstamp.hex())


_V8 = int(ValueEncoding.V8)


def _plain_key(key: KeyLike) -> Key | None:
    """``key`` as a tuple if every part is an ASCII ``str`` or an ``int`` (already checked to be
    a safe integer by ``encode_key``): then ``decode_key(encode_key(key))`` is exactly that
    tuple. ``None`` for any other key (floats, bytes, BigInt, subclasses...): decode it."""
    for part in key:
        kind = type(part)
        if kind is not int and (kind is not str or not part.isascii()):
            return None
    return tuple(key)
