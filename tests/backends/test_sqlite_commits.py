"""Where the SQLite backend commits: a lone write on the event loop's own connection, a group
of writes (or a write that finds the file locked, or any write after a slow commit) on the
writer thread. See kvshim/backends/_sqlite_commits.py.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import kvshim
from kvshim.backends import _sqlite_commits as commits
from kvshim.backends import sqlite as sqlite_backend
from kvshim.backends import sqlite_store

TIMEOUT = 10.0


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[kvshim.Kv]:
    handle = await kvshim.open_kv(tmp_path / "kv.sqlite3")
    await _writer_idle(_path(tmp_path))
    yield handle
    if not handle.closed:
        await handle.close()


def _db(path: Path) -> sqlite_backend.SharedDatabase:
    return sqlite_backend._registry[(os.path.realpath(path), id(asyncio.get_running_loop()))]


def _path(tmp_path: Path) -> Path:
    return tmp_path / "kv.sqlite3"


async def _writer_idle(path: Path) -> None:
    """Wait until the writer thread has committed everything sent to it so far (the expiry
    sweep at opening, say): then the next lone write may commit on the loop."""
    db = _db(path)
    for _ in range(10):  # the sweep may be issued after the first no-op: then wait again
        # to the thread, which commits in order: this one comes after all issued before it
        await db.writes.write(lambda conn: None, small=False)
        if db.writer.pending == 0:
            return
    raise AssertionError("the writer thread stays busy")


class _Clock:
    """A clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _timed_by(db: sqlite_backend.SharedDatabase) -> _Clock:
    """Have ``db``'s writes timed by a clock of the test's: commits then take as long as the
    test says, whatever the machine is doing."""
    clock = _Clock()
    db.writes = commits.WriteRouter(db.writer, db.inline, clock)
    return clock


def _insert(
    key: bytes, ran_on: list[int], *, clock: _Clock | None = None, takes: float = 0.0
) -> Callable[..., Any]:
    """A write storing ``key`` that records the thread it ran on (and, on ``clock``, takes
    ``takes`` seconds)."""

    def call(conn: sqlite3.Connection) -> int:
        ran_on.append(threading.get_ident())
        if clock is not None:
            clock.now += takes
        conn.execute("insert into kv (k, v, v_encoding, version) values (?, x'00', 2, 1)", (key,))
        return len(key)

    return call


def _stored(path: Path) -> set[bytes]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("select k from kv")}
    finally:
        conn.close()


async def test_a_lone_write_commits_on_the_event_loop(kv: kvshim.Kv, tmp_path: Path) -> None:
    ran_on: list[int] = []
    assert await _db(_path(tmp_path)).writes.write(_insert(b"a", ran_on)) == 1
    assert ran_on == [threading.get_ident()]
    assert _stored(_path(tmp_path)) == {b"a"}  # committed: another connection sees it


