"""The SQLite file backend: Deno's file format, group commit, and cross-process wake-ups.

What is promised: an ``atomic_write`` that returned is durable (WAL with ``synchronous=FULL``:
the commit's WAL frames were fsynced before the future resolved, so it survives a process
kill and, given an honest disk, power loss), and an atomic write is applied entirely or not at
all (one SAVEPOINT per write inside the group's transaction).

All handles on one file opened from one event loop share a ``SharedDatabase`` (keyed by the
canonical path): one connection on the loop itself for small reads and lone commits, one
writer thread for the other commits (``_sqlite_commits`` decides), one reader pool, one
``NotifierHub``, one expiry sweeper.
Unlike Deno, changes made by other processes are noticed: while anyone watches or listens,
``data_version`` is polled every ``POLL_INTERVAL_S``, and a change wakes every watcher, queue
listener and the sweeper. A dequeued message moves to ``queue_running`` with a lease that a
heartbeat renews while its handler runs, so a long handler is not delivered twice; a message
whose lease ran out (its process died) is retried by whichever process dequeues next.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import TypeVar

from kvshim.backends import sqlite_store as store
from kvshim.backends._notify import NotifierHub, watch_keys
from kvshim.backends._sqlite_commits import WriteRouter
from kvshim.backends._sqlite_inline import BUSY, LoopConnection
from kvshim.backends._sqlite_threads import Completions, ReaderPool, Writer
from kvshim.clock import Clock, wall_clock_ms
from kvshim.errors import KvError
from kvshim.model import AtomicWrite, Consistency, RawEntry, ReadRange, StoredEntry

logger = logging.getLogger("kvshim.sqlite")
T = TypeVar("T")

POLL_INTERVAL_S = 0.075
"""How often ``data_version`` is polled for other processes' writes while anyone waits."""
LEASE_MS = 5_000
"""How long a dequeued message stays claimed without a heartbeat (Deno's 5 s)."""
HEARTBEAT_S = 1.5
"""How often a running handler's lease is renewed."""
MAX_QUEUE_WAIT_S = 2.0
"""The longest a queue listener sleeps without looking at the queue (a safety net only)."""
SMALL_READ_ROWS = 64
"""Reads of at most this many rows run on the event loop's thread (``LoopConnection``): reading
and building an entry costs ~1.2 us a row on a warm cache, so at most ~80 us on the loop, about
what handing the read to a thread and back costs on a busy or virtualised machine."""


