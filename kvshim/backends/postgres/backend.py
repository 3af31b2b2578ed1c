"""A KV database stored in PostgreSQL tables, shared by every client that opens the same URL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import suppress
from typing import TypeVar, cast

import asyncpg

from kvshim.backends._notify import KeyNotifier, watch_keys
from kvshim.backends.postgres import queue, writes
from kvshim.backends.postgres.batching import WriteBatcher
from kvshim.backends.postgres.config import PgConfig
from kvshim.backends.postgres.errors import is_transient, retrying
from kvshim.backends.postgres.listener import Change, Listener, payload
from kvshim.backends.postgres.schema import migrate
from kvshim.clock import Clock, wall_clock_ms
from kvshim.errors import BackendError
from kvshim.model import (
    AtomicWrite,
    Consistency,
    EncodedValue,
    Mutation,
    MutationKind,
    RawEntry,
    ReadRange,
    StoredEntry,
    ValueEncoding,
    versionstamp_from_version,
)

logger = logging.getLogger("kvshim.postgres")

FORGET_BATCHES_MS = 600_000
"""How long the outcome of a committed write batch is kept for retries of it (``writes``)."""

T = TypeVar("T")

POLL_S = 10.0
"""Longest wait between looks at the queue and the expiry index, should a NOTIFY be missed."""


class PostgresBackend:
    """A handle on a KV database in one PostgreSQL schema.

    Reads and writes go through an asyncpg pool; a separate LISTEN connection hears every
    client's writes (watch, queue wake-ups, expiry times); a background task deletes expired
    entries when the earliest one is due. Any number of handles, in any number of processes,
    may open the same database: every write is serialised by the write lock (see
    ``writes``), queue messages are leased with ``FOR UPDATE SKIP LOCKED`` (see ``queue``), and
    concurrent sweeps are harmless because each deletes only what is expired under the lock.
    """

    def __init__(self, config: PgConfig, pool: asyncpg.Pool, clock: Clock = wall_clock_ms) -> None:
        self._config = config
        self._pool = pool
        self._clock = clock
        self._sql = writes.Tables(config.schema, config.channel)
        self._queue_sql = queue.QueueSql(config.schema)
        self._notifier = KeyNotifier()
        self._batcher = WriteBatcher(self._write_batch)
        self._listener = Listener(config, self._changed)
        self._queue_event = asyncio.Event()
        self._sweep_wakeup = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._batches_forgotten_at = 0
        self._closed = False
        self._pool_closed = False

    async def start(self) -> None:
        """Start listening for changes and sweeping expired entries."""
        await self._listener.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _run(self, what: str, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def attempt() -> T:
            if self._pool_closed:
                raise BackendError("The PostgreSQL backend is closed")
            async with self._pool.acquire() as proxy:
                try:
                    # the pool's proxy forwards every call to its connection
                    return await operation(cast(asyncpg.Connection, proxy))
                except Exception as exc:
                    if is_transient(exc):
                        proxy.terminate()  # never hand a broken connection to the next caller
                    raise

        return await retrying(attempt, what)

    async def snapshot_read(
        self, ranges: Sequence[ReadRange], consistency: Consistency = "strong"
    ) -> list[list[RawEntry]]:
        """Every range, read by one statement (so from one snapshot)."""
        now = self._clock()
        if len(ranges) == 1:  # the common case, with a cheaper plan than the LATERAL join
            r = ranges[0]
            sql = self._sql.read_one_reverse if r.reverse else self._sql.read_one
            args: tuple[object, ...] = (r.start, now, r.end, r.limit)
        else:
            sql = self._sql.read
            args = (
                [r.start for r in ranges],
                now,
                [r.end for r in ranges],
                [r.limit for r in ranges],
                [r.reverse for r in ranges],
            )
        rows = await self._run("read", lambda con: con.fetch(sql, *args))
        out: list[list[RawEntry]] = [[] for _ in ranges]
        for row in rows:
            value = EncodedValue(row["value"], row["encoding"])
            stamp = versionstamp_from_version(row["version"])
            out[row["i"] - 1].append(RawEntry(row["key"], value, stamp))
        for read, entries in zip(ranges, out, strict=True):
            entries.sort(key=lambda entry: entry.key, reverse=read.reverse)
        return out

    async def atomic_write(self, write: AtomicWrite) -> bytes | None:
        """Apply ``write`` atomically (see ``writes`` for why it is serializable), sharing the
        transaction with this handle's other concurrent writes (see ``batching``)."""
        return await self._batcher.submit(write)

    async def _write_batch(self, batch: list[AtomicWrite]) -> list[writes.Outcome]:
        args = writes.batch_arguments(self._sql, batch, self._clock())
        return await self._run("write", lambda con: writes.write_batch(con, self._sql, args))

    # --- raw access (backup, restore, copy) ---------------------------------------------

    async def export_entries(self, start: bytes, end: bytes, limit: int) -> list[StoredEntry]:
        """Live entries in ``[start, end)`` with their versionstamps and expiry
        (``RawAccess``)."""
        args = (start, self._clock(), end, limit)
        rows = await self._run("export", lambda con: con.fetch(self._sql.export, *args))
        return [
            StoredEntry(
                row["key"],
                EncodedValue(row["value"], row["encoding"]),
                versionstamp_from_version(row["version"]),
                row["expire_at_ms"],
            )
            for row in rows
        ]

    async def import_entries(self, entries: Sequence[StoredEntry]) -> None:
        """Store ``entries`` exactly, in one transaction under the write lock, and raise the
        version sequence past the largest imported version (``RawAccess``). As with Deno's
        local backends, a versionstamp is the version in its first 8 bytes (the last two are
        taken as 0)."""
        if not entries:
            return
        columns = (
            [e.key for e in entries],
            [e.value.data for e in entries],
            [int(e.value.encoding) for e in entries],
            [int.from_bytes(e.versionstamp[:8], "big") for e in entries],
            [e.expire_at_ms for e in entries],
        )
        expiry = any(e.expire_at_ms is not None for e in entries)
        text = payload([e.key for e in entries], queue=False, expiry=expiry)

        async def store(con: asyncpg.Connection) -> None:
            async with con.transaction():
                await con.execute(self._sql.lock)
                await con.execute(self._sql.import_rows, *columns)
                await con.execute(self._sql.raise_version, max(columns[3]))
                await con.execute("SELECT pg_notify($1, $2)", self._config.channel, text)

        await self._run("import", store)

    def watch(self, keys: Sequence[bytes]) -> AsyncGenerator[list[RawEntry | None], None]:
        """The entries of ``keys`` now and after every change any client makes to them."""
        return watch_keys(self._notifier, keys, self._read_keys)

    async def _read_keys(self, keys: Sequence[bytes]) -> list[RawEntry | None]:
        found = await self.snapshot_read([ReadRange(k, k + b"\x00", 1) for k in keys])
        return [entries[0] if entries else None for entries in found]

    def _changed(self, change: Change) -> None:
        if change.keys is None:
            self._notifier.notify_all()
        else:
            self._notifier.notify(change.keys)
        if change.queue:
            self._wake_queue()
        if change.expiry:
            self._sweep_wakeup.set()

    def _wake_queue(self) -> None:
        self._queue_event.set()
        self._queue_event = asyncio.Event()

    # --- queues -----------------------------------------------------------------------

    async def dequeue_next(self) -> queue.PostgresMessage | None:
        """Lease the next due message, waiting (for a NOTIFY or its due time) until one is."""
        while not self._closed:
            woken = self._queue_event
            try:
                claimed, next_due = await self._run("dequeue", self._claim)
            except BackendError as exc:
                logger.warning("Queue listener cannot reach PostgreSQL: %s", exc)
                claimed, next_due = None, None
            if claimed is not None:
                self._in_flight += 1
                lease = self._config.lease_ms
                return queue.PostgresMessage(claimed, self._renew, self._finish, lease)
            timeout = POLL_S
            if next_due is not None:
                timeout = min(POLL_S, max(0.0, (next_due - self._clock()) / 1000))
            with suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout)
        return None

    async def _claim(self, con: asyncpg.Connection) -> tuple[queue.Claimed | None, int | None]:
        claimed = await queue.claim(con, self._queue_sql, self._clock(), self._config.lease_ms)
        if claimed is not None:
            return claimed, None
        return None, await con.fetchval(self._queue_sql.next_due)

    async def _renew(self, claimed: queue.Claimed) -> None:
        until = self._clock() + self._config.lease_ms
        await self._run(
            "lease renewal",
            lambda con: con.execute(self._queue_sql.renew, claimed.id, claimed.token, until),
        )

    async def _finish(self, claimed: queue.Claimed, success: bool) -> None:
        value = EncodedValue(claimed.payload, ValueEncoding.V8)
        dead = [Mutation(k, MutationKind.SET, value) for k in claimed.keys_if_undelivered]
        args = writes.batch_arguments(self._sql, [AtomicWrite(mutations=dead)], self._clock())
        try:
            await self._run("queue ack", lambda con: self._settle(con, claimed, success, args))
        finally:
            self._in_flight -= 1
            if self._closed and self._in_flight == 0:
                await self._close_pool()

    async def _settle(
        self, con: asyncpg.Connection, claimed: queue.Claimed, success: bool, dead: list[object]
    ) -> None:
        """Delete, reschedule or dead-letter a finished message; ``dead`` holds the arguments
        of the dead-letter write."""
        ids = (claimed.id, claimed.token)
        if success or not (claimed.backoff_schedule or claimed.keys_if_undelivered):
            await con.execute(self._queue_sql.delete, *ids)
        elif claimed.backoff_schedule:
            delay, *rest = claimed.backoff_schedule
            async with con.transaction():
                due = self._clock() + delay
                await con.execute(self._queue_sql.retry, *ids, due, writes.pack_ints(tuple(rest)))
                text = payload((), queue=True, expiry=False)
                await con.execute("SELECT pg_notify($1, $2)", self._config.channel, text)
        else:

            async def delete(con: asyncpg.Connection) -> None:
                await con.execute(self._queue_sql.delete, *ids)

            await writes.write_batch(con, self._sql, dead, delete)

    # --- expiry -------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while not self._closed:
            self._sweep_wakeup.clear()
            try:
                next_at = await self._run("expiry sweep", self._sweep_once)
            except BackendError as exc:
                logger.warning("Expiry sweep failed: %s", exc)
                next_at = None
            timeout = POLL_S
            if next_at is not None:
                timeout = min(POLL_S, max(0.0, (next_at - self._clock()) / 1000))
            with suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_wakeup.wait(), timeout)

    async def _sweep_once(self, con: asyncpg.Connection) -> int | None:
        """Delete what has expired (if anything); the next expiry time."""
        now = self._clock()
        if now - self._batches_forgotten_at > FORGET_BATCHES_MS / 10:
            await con.execute(self._sql.forget_batches, now - FORGET_BATCHES_MS)
            self._batches_forgotten_at = now
        first: int | None = await con.fetchval(self._sql.next_expiry)
        if first is None or first > now:
            return first
        transaction = con.transaction()
        await transaction.start()
        try:
            await con.execute(self._sql.lock)  # a sweep is a write
            keys = [row["key"] for row in await con.fetch(self._sql.sweep, now)]
            if keys:
                await con.fetchval(self._sql.bump)
                text = payload(keys, queue=False, expiry=False)
                await con.execute("SELECT pg_notify($1, $2)", self._config.channel, text)
        except BaseException:
            with suppress(Exception):
                await transaction.rollback()
            raise
        if keys:
            await transaction.commit()
        else:  # another client swept first
            await transaction.rollback()
        result: int | None = await con.fetchval(self._sql.next_expiry)
        return result

    # --- closing ------------------------------------------------------------------------

    async def close(self) -> None:
        """End watches and queue waits; the pool closes once in-flight messages finish."""
        self._closed = True
        self._notifier.close()
        self._queue_event.set()
        self._sweep_wakeup.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self._listener.close()
        if self._in_flight == 0:
            await self._close_pool()

    async def _close_pool(self) -> None:
        if self._pool_closed:
            return
        self._pool_closed = True
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except TimeoutError:
            self._pool.terminate()


async def open_postgres(config: PgConfig) -> PostgresBackend:
    """Connect, create or migrate the schema, and start the backend's background work."""

    async def connect() -> asyncpg.Pool:
        return await asyncpg.create_pool(
            config.dsn,
            min_size=1,
            max_size=config.pool_size,
            timeout=10,
            # kv_write's checks rely on a fresh snapshot per statement (see writes.py)
            server_settings={"default_transaction_isolation": "read committed"},
            reset=_keep_session,
        )

    try:
        pool = await connect()
    except Exception as exc:
        raise BackendError(f"Cannot open PostgreSQL database {config.redacted}: {exc}") from exc
    backend = PostgresBackend(config, pool)
    try:
        await backend._run("schema migration", lambda con: migrate(con, config.schema))
        await backend.start()
    except BaseException:
        await backend.close()
        raise
    return backend


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip the pool's default reset query (a round trip on every release): the backend never
    changes session state (no SET, LISTEN or session-level locks on pool connections), and
    the pool still rolls back any transaction left open."""
