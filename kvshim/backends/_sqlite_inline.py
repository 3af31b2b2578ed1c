"""SQLite work that runs right on the event loop's thread, without a thread hand-off.

A point read on a warm file costs SQLite 3–16 µs (more right after another connection's write,
when the pages are read again from the OS cache); handing it to a SQLite thread and back costs
a thread wake-up each way, 20–90 µs on a busy or virtualised machine. So a read of a few rows
runs inline, and so does a lone commit when nothing else is writing (``_sqlite_commits`` says
when), on a connection of the loop's own that never waits for a lock (busy timeout 0): in WAL
mode readers take no lock that a writer holds, and on the rare SQLITE_BUSY (another process
writing or recovering the WAL index, say) the call says so and the caller hands it to a thread.
The price: a read whose few pages are not in the OS cache waits for the disk on the loop, and a
commit waits for its fsync there (and, every 1,000 WAL pages, for SQLite's automatic checkpoint:
left on, since only a checkpoint run right after a commit lets the next one restart the WAL at
its start instead of growing it; one run on another thread, between commits, does not).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from kvshim.backends._sqlite_threads import as_kv_error, attempt_alone, is_busy
from kvshim.errors import BackendError

T = TypeVar("T")


class Busy(Enum):
    """The outcome of a call that met a lock (run it on a thread instead)."""

    BUSY = "busy"


BUSY = Busy.BUSY


class LoopConnection:
    """A connection used only on the event loop's thread (opened on first use)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def read(self, call: Callable[[sqlite3.Connection], T]) -> T | Busy:
        """``call(conn)``, which must run a single statement and fetch all its rows (one
        statement reads one snapshot); ``BUSY`` if the file was locked."""
        try:
            return call(self._conn or self._open())
        except sqlite3.Error as exc:
            return _busy_or_raise(exc)

    def read_snapshot(self, call: Callable[[sqlite3.Connection], T]) -> T | Busy:
        """``call(conn)`` inside one read transaction; ``BUSY`` if the file was locked."""
        try:
            conn = self._conn or self._open()
            try:
                conn.execute("begin")
                return call(conn)
            finally:
                if conn.in_transaction:  # a KeyboardInterrupt too: never keep a transaction
                    conn.execute("rollback")
        except sqlite3.Error as exc:
            return _busy_or_raise(exc)

    def commit(self, call: Callable[[sqlite3.Connection], Any]) -> tuple[bool, Any] | Busy:
        """``call(conn)`` in a write transaction of its own, committed and fsynced before this
        returns ``(True, result)``; ``(False, error)`` if it failed (nothing is written);
        ``BUSY``, having done nothing, if the transaction could not start here (another
        connection holds the write lock, say: the writer's connection is left to decide)."""
        conn, started = self._conn, False
        try:
            conn = conn or self._open()
            conn.execute("begin immediate")
            started = True
            ok, outcome = attempt_alone(conn, call)
            if ok:
                conn.execute("commit")
            return ok, outcome
        except BaseException as exc:
            if conn is not None and conn.in_transaction:
                conn.execute("rollback")  # a KeyboardInterrupt too: never keep the write lock
            if not started and isinstance(exc, sqlite3.Error | BackendError):
                return BUSY
            if not isinstance(exc, sqlite3.Error):
                raise
            return BUSY if is_busy(exc) else (False, as_kv_error(exc))

    def close(self) -> None:
        """Close the connection (it is opened again if used after this)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open(self) -> sqlite3.Connection:
        # Raises BackendError if the file cannot be opened, sqlite3.Error (BUSY, say) if the
        # pragma fails. mode=rw: never creates a file that has gone missing. No journal_mode
        # pragma: WAL is a property of the file, set by the writer's connection.
        uri = Path(self._path).absolute().as_uri() + "?mode=rw"
        try:
            conn = sqlite3.connect(uri, timeout=0, isolation_level=None, uri=True)
        except sqlite3.Error as exc:
            raise BackendError(f"unable to open database file: {self._path}") from exc
        try:
            conn.execute("pragma synchronous = full")  # a returned commit survives power loss
        except sqlite3.Error:
            conn.close()
            raise
        self._conn = conn
        return conn


def _busy_or_raise(exc: sqlite3.Error) -> Busy:
    if is_busy(exc):
        return BUSY
    raise as_kv_error(exc) from exc