async def test_a_write_of_any_number_of_rows_never_commits_on_the_loop(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    ran_on: list[int] = []
    await _db(_path(tmp_path)).writes.write(_insert(b"big", ran_on), small=False)
    assert ran_on != [threading.get_ident()]
    assert _stored(_path(tmp_path)) == {b"big"}


async def test_the_loop_connection_commits_durably(kv: kvshim.Kv, tmp_path: Path) -> None:
    db = _db(_path(tmp_path))
    assert db.inline.read(lambda c: c.execute("pragma synchronous").fetchone()) == (2,)  # FULL


async def test_writes_of_one_pass_share_a_transaction_on_the_writer_thread(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    ran_on: list[int] = []
    db = _db(_path(tmp_path))
    writes = [db.writes.write(_insert(bytes([65 + i]), ran_on)) for i in range(5)]
    assert await asyncio.gather(*writes) == [1] * 5
    assert len(set(ran_on)) == 1 and ran_on[0] != threading.get_ident()
    assert _stored(_path(tmp_path)) == {b"A", b"B", b"C", b"D", b"E"}


async def test_a_failing_lone_write_leaves_nothing_behind(kv: kvshim.Kv, tmp_path: Path) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("insert into kv (k, v, v_encoding, version) values (x'01', x'00', 2, 1)")
        raise kvshim.KvTypeError("no")

    with pytest.raises(kvshim.KvTypeError, match="no"):
        await _db(_path(tmp_path)).writes.write(half_then_fail)
    assert _stored(_path(tmp_path)) == set()
    await kv.set(["after"], 1)  # the loop's connection is usable again
    assert (await kv.get(["after"])).value == 1


async def test_a_write_waits_on_the_thread_while_another_connection_holds_the_lock(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    ran_on: list[int] = []
    other = sqlite3.connect(_path(tmp_path), isolation_level=None)
    try:
        other.execute("begin immediate")
        write = asyncio.ensure_future(_db(_path(tmp_path)).writes.write(_insert(b"w", ran_on)))
        started = time.monotonic()
        await asyncio.sleep(0.3)
        # the loop was not held up by the lock (waiting for it would take the busy timeout)
        assert time.monotonic() - started < 0.3 + sqlite_store.BUSY_TIMEOUT_S / 2
        assert not write.done() and _db(_path(tmp_path)).writer.pending == 1  # on the thread
        other.execute("commit")
    finally:
        other.close()
    assert await asyncio.wait_for(write, TIMEOUT) == 1
    assert ran_on[-1] != threading.get_ident()
    assert _stored(_path(tmp_path)) == {b"w"}


async def test_one_slow_commit_keeps_commits_on_the_loop(kv: kvshim.Kv, tmp_path: Path) -> None:
    db, ran_on, loop_thread = _db(_path(tmp_path)), [], threading.get_ident()
    clock = _timed_by(db)
    slow = 10 * commits.INLINE_COMMIT_BUDGET_S
    await db.writes.write(_insert(b"slow", ran_on, clock=clock, takes=slow))
    await db.writes.write(_insert(b"next", ran_on))
    assert ran_on == [loop_thread, loop_thread]


async def test_after_slow_commits_writes_leave_the_loop_for_a_while(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    db, ran_on, loop_thread = _db(_path(tmp_path)), [], threading.get_ident()
    clock = _timed_by(db)
    slow = 10 * commits.INLINE_COMMIT_BUDGET_S
    for i in range(4):
        await db.writes.write(_insert(b"%d" % i, ran_on, clock=clock, takes=slow))
    # the first three ran on the loop: from an average of zero, three slow ones were too many
    assert ran_on == [loop_thread] * 3 + [ran_on[3]] and ran_on[3] != loop_thread
    clock.now += commits.INLINE_PAUSE_S / 2
    await db.writes.write(_insert(b"paused", ran_on))
    assert ran_on[-1] != loop_thread  # still paused
    clock.now += commits.INLINE_PAUSE_S / 2
    await db.writes.write(_insert(b"later", ran_on))
    assert ran_on[-1] == loop_thread  # tried on the loop again, after the pause
    await db.writes.write(_insert(b"again", ran_on))
    assert ran_on[-1] == loop_thread  # that fast one started the average afresh
    assert len(_stored(_path(tmp_path))) == len(ran_on)


async def test_a_write_issued_as_the_database_closes_still_commits(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    ran_on: list[int] = []
    write = _db(_path(tmp_path)).writes.write(_insert(b"last", ran_on))
    await kv.close()
    assert await asyncio.wait_for(write, TIMEOUT) == 4
    assert _stored(_path(tmp_path)) == {b"last"}


async def test_the_wal_stays_bounded_under_lone_commits(kv: kvshim.Kv, tmp_path: Path) -> None:
    for i in range(1500):  # ~3,000 WAL pages: three automatic checkpoints
        await kv.set(["n"], i)
    wal = os.path.getsize(f"{_path(tmp_path)}-wal")
    assert wal < 6 * 1024 * 1024, wal  # without a checkpoint it would hold ~3,000 pages


async def test_an_interrupted_lone_write_releases_the_write_lock(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    def interrupted(conn: sqlite3.Connection) -> None:
        conn.execute("insert into kv (k, v, v_encoding, version) values (x'01', x'00', 2, 1)")
        raise KeyboardInterrupt

    db = _db(_path(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        db.inline.commit(interrupted)
    other = sqlite3.connect(_path(tmp_path), isolation_level=None, timeout=0)
    try:
        other.execute("begin immediate")  # the lock is free again
        other.execute("rollback")
    finally:
        other.close()
    assert _stored(_path(tmp_path)) == set()
    await kv.set(["after"], 1)
    assert (await kv.get(["after"])).value == 1


async def test_a_write_after_a_change_of_directory_goes_to_the_file_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    for folder in (here, elsewhere):
        folder.mkdir()
        monkeypatch.chdir(folder)
        async with await kvshim.open_kv("kv.sqlite3") as other:
            await other.delete(["-"])
    monkeypatch.chdir(here)
    async with await kvshim.open_kv("kv.sqlite3") as kv:
        await _writer_idle(here / "kv.sqlite3")  # the next write is a lone one, on the loop
        monkeypatch.chdir(elsewhere)
        await kv.set(["k"], 1)
        assert (await kv.get(["k"])).value == 1
    assert _stored(here / "kv.sqlite3") == {b"\x02k\x00"}
    assert _stored(elsewhere / "kv.sqlite3") == set()


async def test_a_commit_interrupted_on_the_loop_still_answers_its_caller(
    kv: kvshim.Kv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, ran_on = _db(_path(tmp_path)), []
    loop_errors: list[BaseException] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _, context: loop_errors.append(context["exception"])
    )
    real_commit = db.inline.commit

    def commit_then_fail(call: Any) -> Any:
        real_commit(call)
        raise RuntimeError("after the fsync")

    monkeypatch.setattr(db.writes._conn, "commit", commit_then_fail)
    with pytest.raises(kvshim.BackendError, match="interrupted: it may have been applied"):
        await asyncio.wait_for(db.writes.write(_insert(b"k", ran_on)), TIMEOUT)
    assert [str(e) for e in loop_errors] == ["after the fsync"]
    assert _stored(_path(tmp_path)) == {b"k"}


class _InterruptedAfterBegin(sqlite3.Connection):
    """A connection on which a KeyboardInterrupt arrives right after a BEGIN has run."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = super().execute(sql, *args)
        if sql == "begin":
            raise KeyboardInterrupt
        return cursor


async def test_a_read_interrupted_after_its_begin_leaves_no_transaction_open(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    db, ran_on = _db(_path(tmp_path)), []
    db.inline.close()
    db.inline._conn = conn = sqlite3.connect(
        _path(tmp_path), isolation_level=None, timeout=0, factory=_InterruptedAfterBegin
    )
    with pytest.raises(KeyboardInterrupt):
        db.inline.read_snapshot(lambda c: c.execute("select 1").fetchone())
    assert not conn.in_transaction
    await db.writes.write(_insert(b"k", ran_on))
    assert ran_on == [threading.get_ident()]  # the loop's connection can still commit


async def test_a_write_failing_after_sqlite_rolled_back_reports_its_own_error(
    kv: kvshim.Kv, tmp_path: Path
) -> None:
    def rolled_back_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("rollback")  # as SQLite does by itself after SQLITE_FULL or an I/O error
        raise kvshim.KvTypeError("the write's own error")

    with pytest.raises(kvshim.KvTypeError, match="the write's own error"):
        await _db(_path(tmp_path)).writes.write(rolled_back_then_fail)