class SharedDatabase:
    """One SQLite file as seen by one event loop: the state every handle on it shares."""

    def __init__(
        self,
        path: str,
        key: tuple[str, int],
        writer: Writer,
        completions: Completions,
        clock: Clock,
    ) -> None:
        self.path = path
        self._key = key
        self.writer = writer
        self._completions = completions
        self.readers = ReaderPool(partial(store.connect, path), completions, writer)
        self.inline = LoopConnection(path)
        self.writes = WriteRouter(writer, self.inline)
        self.clock = clock
        self.hub = NotifierHub()
        self.handles = 0
        self.closed = False
        self.known_version = 0
        self._queue_changed = asyncio.Condition()
        self._queue_generation = 0
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None
        self._sweep_wakeup = asyncio.Event()
        self._next_sweep: int | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._in_flight = 0

    def start(self) -> None:
        """Start the expiry sweeper (its first pass deletes what expired while closed)."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    # --- reads -------------------------------------------------------------------------------

    async def read(
        self, call: Callable[[sqlite3.Connection], T], rows: int, *, single_statement: bool
    ) -> T:
        """``call(conn)`` in one snapshot, expected to return at most ``rows`` rows. A small
        read runs right here, on the event loop's own connection, unless the file is locked;
        anything else on a SQLite thread (see ``ReaderPool.run``)."""
        small = rows <= SMALL_READ_ROWS
        if small:
            inline = self.inline
            found = inline.read(call) if single_statement else inline.read_snapshot(call)
            if found is not BUSY:
                return found
        return await self.readers.run(call, single_statement=single_statement, small=small)

    # --- writes and their aftermath ----------------------------------------------------------

    async def write(
        self, call: Callable[[sqlite3.Connection], store.WriteResult], *, small: bool = True
    ) -> store.WriteResult:
        """Commit a write (see ``WriteRouter``) and react to what it changed."""
        result = await self.writes.write(call, small=small)
        self.after(result.changes)
        return result

    def after(self, changes: store.Changes) -> None:
        """Wake whoever ``changes`` concern (called on the loop, after the commit)."""
        if changes.version is not None:
            self.known_version = max(self.known_version, changes.version)
        if changes.keys:
            self.hub.notify(changes.keys)
        if changes.enqueued:
            self.wake_queue()
        at = changes.earliest_expiry
        if at is not None and (self._next_sweep is None or at < self._next_sweep):
            self._next_sweep = at
            self._sweep_wakeup.set()

    def wake_queue(self) -> None:
        """Let every waiting listener look at the queue again (soon)."""
        self._queue_generation += 1
        asyncio.get_running_loop().create_task(self._notify_queue())

    async def wake_queue_now(self) -> None:
        """Let every waiting listener look at the queue again, and wait until they are told."""
        self._queue_generation += 1
        await self._notify_queue()

    async def _notify_queue(self) -> None:
        async with self._queue_changed:
            self._queue_changed.notify_all()

    async def wait_queue(self, generation: int, timeout: float) -> None:
        """Sleep until the queue changes after ``generation`` or ``timeout`` passes."""
        async with self._queue_changed:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the inner wait completes (a cancelled listener would run on).
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._queue_changed.wait_for(
                        lambda: self._queue_generation != generation or self.closed
                    )

    @property
    def queue_generation(self) -> int:
        """A counter bumped whenever the queue may have a new deliverable message."""
        return self._queue_generation

    # --- expiry ------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while not self.closed:
            self._sweep_wakeup.clear()
            try:
                changes, upcoming = await self.writes.write(
                    lambda conn: store.sweep_expired(conn, self.clock()), small=False
                )
            except KvError:
                logger.exception("expiry sweep failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                continue
            self.after(changes)
            self._next_sweep = upcoming
            timeout = None if upcoming is None else max(0, upcoming - self.clock()) / 1000
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._sweep_wakeup.wait()

    # --- other processes ---------------------------------------------------------------------

    @asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Mark a watcher or listener as waiting: other processes' writes are polled for."""
        self._waiters += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll_forever())
        try:
            yield
        finally:
            self._waiters -= 1

    async def _poll_forever(self) -> None:
        while self._waiters > 0 and not self.closed:
            try:
                version = await self.read(store.data_version, 1, single_statement=True)
            except KvError:
                logger.exception("polling the database for changes failed")
                version = self.known_version
            if version > self.known_version:
                self.known_version = version
                self.hub.notify_all()
                self.wake_queue()
                self._sweep_wakeup.set()
            await asyncio.sleep(POLL_INTERVAL_S)

    # --- queue messages in flight ------------------------------------------------------------

    def message_started(self) -> None:
        """Count a dequeued message whose handler runs (the writer outlives the last close
        until every one of them has finished)."""
        self._in_flight += 1

    async def message_finished(self) -> None:
        """Count a finished message; shut down if it was the last thing keeping us open."""
        self._in_flight -= 1
        if self.closed and self._in_flight == 0:
            await self._shutdown()

    # --- lifetime ----------------------------------------------------------------------------

    async def release(self) -> None:
        """A handle closed; the last one stops the background work and the threads."""
        self.handles -= 1
        if self.handles > 0:
            return
        self.closed = True
        _registry.pop(self._key, None)
        await self._notify_queue()
        for task in (self._sweeper, self._poller):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if self._in_flight == 0:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.writes.close()
        await self.writer.stop()
        self.inline.close()
        await self.readers.close()
        self._completions.close()


class SqliteMessage:
    """A message claimed from the file's queue; a heartbeat keeps the claim while it runs."""

    def __init__(self, db: SharedDatabase, row: store.QueueRow) -> None:
        self._db = db
        self._row = row
        self._finished = False
        db.message_started()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    @property
    def payload(self) -> bytes:
        """The V8-encoded message value."""
        return self._row.payload

    async def _beat(self) -> None:
        message_id = self._row.id
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            deadline = self._db.clock() + LEASE_MS
            try:
                alive = await self._db.writes.write(
                    partial(store.extend_lease, message_id=message_id, deadline=deadline)
                )
            except KvError:
                logger.exception("renewing a queue message's lease failed")
                alive = True
            if not alive:
                return  # a cleanup pass took it back; it will be delivered again

    async def finish(self, success: bool) -> None:
        """Release the claim: done, or a failed attempt (retry later or dead-letter)."""
        if self._finished:
            return
        self._finished = True
        self._heartbeat.cancel()
        with suppress(asyncio.CancelledError):
            await self._heartbeat
        db, message_id = self._db, self._row.id
        try:
            changes = await db.writes.write(
                lambda conn: store.finish(conn, message_id, success, db.clock())
            )
            db.after(changes)
        finally:
            await db.message_finished()


