"""The threads that run SQLite for the event loop: one group-committing writer, a few readers.

The writer thread commits whatever the event loop does not commit itself (``_sqlite_commits``
says which: a group of writes, or a write that found the file locked). It takes every
write request waiting in its queue, runs each in its own SAVEPOINT of ONE ``BEGIN IMMEDIATE``
transaction (a request that raises is rolled back alone; a request alone in its batch needs no
savepoint: the transaction is rolled back), commits once, and only then resolves the requests'
futures: concurrent writers share one fsync.

A read runs in one read transaction, which WAL turns into a consistent snapshot (a call of a
single statement runs without BEGIN: SQLite gives one statement its own snapshot). Most small
reads never come here: they run on the event loop itself (``_sqlite_inline``); those that found
the file locked there, and bigger ones, do. A small read goes to the writer when it has nothing
else to do (its page cache is warm); otherwise a read goes to an idle reader thread (each with
its own connection, started on demand), so reads never hold up a group of writes. Which thread
is busy is counted on the event loop (``pending``), so routing takes no lock. Results go back
to the event loop through ``Completions``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from kvshim.errors import BackendError, KvError

T = TypeVar("T")

MAX_BATCH = 512
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_BUSY_RETRIES = 200

WRITE, READ, READ_ONE = 0, 1, 2
"""Request kinds: a write; a read transaction; a read of one statement (no BEGIN needed)."""


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file was locked (SQLITE_BUSY or SQLITE_LOCKED, including
    their extended codes such as SQLITE_BUSY_RECOVERY and SQLITE_BUSY_SNAPSHOT)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _BUSY_CODES


def as_kv_error(exc: BaseException) -> BaseException:
    """``exc`` as the caller should see it: SQLite's own errors become ``BackendError``."""
    if isinstance(exc, KvError) or not isinstance(exc, sqlite3.Error):
        return exc
    return BackendError(f"SQLite error: {exc}")


def retry_busy(step: Callable[[], T]) -> T:
    """Run ``step``, retrying with a 5–20 ms random sleep while the file is locked (on top of
    the connection's busy timeout), so SQLITE_BUSY never reaches the caller."""
    for _ in range(_BUSY_RETRIES):
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            time.sleep(random.uniform(0.005, 0.02))
    return step()


