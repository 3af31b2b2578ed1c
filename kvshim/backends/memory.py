"""An in-memory database: a sorted key list over a dict, private to the process."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from bisect import bisect_left, insort
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from kvshim.backends._mutate import apply_u64, commit_step, versionstamped_key
from kvshim.backends._notify import NotifierHub, watch_keys
from kvshim.clock import Clock, wall_clock_ms
from kvshim.model import (
    AtomicWrite,
    Consistency,
    EncodedValue,
    Enqueue,
    Mutation,
    MutationKind,
    RawEntry,
    ReadRange,
    StoredEntry,
    ValueEncoding,
    versionstamp_from_version,
)

# The entry exactly as reads return it (built once per write, not once per read), and its
# expiry time in epoch ms.
_Stored = tuple[RawEntry, int | None]


@dataclass(slots=True)
class _Pending:
    """A queue message waiting for its deadline."""

    payload: bytes
    keys_if_undelivered: tuple[bytes, ...]
    backoff_schedule: tuple[int, ...]


class MemoryMessage:
    """A message handed to a listener of an in-memory database."""

    __slots__ = ("_message", "_store")

    def __init__(self, store: MemoryStore, message: _Pending) -> None:
        self._store = store
        self._message = message

    @property
    def payload(self) -> bytes:
        """The V8-encoded message value."""
        return self._message.payload

    async def finish(self, success: bool) -> None:
        """Acknowledge, or schedule the next attempt / the dead letters."""
        if not success:
            self._store.retry(self._message)


class MemoryStore:
    """The data of one in-memory database, shared by every handle opened on it."""

    def __init__(self, clock: Clock = wall_clock_ms) -> None:
        self._clock = clock
        self._keys: list[bytes] = []
        self._data: dict[bytes, _Stored] = {}
        self._version = 0
        self.hub = NotifierHub()
        self._expiries: list[tuple[int, bytes]] = []
        self._sweep_wakeup = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._queue: list[tuple[int, int, _Pending]] = []
        self.queue_changed = asyncio.Condition()
        self._sequence = itertools.count()
        self.closed = False

    def _live(self, key: bytes, now: int) -> _Stored | None:
        stored = self._data.get(key)
        if stored is None or (stored[1] is not None and stored[1] <= now):
            return None
        return stored

    async def snapshot_read(
        self, ranges: Sequence[ReadRange], consistency: Consistency = "strong"
    ) -> list[list[RawEntry]]:
        now = self._clock()
        return [self._read_range(r, now) for r in ranges]

    def _read_range(self, read: ReadRange, now: int) -> list[RawEntry]:
        lo, hi = bisect_left(self._keys, read.start), bisect_left(self._keys, read.end)
        indices = range(hi - 1, lo - 1, -1) if read.reverse else range(lo, hi)
        out: list[RawEntry] = []
        for index in indices:
            key = self._keys[index]
            stored = self._live(key, now)
            if stored is not None:
                out.append(stored[0])
                if len(out) >= read.limit:
                    break
        return out

    async def atomic_write(self, write: AtomicWrite) -> bytes | None:
        now = self._clock()
        for check in write.checks:
            stored = self._live(check.key, now)
            if (stored[0].versionstamp if stored else None) != check.versionstamp:
                return None
        version = self._version + commit_step()
        versionstamp = versionstamp_from_version(version)
        staged = self._stage(write.mutations, versionstamp, now)
        self._version = version
        self._apply(staged)
        for message in write.enqueues:
            self._push(message.deadline_ms, _pending(message))
        self.hub.notify(staged)
        return versionstamp

    def _stage(
        self, mutations: Sequence[Mutation], versionstamp: bytes, now: int
    ) -> dict[bytes, _Stored | None]:
        """The new state of every mutated key; raises before anything is applied."""
        staged: dict[bytes, _Stored | None] = {}
        for m in mutations:
            if m.kind is MutationKind.SET:
                assert m.value is not None
                staged[m.key] = (RawEntry(m.key, m.value, versionstamp), m.expire_at_ms)
            elif m.kind is MutationKind.DELETE:
                staged[m.key] = None
            elif m.kind is MutationKind.SET_VERSIONSTAMPED_KEY:
                assert m.value is not None
                key = versionstamped_key(m.key, versionstamp)
                staged[key] = (RawEntry(key, m.value, versionstamp), m.expire_at_ms)
            else:
                assert m.value is not None
                current = staged[m.key] if m.key in staged else self._live(m.key, now)
                value = apply_u64(m.kind, current[0].value if current else None, m.value)
                staged[m.key] = (RawEntry(m.key, value, versionstamp), None)
        return staged

    def _apply(self, staged: dict[bytes, _Stored | None]) -> None:
        for key, stored in staged.items():
            if stored is None:
                if self._data.pop(key, None) is not None:
                    del self._keys[bisect_left(self._keys, key)]
                continue
            if key not in self._data:
                insort(self._keys, key)
            self._data[key] = stored
            if stored[1] is not None:
                self._schedule_expiry(stored[1], key)

    def _schedule_expiry(self, at: int, key: bytes) -> None:
        if not self._expiries or at < self._expiries[0][0]:
            self._sweep_wakeup.set()
        heapq.heappush(self._expiries, (at, key))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while not self.closed:
            self._sweep_wakeup.clear()
            now = self._clock()
            expired: list[bytes] = []
            while self._expiries and self._expiries[0][0] <= now:
                at, key = heapq.heappop(self._expiries)
                stored = self._data.get(key)
                if stored is not None and stored[1] == at:
                    expired.append(key)
            if expired:
                self._version += 1
                self._apply(dict.fromkeys(expired))
                self.hub.notify(expired)
            timeout = (self._expiries[0][0] - now) / 1000 if self._expiries else None
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # wait_for can drop a cancel (3.11)
                    await self._sweep_wakeup.wait()

    def _push(self, deadline: int, message: _Pending) -> None:
        heapq.heappush(self._queue, (deadline, next(self._sequence), message))
        asyncio.get_running_loop().create_task(self.wake_listeners())

    async def dequeue_next(self, is_closed: Callable[[], bool]) -> MemoryMessage | None:
        """The next due message, waiting for one; ``None`` once ``is_closed()``."""
        async with self.queue_changed:
            while not (self.closed or is_closed()):
                now = self._clock()
                if self._queue and self._queue[0][0] <= now:
                    return MemoryMessage(self, heapq.heappop(self._queue)[2])
                timeout = (self._queue[0][0] - now) / 1000 if self._queue else None
                with suppress(TimeoutError):
                    async with asyncio.timeout(timeout):  # wait_for can drop a cancel (3.11)
                        await self.queue_changed.wait()
        return None

    def retry(self, message: _Pending) -> None:
        """Schedule the next attempt of a failed message, or write its dead letters."""
        if self.closed:
            return
        if message.backoff_schedule:
            delay, *rest = message.backoff_schedule
            message.backoff_schedule = tuple(rest)
            self._push(self._clock() + delay, message)
        elif message.keys_if_undelivered:
            value = EncodedValue(message.payload, ValueEncoding.V8)
            dead = [Mutation(k, MutationKind.SET, value) for k in message.keys_if_undelivered]
            version = self._version + commit_step()
            staged = self._stage(dead, versionstamp_from_version(version), self._clock())
            self._version = version
            self._apply(staged)
            self.hub.notify(staged)

    async def export_entries(self, start: bytes, end: bytes, limit: int) -> list[StoredEntry]:
        now = self._clock()
        out: list[StoredEntry] = []
        for key in self._keys[bisect_left(self._keys, start) : bisect_left(self._keys, end)]:
            stored = self._live(key, now)
            if stored is not None:
                entry = stored[0]
                out.append(StoredEntry(key, entry.value, entry.versionstamp, stored[1]))
                if len(out) >= limit:
                    break
        return out

    async def import_entries(self, entries: Sequence[StoredEntry]) -> None:
        staged: dict[bytes, _Stored | None] = {
            e.key: (RawEntry(e.key, e.value, e.versionstamp), e.expire_at_ms) for e in entries
        }
        for entry in entries:
            self._version = max(self._version, int.from_bytes(entry.versionstamp[:8], "big"))
        self._apply(staged)
        self.hub.notify(staged)

    async def read_keys(self, keys: Sequence[bytes]) -> list[RawEntry | None]:
        now = self._clock()
        out: list[RawEntry | None] = []
        for key in keys:
            stored = self._live(key, now)
            out.append(stored[0] if stored else None)
        return out

    async def close(self) -> None:
        """Stop the expiry sweeper and wake every queue listener for the last time."""
        self.closed = True
        self._sweep_wakeup.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.wake_listeners()

    async def wake_listeners(self) -> None:
        """Let every waiting ``dequeue_next`` look at the queue again."""
        async with self.queue_changed:
            self.queue_changed.notify_all()


class MemoryBackend:
    """A handle on an in-memory database: ``":memory:"`` is private to its handle, a named
    one (``memory:NAME``) is shared by every handle in the process and outlives them."""

    def __init__(self, store: MemoryStore | None = None, *, owns_store: bool = True) -> None:
        self._store = store or MemoryStore()
        self._owns_store = owns_store
        self._notifier = self._store.hub.attach()
        self._closed = False

    async def snapshot_read(
        self, ranges: Sequence[ReadRange], consistency: Consistency = "strong"
    ) -> list[list[RawEntry]]:
        return await self._store.snapshot_read(ranges, consistency)

    async def atomic_write(self, write: AtomicWrite) -> bytes | None:
        return await self._store.atomic_write(write)

    async def dequeue_next(self) -> MemoryMessage | None:
        return await self._store.dequeue_next(lambda: self._closed)

    async def export_entries(self, start: bytes, end: bytes, limit: int) -> list[StoredEntry]:
        return await self._store.export_entries(start, end, limit)

    async def import_entries(self, entries: Sequence[StoredEntry]) -> None:
        await self._store.import_entries(entries)

    def watch(self, keys: Sequence[bytes]) -> AsyncGenerator[list[RawEntry | None], None]:
        return watch_keys(self._notifier, keys, self._store.read_keys)

    async def close(self) -> None:
        self._closed = True
        self._store.hub.detach(self._notifier)
        if self._owns_store:
            await self._store.close()
        else:
            await self._store.wake_listeners()


_named: dict[str, MemoryStore] = {}


def open_named(name: str) -> MemoryBackend:
    """A handle on the process-wide in-memory database called ``name`` (created on first use)."""
    store = _named.get(name)
    if store is None:
        store = _named[name] = MemoryStore()
    return MemoryBackend(store, owns_store=False)


def _pending(message: Enqueue) -> _Pending:
    return _Pending(message.payload, message.keys_if_undelivered, message.backoff_schedule)
