"""Where each write to one SQLite file commits: on the event loop's own connection, or on the
writer thread.

A commit waits for its fsync wherever it runs; what differs is the hand-off. Sending a write to
the writer thread and back costs two thread wake-ups (on a virtualised machine ~80 µs of CPU and
more of latency), which a lone write pays in full and a group of writes shares. So the writes
issued in one pass of the event loop are collected, and when the pass ends:

- a lone write, with the writer thread idle, commits right there on the loop's connection
  (``LoopConnection.commit``), which never waits for a lock: if the file is locked, the write
  goes to the thread after all. Only a small write does (an atomic write, bounded by Deno's
  limits, or a queue step); one that may touch any number of rows (an import, an expiry
  sweep) says so and always goes to the thread;
- a group goes to the writer thread, where the writes share one transaction and one fsync while
  the loop goes on serving.

Writes commit in the order they were issued: one commits on the loop only when the thread has
nothing left to commit.

A commit on the loop holds the loop up for its fsync. While commits there take longer than
``INLINE_COMMIT_BUDGET_S`` on average (a slow or busy disk), writes go to the thread, and one is
tried on the loop again every ``INLINE_PAUSE_S``; that one's time starts the average afresh. The
average is a moving one, over about the last eight commits, each counted at most as four
budgets: from commits well within the budget, one slow fsync (or the automatic checkpoint every
1,000 WAL pages) does not send commits away, and three in a row do.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kvshim.backends._sqlite_inline import BUSY, LoopConnection
from kvshim.backends._sqlite_threads import Writer
from kvshim.errors import BackendError

T = TypeVar("T")

INLINE_COMMIT_BUDGET_S = 0.002
"""How long commits on the event loop may take on average before they leave the loop."""
INLINE_PAUSE_S = 1.0
"""How long writes go to the writer thread once commits on the loop have been too slow."""
_WEIGHT = 1 / 8  # of the latest commit in the moving average
_LONGEST = 4 * INLINE_COMMIT_BUDGET_S  # the most one commit counts in the average

_Pending = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", bool]


class WriteRouter:
    """Commits the writes of one SQLite file, each where it costs least (see the module)."""

    def __init__(
        self, writer: Writer, conn: LoopConnection, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        """``clock`` (seconds) times the commits on the loop."""
        self._writer = writer
        self._clock = clock
        self._conn = conn
        self._loop = writer.completions.loop
        self._pass: list[_Pending] = []
        self._inline_after = 0.0
        self._paused = False
        self._average_s = 0.0
        self._closed = False

    def write(
        self, call: Callable[[sqlite3.Connection], T], *, small: bool = True
    ) -> asyncio.Future[T]:
        """Run ``call(conn)`` in a write transaction; the future resolves after its commit. A
        write that may touch many rows says ``small=False``: it never holds up the loop."""
        if self._closed:
            return self._writer.write(call)
        future: asyncio.Future[T] = self._loop.create_future()
        if not self._pass:
            self._loop.call_soon(self._end_of_pass)
        self._pass.append((call, future, small))
        return future

    def close(self) -> None:
        """Send the writes still waiting for the end of the pass to the writer thread, and
        every later one too (call before stopping the writer)."""
        self._closed = True
        self._to_thread(self._take_pass())

    def _take_pass(self) -> list[_Pending]:
        batch, self._pass = self._pass, []
        return batch

    def _end_of_pass(self) -> None:
        batch = self._take_pass()
        if len(batch) == 1 and batch[0][2] and self._may_commit_here():
            call, future, _ = batch[0]
            if self._commit_here(call, future):
                return
        self._to_thread(batch)

    def _may_commit_here(self) -> bool:
        writer = self._writer
        # (After close() no pass is collected: every write goes straight to the thread.)
        return (
            writer.pending == 0
            and not writer.stopped
            and (not self._paused or self._clock() >= self._inline_after)
        )

    def _commit_here(
        self, call: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]
    ) -> bool:
        started = self._clock()
        try:
            outcome = self._conn.commit(call)
        except BaseException as exc:  # a KeyboardInterrupt during the fsync, say
            if not future.done():
                interrupted = BackendError("the commit was interrupted: it may have been applied")
                interrupted.__cause__ = exc
                future.set_exception(interrupted)
            raise
        if outcome is BUSY:
            return False
        self._measure(min(self._clock() - started, _LONGEST))
        ok, result = outcome
        if not future.cancelled():
            if ok:
                future.set_result(result)
            else:
                future.set_exception(result)
        return True

    def _measure(self, took: float) -> None:
        if self._paused:  # the first commit after a pause: the disk may have recovered
            self._paused, self._average_s = False, took
        else:
            self._average_s += (took - self._average_s) * _WEIGHT
        if self._average_s > INLINE_COMMIT_BUDGET_S:
            self._paused, self._inline_after = True, self._clock() + INLINE_PAUSE_S

    def _to_thread(self, batch: list[_Pending]) -> None:
        for call, future, _ in batch:
            self._writer.write(call, future)