class SqliteBackend:
    """A handle on a SQLite file database."""

    def __init__(self, db: SharedDatabase) -> None:
        self._db = db
        db.handles += 1
        self._notifier = db.hub.attach()
        self._closed = False

    async def snapshot_read(
        self, ranges: Sequence[ReadRange], consistency: Consistency = "strong"
    ) -> list[list[RawEntry]]:
        clock = self._db.clock
        if len(ranges) == 1:  # the common case: one statement, one snapshot
            read = ranges[0]

            def read_one(conn: sqlite3.Connection) -> list[list[RawEntry]]:
                return [store.read_range(conn, read, clock())]

            if read.limit <= SMALL_READ_ROWS:  # db.read() inlined: the hottest read path
                found = self._db.inline.read(read_one)
                if found is not BUSY:
                    return found
            return await self._db.readers.run_one(read_one, read.limit <= SMALL_READ_ROWS)

        def read_all(conn: sqlite3.Connection) -> list[list[RawEntry]]:
            return store.read_ranges(conn, ranges, clock())

        rows = sum(r.limit for r in ranges)
        return await self._db.read(read_all, rows, single_statement=False)

    async def atomic_write(self, write: AtomicWrite) -> bytes | None:
        db = self._db
        clock = db.clock
        # db.write() inlined: one coroutine less on every commit.
        result = await db.writes.write(lambda conn: store.atomic_write(conn, write, clock()))
        db.after(result.changes)
        return result.versionstamp

    async def export_entries(self, start: bytes, end: bytes, limit: int) -> list[StoredEntry]:
        clock = self._db.clock
        return await self._db.readers.run(
            lambda conn: store.export_range(conn, start, end, limit, clock()),
            single_statement=True,
        )

    async def import_entries(self, entries: Sequence[StoredEntry]) -> None:
        await self._db.write(lambda conn: store.import_entries(conn, entries), small=False)

    async def _read_keys(self, keys: Sequence[bytes]) -> list[RawEntry | None]:
        clock = self._db.clock
        return await self._db.read(
            lambda conn: store.read_keys(conn, keys, clock()),
            len(keys),
            single_statement=len(keys) == 1,
        )

    async def dequeue_next(self) -> SqliteMessage | None:
        db = self._db
        async with db.waiting():
            while not (db.closed or self._closed):
                generation = db.queue_generation
                found = await db.writes.write(
                    lambda conn: store.dequeue(conn, db.clock(), LEASE_MS)
                )
                db.after(found.changes)
                if found.message is not None:
                    return SqliteMessage(db, found.message)
                timeout = MAX_QUEUE_WAIT_S
                if found.next_due_ms is not None:
                    timeout = min(timeout, max(0, found.next_due_ms - db.clock()) / 1000)
                await db.wait_queue(generation, timeout)
        return None

    def watch(self, keys: Sequence[bytes]) -> AsyncGenerator[list[RawEntry | None], None]:
        return self._watch(keys)

    async def _watch(self, keys: Sequence[bytes]) -> AsyncGenerator[list[RawEntry | None], None]:
        async with self._db.waiting():
            async for entries in watch_keys(self._notifier, keys, self._read_keys):
                yield entries

    async def close(self) -> None:
        self._closed = True
        self._db.hub.detach(self._notifier)
        await self._db.wake_queue_now()
        await self._db.release()


_registry: dict[tuple[str, int], SharedDatabase] = {}
_opening: dict[tuple[str, int], asyncio.Lock] = {}


async def open_sqlite(path: str, clock: Clock = wall_clock_ms) -> SqliteBackend:
    """A handle on the SQLite database at ``path``, created (and migrated) if missing; parent
    directories are not created."""
    loop = asyncio.get_running_loop()
    key = (os.path.realpath(path), id(loop))
    lock = _opening.setdefault(key, asyncio.Lock())
    async with lock:
        db = _registry.get(key)
        if db is None:
            db = await _open_shared(path, key, clock)
            _registry[key] = db
        _opening.pop(key, None)
    return SqliteBackend(db)


async def _open_shared(path: str, key: tuple[str, int], clock: Clock) -> SharedDatabase:
    # Connections opened later (the loop's, the readers') open this very file even if the
    # process changes directory in between.
    absolute = os.path.abspath(path)
    conn = await asyncio.to_thread(store.connect, path)
    completions = Completions(asyncio.get_running_loop())
    writer = Writer(conn, path, completions)
    try:
        await writer.write(store.migrate)
    except BaseException:
        await writer.stop()
        completions.close()
        raise
    db = SharedDatabase(absolute, key, writer, completions, clock)
    db.start()
    return db
