"""Small SQLite reads run right on the event loop's thread, without a thread hand-off.

A point read on a warm file costs SQLite 3–16 µs (more right after another connection's write,
when the pages are read again from the OS cache); handing it to a SQLite thread and back costs
a thread wake-up each way, 20–90 µs on a busy or virtualised machine. So a read of a few rows
runs inline, on a connection of its own that never waits for a lock (busy timeout 0): in WAL
mode readers take no lock that a writer holds, and on the rare SQLITE_BUSY (another process
recovering the WAL index, say) the read says so and the caller hands it to a thread as before.
The price: a read whose few pages are not in the OS cache waits for the disk on the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TypeVar

from kvshim.backends._sqlite_threads import as_kv_error, is_busy
from kvshim.errors import BackendError

T = TypeVar("T")


class Busy(Enum):
    """The outcome of a read that met a lock (run it on a thread instead)."""

    BUSY = "busy"


BUSY = Busy.BUSY


class LoopReader:
    """A read connection used only on the event loop's thread (opened on first use)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def read(self, call: Callable[[sqlite3.Connection], T]) -> T | Busy:
        """``call(conn)``, which must run a single statement and fetch all its rows (one
        statement reads one snapshot); ``BUSY`` if the file was locked."""
        conn = self._conn or self._open()
        try:
            return call(conn)
        except sqlite3.Error as exc:
            return _busy_or_raise(exc)

    def read_snapshot(self, call: Callable[[sqlite3.Connection], T]) -> T | Busy:
        """``call(conn)`` inside one read transaction; ``BUSY`` if the file was locked."""
        conn = self._conn or self._open()
        try:
            conn.execute("begin")
            try:
                return call(conn)
            finally:
                conn.execute("rollback")
        except sqlite3.Error as exc:
            return _busy_or_raise(exc)

    def close(self) -> None:
        """Close the connection (it is opened again if used after this)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open(self) -> sqlite3.Connection:
        # Read-only, so it can neither write nor create a file that has gone missing; no
        # pragmas: WAL mode is a property of the file, set by the writer's connection.
        uri = Path(self._path).absolute().as_uri() + "?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, timeout=0, isolation_level=None, uri=True)
        except sqlite3.Error as exc:
            raise BackendError(f"unable to open database file: {self._path}") from exc
        return self._conn


def _busy_or_raise(exc: sqlite3.Error) -> Busy:
    if is_busy(exc):
        return BUSY
    raise as_kv_error(exc) from exc