class _Thread:
    """A thread serving the requests of its own queue; ``pending`` (touched on the event loop
    only) counts the requests submitted to it whose outcome the loop has not yet received."""

    def __init__(self, completions: Completions) -> None:
        self.pending = 0
        self.completions = completions
        self._loop = completions.loop
        self.requests: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()

    def submit(
        self,
        call: Callable[[sqlite3.Connection], T],
        kind: int,
        future: asyncio.Future[T] | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``call(conn)`` for this thread; ``future`` (a new one if not given) resolves
        on the event loop."""
        if future is None:
            future = self._loop.create_future()
        self.pending += 1
        self.requests.put(_Request(call, future, kind, self))
        return future


class _Request(Generic[T]):
    __slots__ = ("call", "future", "kind", "owner")

    def __init__(
        self,
        call: Callable[[sqlite3.Connection], T],
        future: asyncio.Future[T],
        kind: int,
        owner: _Thread,
    ) -> None:
        self.call = call
        self.future = future
        self.kind = kind
        self.owner = owner


def _settle(request: _Request[Any], ok: bool, outcome: Any) -> None:
    request.owner.pending -= 1
    future = request.future
    if future.cancelled():
        return
    if ok:
        future.set_result(outcome)
    else:
        future.set_exception(outcome)


def _serve_read(conn: sqlite3.Connection, request: _Request[Any]) -> tuple[bool, Any]:
    call = request.call
    try:
        if request.kind == READ_ONE:
            return True, _call_busy(call, conn)
        return True, _read(conn, call)
    except Exception as exc:
        return False, as_kv_error(exc)


def attempt_alone(
    conn: sqlite3.Connection, call: Callable[[sqlite3.Connection], T]
) -> tuple[bool, Any]:
    """``call(conn)`` as the only request of the open write transaction: ``(True, result)``,
    or ``(False, error)`` with the transaction rolled back (which undoes exactly what a
    savepoint would have, two statements cheaper)."""
    try:
        return True, call(conn)
    except Exception as exc:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors (IOERR, FULL)
            conn.execute("rollback")
        return False, as_kv_error(exc)


def _call_busy(call: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    # ``retry_busy`` without building a closure per call: the first try is nearly always it.
    try:
        return call(conn)
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
    return retry_busy(lambda: call(conn))


def _read(conn: sqlite3.Connection, call: Callable[[sqlite3.Connection], T]) -> T:
    _call_busy(_begin, conn)
    try:
        return _call_busy(call, conn)
    finally:
        conn.execute("rollback")


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("begin")


def _begin_immediate(conn: sqlite3.Connection) -> None:
    conn.execute("begin immediate")


def _commit_tx(conn: sqlite3.Connection) -> None:
    conn.execute("commit")


class Completions:
    """Hands outcomes from the SQLite threads back to one event loop, in batches.

    A thread queues the outcome, then writes one byte to a pipe the loop watches; the loop
    reads every waiting byte and settles every queued outcome, so a burst of outcomes costs one
    wake-up. ``os.write`` releases the GIL, so the loop wakes up to a free interpreter
    (``call_soon_threadsafe`` wakes it while the thread still holds the GIL, and the loop has to
    sleep again until the thread lets go). Where the loop cannot watch a pipe,
    ``call_soon_threadsafe`` is the fallback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        """The event loop the outcomes go to."""
        self._done: deque[tuple[_Request[Any], bool, Any]] = deque()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        try:
            loop.add_reader(self._read_fd, self._drain)
        except NotImplementedError:
            self._close_pipe()
            self._read_fd = self._write_fd = -1

    def settle(self, request: _Request[Any], ok: bool, outcome: Any) -> None:
        """Resolve ``request``'s future on the loop (callable from any thread)."""
        if self._write_fd < 0:
            try:
                self.loop.call_soon_threadsafe(_settle, request, ok, outcome)
            except RuntimeError:
                pass  # the loop has closed; nobody is waiting any more
            return
        self._done.append((request, ok, outcome))
        try:
            os.write(self._write_fd, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop has wake-ups enough to drain the queue

    def _drain(self) -> None:
        # Every outcome is queued before its byte is written, so emptying the queue after
        # reading bytes never leaves behind an outcome whose byte was read.
        try:
            os.read(self._read_fd, 65536)
        except BlockingIOError:
            pass
        done = self._done
        while done:
            _settle(*done.popleft())

    def close(self) -> None:
        """Stop watching the pipe (call on the loop, after the threads have stopped)."""
        if self._read_fd < 0:
            return
        if not self.loop.is_closed():  # on a closed loop nobody is waiting any more
            self.loop.remove_reader(self._read_fd)
            self._drain()
        self._close_pipe()
        self._read_fd = self._write_fd = -1

    def _close_pipe(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


class Writer(_Thread):
    """A thread applying write requests to ``conn`` in group-committed transactions (and
    serving the reads routed to it between them)."""

    def __init__(self, conn: sqlite3.Connection, name: str, completions: Completions) -> None:
        super().__init__(completions)
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name=f"kvshim-sqlite-writer {name}")
        self._thread.daemon = True
        self.stopped = False
        self._thread.start()

    def write(
        self, call: Callable[[sqlite3.Connection], T], future: asyncio.Future[T] | None = None
    ) -> asyncio.Future[T]:
        """Run ``call(conn)`` in the next transaction; ``future`` (a new one if not given)
        resolves after the commit."""
        if self.stopped:
            if future is None:
                future = self._loop.create_future()
            if not future.cancelled():
                future.set_exception(BackendError("the database writer has stopped"))
            return future
        return self.submit(call, WRITE, future)

    async def stop(self) -> None:
        """Finish queued requests, close the connection and join the thread."""
        if not self.stopped:
            self.stopped = True
            self.requests.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        conn, settle = self._conn, self.completions.settle
        get, get_nowait = self.requests.get, self.requests.get_nowait
        running = True
        while running:
            first = get()
            if first is None:
                break
            if first.kind != WRITE:
                settle(first, *_serve_read(conn, first))
                continue
            batch = [first]
            reads: list[_Request[Any]] = []
            while len(batch) < MAX_BATCH:
                try:
                    request = get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    running = False
                    break
                (batch if request.kind == WRITE else reads).append(request)
            self._commit(batch)
            for request in reads:
                settle(request, *_serve_read(conn, request))
        conn.close()

    def _commit(self, batch: list[_Request[Any]]) -> None:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        try:
            _call_busy(_begin_immediate, conn)
            if len(batch) == 1:
                outcomes.append(attempt_alone(conn, batch[0].call))
            else:
                for request in batch:
                    outcomes.append(self._attempt(request))
            if conn.in_transaction:
                _call_busy(_commit_tx, conn)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("rollback")
            failure = as_kv_error(exc)
            outcomes = [(False, failure)] * len(batch)
        settle = self.completions.settle
        for request, (ok, outcome) in zip(batch, outcomes, strict=True):
            settle(request, ok, outcome)

    def _attempt(self, request: _Request[Any]) -> tuple[bool, Any]:
        conn = self._conn
        conn.execute("savepoint request")
        try:
            outcome = request.call(conn)
        except Exception as exc:
            conn.execute("rollback to request")
            conn.execute("release request")
            return False, as_kv_error(exc)
        conn.execute("release request")
        return True, outcome


class _Reader(_Thread):
    """A reader thread with its own connection (opened on its first request)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], completions: Completions):
        super().__init__(completions)
        self._connect = connect
        self.thread = threading.Thread(target=self._run, name="kvshim-sqlite-read")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        settle, get = self.completions.settle, self.requests.get
        try:
            while (request := get()) is not None:
                if conn is None:
                    try:
                        conn = self._connect()
                    except Exception as exc:
                        settle(request, False, as_kv_error(exc))
                        continue
                settle(request, *_serve_read(conn, request))
        finally:
            if conn is not None:
                conn.close()


class ReaderPool:
    """Routes reads: a small read to the writer while it is idle, any other to an idle reader
    thread, started on demand up to ``size``, else to the least busy one."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        completions: Completions,
        writer: Writer,
        size: int = 3,
    ) -> None:
        self._connect = connect
        self._completions = completions
        self._writer = writer
        self._size = size
        self._readers: list[_Reader] = []

    def run(
        self,
        call: Callable[[sqlite3.Connection], T],
        *,
        single_statement: bool = False,
        small: bool = False,
    ) -> asyncio.Future[T]:
        """``call(conn)`` inside one read transaction, on a SQLite thread. A call that runs a
        single statement (and reads all its rows) may say so: it then runs without BEGIN and
        ROLLBACK, since one statement always reads one snapshot. A ``small`` call (a few rows)
        may run on the writer between its transactions when no write waits."""
        kind = READ_ONE if single_statement else READ
        writer = self._writer
        if small and writer.pending == 0 and not writer.stopped:
            return writer.submit(call, kind)
        return self._pick().submit(call, kind)

    def run_one(self, call: Callable[[sqlite3.Connection], T], small: bool) -> asyncio.Future[T]:
        """``run(call, single_statement=True, small=small)``, a little cheaper (the hot path)."""
        writer = self._writer
        if small and writer.pending == 0 and not writer.stopped:
            return writer.submit(call, READ_ONE)
        return self._pick().submit(call, READ_ONE)

    def _pick(self) -> _Reader:
        least: _Reader | None = None
        for reader in self._readers:
            if reader.pending == 0:
                return reader
            if least is None or reader.pending < least.pending:
                least = reader
        if least is None or len(self._readers) < self._size:
            least = _Reader(self._connect, self._completions)
            self._readers.append(least)
        return least

    async def close(self) -> None:
        """Finish queued reads, then stop the threads and close their connections."""
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.requests.put(None)
        for reader in readers:
            await asyncio.to_thread(reader.thread.join)
