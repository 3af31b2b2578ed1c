"""The threads that run SQLite for the event loop: one group-committing writer, a reader pool.

The writer owns the only write connection of its database in this process. It takes every
request waiting in its queue, runs each in its own SAVEPOINT of ONE ``BEGIN IMMEDIATE``
transaction (a request that raises is rolled back alone; a request alone in its batch needs no
savepoint: the transaction is rolled back), commits once, and only then resolves the requests'
futures: concurrent writers share one fsync. Readers run each call in one read transaction,
which WAL turns into a consistent snapshot (a call of a single statement runs without BEGIN:
SQLite gives one statement its own snapshot). Results go back to the event loop through
``Completions``.
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
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from kvshim.errors import BackendError, KvError

T = TypeVar("T")

MAX_BATCH = 512
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_BUSY_RETRIES = 200


def retry_busy(step: Callable[[], T]) -> T:
    """Run ``step``, retrying with a 5–20 ms random sleep while the file is locked (on top of
    the connection's busy timeout), so SQLITE_BUSY never reaches the caller."""
    for _ in range(_BUSY_RETRIES):
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _BUSY_CODES:
                raise
            time.sleep(random.uniform(0.005, 0.02))
    return step()


def _as_kv_error(exc: BaseException) -> BaseException:
    if isinstance(exc, KvError) or not isinstance(exc, sqlite3.Error):
        return exc
    return BackendError(f"SQLite error: {exc}")


@dataclass(slots=True)
class _Request(Generic[T]):
    call: Callable[[sqlite3.Connection], T]
    future: asyncio.Future[T]
    single_statement: bool = False


def _settle(future: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(outcome)
    else:
        future.set_exception(outcome)


class Completions:
    """Hands outcomes from the SQLite threads back to one event loop, in batches.

    A thread queues the outcome, then writes one byte to a pipe the loop watches; the loop
    reads every waiting byte and settles every queued outcome, so a burst of outcomes costs one
    wake-up. ``os.write`` releases the GIL, so the loop wakes up to a free interpreter
    (``call_soon_threadsafe`` wakes it while the thread still holds the GIL, and the loop has to
    sleep again until the thread lets go). Where the loop cannot watch a pipe,
    ``call_soon_threadsafe`` is the fallback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._done: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        try:
            loop.add_reader(self._read_fd, self._drain)
        except NotImplementedError:
            self._close_pipe()
            self._read_fd = self._write_fd = -1

    def settle(self, future: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
        """Resolve ``future`` on the loop (callable from any thread)."""
        if self._write_fd < 0:
            try:
                self._loop.call_soon_threadsafe(_settle, future, ok, outcome)
            except RuntimeError:
                pass  # the loop has closed; nobody is waiting any more
            return
        self._done.append((future, ok, outcome))
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
        if not self._loop.is_closed():  # on a closed loop nobody is waiting any more
            self._loop.remove_reader(self._read_fd)
            self._drain()
        self._close_pipe()
        self._read_fd = self._write_fd = -1

    def _close_pipe(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


class Writer:
    """A thread applying write requests to ``conn`` in group-committed transactions."""

    def __init__(self, conn: sqlite3.Connection, name: str, completions: Completions) -> None:
        self._conn = conn
        self._completions = completions
        self._requests: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"kvshim-sqlite-writer {name}")
        self._thread.daemon = True
        self._stopped = False
        self._thread.start()

    def submit(self, call: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``call(conn)`` in the next transaction; the future resolves after the commit."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._stopped:
            future.set_exception(BackendError("the database writer has stopped"))
        else:
            self._requests.put(_Request(call, future))
        return future

    async def stop(self) -> None:
        """Finish queued requests, close the connection and join the thread."""
        if not self._stopped:
            self._stopped = True
            self._requests.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        running = True
        while running:
            first = self._requests.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    request = self._requests.get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    running = False
                    break
                batch.append(request)
            self._commit(batch)
        self._conn.close()

    def _commit(self, batch: list[_Request[Any]]) -> None:
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        try:
            retry_busy(lambda: conn.execute("begin immediate"))
            if len(batch) == 1:
                outcomes.append(self._attempt_alone(batch[0]))
            else:
                for request in batch:
                    outcomes.append(self._attempt(request))
            if conn.in_transaction:
                retry_busy(lambda: conn.execute("commit"))
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("rollback")
            failure = _as_kv_error(exc)
            outcomes = [(False, failure)] * len(batch)
        settle = self._completions.settle
        for request, (ok, outcome) in zip(batch, outcomes, strict=True):
            settle(request.future, ok, outcome)

    def _attempt_alone(self, request: _Request[Any]) -> tuple[bool, Any]:
        # The only request of its transaction: if it fails, rolling the transaction back
        # undoes exactly what a savepoint would have, two statements cheaper.
        try:
            return True, request.call(self._conn)
        except Exception as exc:
            self._conn.execute("rollback")
            return False, _as_kv_error(exc)

    def _attempt(self, request: _Request[Any]) -> tuple[bool, Any]:
        conn = self._conn
        conn.execute("savepoint request")
        try:
            outcome = request.call(conn)
        except Exception as exc:
            conn.execute("rollback to request")
            conn.execute("release request")
            return False, _as_kv_error(exc)
        conn.execute("release request")
        return True, outcome


class ReaderPool:
    """Reader threads, each with its own connection, running each call in one read
    transaction (a consistent WAL snapshot). Threads and connections start on first use."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], completions: Completions, size: int = 3
    ) -> None:
        self._connect = connect
        self._completions = completions
        self._size = size
        self._requests: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    async def run(
        self, call: Callable[[sqlite3.Connection], T], *, single_statement: bool = False
    ) -> T:
        """``call(conn)`` inside one read transaction, on a reader thread. A call that runs a
        single statement (and reads all its rows) may say so: it then runs without BEGIN and
        ROLLBACK, since one statement always reads one snapshot."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            spawn = self._idle == 0 and len(self._threads) < self._size
            if spawn:
                thread = threading.Thread(target=self._serve, name="kvshim-sqlite-read")
                thread.daemon = True
                self._threads.append(thread)
        if spawn:
            thread.start()
        self._requests.put(_Request(call, future, single_statement))
        return await future

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._lock:
                    self._idle += 1
                request = self._requests.get()
                with self._lock:
                    self._idle -= 1
                if request is None:
                    return
                try:
                    if conn is None:
                        conn = self._connect()
                    if request.single_statement:
                        outcome: tuple[bool, Any] = (True, retry_busy(partial(request.call, conn)))
                    else:
                        outcome = (True, _read(conn, request.call))
                except Exception as exc:
                    outcome = (False, _as_kv_error(exc))
                self._completions.settle(request.future, *outcome)
        finally:
            if conn is not None:
                conn.close()

    async def close(self) -> None:
        """Finish queued reads, then stop the threads and close their connections."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._requests.put(None)
        for thread in threads:
            await asyncio.to_thread(thread.join)


def _read(conn: sqlite3.Connection, call: Callable[[sqlite3.Connection], T]) -> T:
    retry_busy(lambda: conn.execute("begin"))
    try:
        return retry_busy(lambda: call(conn))
    finally:
        conn.execute("rollback")
