"""The threads that run SQLite for the event loop: one group-committing writer, a reader pool.

The writer owns the only write connection of its database in this process. It takes every
request waiting in its queue, runs each in its own SAVEPOINT of ONE ``BEGIN IMMEDIATE``
transaction (a request that raises is rolled back alone), commits once, and only then resolves
the requests' futures: concurrent writers share one fsync. Readers run each call in one read
transaction, which WAL turns into a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(outcome)
    else:
        future.set_exception(outcome)


class Writer:
    """A thread applying write requests to ``conn`` in group-committed transactions."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self._requests: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"kvshim-sqlite-writer {name}")
        self._thread.daemon = True
        self._stopped = False
        self._thread.start()

    def submit(self, call: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``call(conn)`` in the next transaction; the future resolves after the commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._stopped:
            future.set_exception(BackendError("the database writer has stopped"))
        else:
            self._requests.put(_Request(call, future, loop))
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
            for request in batch:
                outcomes.append(self._attempt(request))
            retry_busy(lambda: conn.execute("commit"))
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("rollback")
            failure = _as_kv_error(exc)
            outcomes = [(False, failure)] * len(batch)
        for request, (ok, outcome) in zip(batch, outcomes, strict=True):
            try:
                request.loop.call_soon_threadsafe(_settle, request.future, ok, outcome)
            except RuntimeError:
                pass  # the caller's event loop has closed; nobody is waiting any more

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

    def __init__(self, connect: Callable[[], sqlite3.Connection], size: int = 3) -> None:
        self._connect = connect
        self._size = size
        self._requests: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    async def run(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """``call(conn)`` inside one read transaction, on a reader thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            spawn = self._idle == 0 and len(self._threads) < self._size
            if spawn:
                thread = threading.Thread(target=self._serve, name="kvshim-sqlite-read")
                thread.daemon = True
                self._threads.append(thread)
        if spawn:
            thread.start()
        self._requests.put(_Request(call, future, loop))
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
                    outcome: tuple[bool, Any] = (True, _read(conn, request.call))
                except Exception as exc:
                    outcome = (False, _as_kv_error(exc))
                try:
                    request.loop.call_soon_threadsafe(_settle, request.future, *outcome)
                except RuntimeError:
                    pass  # the caller's event loop has closed
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
