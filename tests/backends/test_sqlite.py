"""The SQLite backend beyond the conformance suite: persistence, Deno file compatibility,
crash safety, several processes on one file, and queue leases.

Spec: deno-kv-semantics.md §7, §9.3, §10.3, §10.4; kv-connect.md §7.4.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import kvshim
from kvshim import BigInt, KvU64
from kvshim.backends import sqlite as sqlite_backend
from kvshim.backends._sqlite_inline import BUSY, LoopConnection
from kvshim.backends._sqlite_threads import is_busy
from kvshim.runtime.deno import locate_deno

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("sqlite_worker.py")
DENO_SCRIPT = ROOT / "tests" / "deno" / "kv_file.ts"
TIMEOUT = 10.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@contextmanager
def _worker(mode: str, path: Path, arg: str = "") -> Iterator[subprocess.Popen[str]]:
    """A worker process (see sqlite_worker.py), SIGKILLed on exit if still running."""
    process = subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(path), arg],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


async def _line(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout)
    assert line, f"worker exited early with {process.poll()}"
    return line.strip()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "kv.sqlite3"


@pytest.fixture
async def kv(db_path: Path) -> AsyncIterator[kvshim.Kv]:
    handle = await kvshim.open_kv(db_path)
    yield handle
    if not handle.closed:
        await handle.close()


# --- opening and persistence -------------------------------------------------------------


@pytest.mark.parametrize("where", ["missing-parent", "directory"])
async def test_unopenable_paths(tmp_path: Path, where: str) -> None:
    path = str(tmp_path / "no" / "such" / "db") if where == "missing-parent" else str(tmp_path)
    with pytest.raises(kvshim.BackendError) as raised:
        await kvshim.open_kv(path)
    assert str(raised.value) == f"unable to open database file: {path}"
    assert not (tmp_path / "no").exists()


async def test_sqlite_url(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite3"
    async with await kvshim.open_kv(f"sqlite:{path}") as kv:
        await kv.set(["k"], 1)
    async with await kvshim.open_kv(path) as kv:
        assert (await kv.get(["k"])).value == 1


async def test_reopen_keeps_data_and_versions(db_path: Path) -> None:
    async with await kvshim.open_kv(db_path) as kv:
        first = await kv.set(["a"], {"x": [1, 2]})
        await kv.set(["u"], KvU64(7))
        await kv.set(["b"], b"\x00\x01")
    async with await kvshim.open_kv(db_path) as kv:
        assert (await kv.get(["a"])).value == {"x": [1, 2]}
        assert (await kv.get(["u"])).value == KvU64(7)
        assert (await kv.get(["b"])).value == b"\x00\x01"
        later = await kv.set(["a"], 2)
    assert later.versionstamp > first.versionstamp


async def test_handles_on_one_file_share_watches(db_path: Path) -> None:
    async with await kvshim.open_kv(db_path) as a, await kvshim.open_kv(db_path) as b:
        stream = aiter(a.watch([["k"]]))
        assert (await asyncio.wait_for(anext(stream), TIMEOUT))[0].value is None
        await b.set(["k"], "v")
        assert (await asyncio.wait_for(anext(stream), TIMEOUT))[0].value == "v"
        await stream.aclose()


async def test_group_commit_isolates_a_failing_write(kv: kvshim.Kv) -> None:
    await kv.set(["s"], "not a u64")
    good = [kv.atomic().set(["g", i], i).commit() for i in range(20)]
    bad = kv.atomic().set(["x"], 1).sum(["s"], KvU64(1)).commit()
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert isinstance(results[-1], kvshim.KvTypeError)
    assert all(r.ok for r in results[:-1])
    assert (await kv.get(["x"])).value is None
    assert len([e async for e in kv.list(prefix=["g"])]) == 20


async def test_expiry_sweep_notifies_watchers(kv: kvshim.Kv, db_path: Path) -> None:
    await kv.set(["t"], 1, expire_in=300)
    stream = aiter(kv.watch([["t"]]))
    assert (await asyncio.wait_for(anext(stream), TIMEOUT))[0].value == 1
    assert (await asyncio.wait_for(anext(stream), TIMEOUT))[0].value is None
    await stream.aclose()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("select count(*) from kv").fetchone() == (0,)
    raw.close()


async def test_delayed_message_survives_reopen(db_path: Path) -> None:
    async with await kvshim.open_kv(db_path) as kv:
        await kv.enqueue("later", delay=300)
    got: asyncio.Queue[Any] = asyncio.Queue()
    async with await kvshim.open_kv(db_path) as kv:
        listener = asyncio.create_task(kv.listen_queue(got.put_nowait))
        assert await asyncio.wait_for(got.get(), TIMEOUT) == "later"
    await asyncio.wait_for(listener, TIMEOUT)


async def test_long_handler_is_not_delivered_twice(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "LEASE_MS", 300)
    monkeypatch.setattr(sqlite_backend, "HEARTBEAT_S", 0.1)
    deliveries: list[Any] = []

    async def slow(value: Any) -> None:
        deliveries.append(value)
        await asyncio.sleep(1.5)  # five leases

    async with await kvshim.open_kv(db_path) as a, await kvshim.open_kv(db_path) as b:
        listeners = [asyncio.create_task(kv.listen_queue(slow)) for kv in (a, b)]
        await a.enqueue("once")
        await asyncio.sleep(2.0)
    await asyncio.wait_for(asyncio.gather(*listeners), TIMEOUT)
    assert deliveries == ["once"]


# --- small reads on the event loop ---------------------------------------------------------


@contextmanager
def _locked_exclusively(path: Path) -> Iterator[None]:
    """Another connection holding the file in exclusive locking mode: WAL readers get BUSY."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("pragma locking_mode = exclusive")
        conn.execute("begin exclusive")
        conn.execute("commit")
        yield
    finally:
        conn.close()


async def test_loop_reader_says_busy_instead_of_waiting(db_path: Path) -> None:
    async with await kvshim.open_kv(db_path) as kv:
        await kv.set(["k"], 1)
    reader = LoopConnection(str(db_path))
    count = "select count(*) from kv"
    try:
        with _locked_exclusively(db_path):
            started = time.monotonic()
            assert reader.read(lambda c: c.execute(count).fetchone()) is BUSY
            assert reader.read_snapshot(lambda c: c.execute(count).fetchone()) is BUSY
            assert time.monotonic() - started < 0.5
        assert reader.read(lambda c: c.execute(count).fetchone()) == (1,)
        assert reader.read_snapshot(lambda c: c.execute(count).fetchone()) == (1,)
    finally:
        reader.close()


async def test_loop_reader_reports_other_sqlite_errors(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db"
    path.write_bytes(b"this is not a SQLite file" * 100)
    reader = LoopConnection(str(path))
    try:
        with pytest.raises(kvshim.BackendError, match="SQLite error: file is not a database"):
            reader.read(lambda c: c.execute("select 1 from kv").fetchone())
    finally:
        reader.close()


async def test_loop_reader_never_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite3"
    reader = LoopConnection(str(path))
    with pytest.raises(kvshim.BackendError, match="unable to open database file"):
        reader.read(lambda c: c.execute("select 1").fetchone())
    assert not path.exists()


async def test_reads_on_a_path_with_uri_characters(tmp_path: Path) -> None:
    folder = tmp_path / "a b#c?d%e&é"
    folder.mkdir()
    async with await kvshim.open_kv(folder / "kv.sqlite3") as kv:
        await kv.set(["k"], "v")
        assert (await kv.get(["k"])).value == "v"
        assert [e.value for e in await kv.get_many([["k"], ["x"]])] == ["v", None]


class _AlwaysLocked(LoopConnection):
    """A loop connection that always finds the file locked (the rare case, made certain)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.refused = 0

    def read(self, call: Any) -> Any:
        self.refused += 1
        return BUSY

    def read_snapshot(self, call: Any) -> Any:
        self.refused += 1
        return BUSY


async def test_small_reads_go_to_a_thread_when_the_loop_connection_is_locked(
    kv: kvshim.Kv, db_path: Path
) -> None:
    db = sqlite_backend._registry[(os.path.realpath(db_path), id(asyncio.get_running_loop()))]
    db.inline.close()
    db.inline = locked = _AlwaysLocked(str(db_path))
    await kv.set(["a"], 1)
    await kv.set(["b"], 2)
    assert (await kv.get(["a"])).value == 1
    assert [e.value for e in await kv.get_many([["a"], ["b"], ["c"]])] == [1, 2, None]
    assert [e.value async for e in kv.list(prefix=[], limit=5)] == [1, 2]
    assert locked.refused == 3


@pytest.mark.parametrize(
    ("code", "busy"),
    [
        (sqlite3.SQLITE_BUSY, True),
        (sqlite3.SQLITE_LOCKED, True),
        (261, True),  # SQLITE_BUSY_RECOVERY
        (517, True),  # SQLITE_BUSY_SNAPSHOT
        (262, True),  # SQLITE_LOCKED_SHAREDCACHE
        (sqlite3.SQLITE_CORRUPT, False),
        (sqlite3.SQLITE_IOERR | (10 << 8), False),  # SQLITE_IOERR_FSYNC
    ],
)
def test_busy_codes_include_extended_ones(code: int, busy: bool) -> None:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = code
    assert is_busy(error) is busy


# --- queue details -------------------------------------------------------------------------


async def test_backoff_intervals_are_stored_truncated_as_deno_does(
    kv: kvshim.Kv, db_path: Path
) -> None:
    await kv.enqueue(1, delay=100_000, backoff_schedule=[50.5, 50.7, 51.5, 0.4, 2.5])
    conn = sqlite3.connect(db_path)
    try:
        (schedule,) = conn.execute("select backoff_schedule from queue").fetchone()
    finally:
        conn.close()
    assert schedule == "[50,50,51,0,2]"  # what Deno 2.9.8 writes for the same schedule


async def test_cancelling_a_listener_right_after_an_enqueue_cancels_it(kv: kvshim.Kv) -> None:
    received: list[Any] = []
    for attempt in range(5):
        task = asyncio.create_task(kv.listen_queue(received.append))
        await asyncio.sleep(0)  # the listener is just starting to wait for the queue
        await kv.enqueue(attempt)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, TIMEOUT)


# --- other processes ---------------------------------------------------------------------


@pytest.mark.parametrize("at_once", [1, 8], ids=["on-the-loop", "grouped-on-the-thread"])
async def test_sigkill_loses_no_returned_write(db_path: Path, at_once: int) -> None:
    async with await kvshim.open_kv(db_path):
        pass  # create the file before the storm
    returned: dict[int, str] = {}
    with _worker("storm", db_path, str(at_once)) as process:
        while len(returned) < 400:
            n, stamp = (await _line(process)).split()
            returned[int(n)] = stamp
    assert process.returncode == -signal.SIGKILL
    async with await kvshim.open_kv(db_path) as kv:
        a = {e.key[1]: e async for e in kv.list(prefix=["a"])}
        b = {e.key[1]: e async for e in kv.list(prefix=["b"])}
    assert set(returned) <= set(a)
    assert a.keys() == b.keys()  # never half of an atomic write
    for n, entry in a.items():
        assert entry.value == n == b[n].value
        assert entry.versionstamp == b[n].versionstamp
        if n in returned:
            assert entry.versionstamp == returned[n]


async def _increments(db_path: Path, each: int) -> None:
    async with await kvshim.open_kv(db_path) as kv:
        await kv.set(["counter"], 0)
    with ExitStack() as stack:
        workers = [stack.enter_context(_worker("increment", db_path, str(each))) for _ in "ab"]
        for w in workers:
            assert await _line(w) == "ready"
        for w in workers:
            assert await _line(w, timeout=100) == "done"
    async with await kvshim.open_kv(db_path) as kv:
        assert (await kv.get(["counter"])).value == 2 * each


async def test_two_processes_thousand_optimistic_increments_each(db_path: Path) -> None:
    await _increments(db_path, 1000)


async def test_watch_sees_other_process_write(kv: kvshim.Kv, db_path: Path) -> None:
    stream = aiter(kv.watch([["x"]]))
    assert (await asyncio.wait_for(anext(stream), TIMEOUT))[0].value is None
    with _worker("set", db_path, "from-afar") as process:
        await _line(process)
        written = time.monotonic()
        entry = (await asyncio.wait_for(anext(stream), TIMEOUT))[0]
    assert entry.value == "from-afar"
    assert time.monotonic() - written < 1.0
    await stream.aclose()


async def test_listener_picks_up_other_process_enqueue(kv: kvshim.Kv, db_path: Path) -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()
    listener = asyncio.create_task(kv.listen_queue(got.put_nowait))
    await asyncio.sleep(0.1)
    with _worker("enqueue", db_path, "hello") as process:
        await _line(process)
        enqueued = time.monotonic()
        assert await asyncio.wait_for(got.get(), TIMEOUT) == "hello"
    assert time.monotonic() - enqueued < 1.0
    await kv.close()
    await asyncio.wait_for(listener, TIMEOUT)


async def test_message_of_a_killed_process_is_redelivered(db_path: Path) -> None:
    async with await kvshim.open_kv(db_path) as kv:
        await kv.enqueue("work")
    with _worker("hold", db_path) as process:
        assert await _line(process) == "got work"
    got: asyncio.Queue[Any] = asyncio.Queue()
    async with await kvshim.open_kv(db_path) as kv:
        listener = asyncio.create_task(kv.listen_queue(got.put_nowait))
        assert await asyncio.wait_for(got.get(), TIMEOUT) == "work"
    await asyncio.wait_for(listener, TIMEOUT)


# --- file compatibility with Deno --------------------------------------------------------


@pytest.fixture
def run_deno(tmp_path: Path) -> Iterator[Any]:
    binary = locate_deno()
    if binary is None:
        pytest.skip("the deno binary is not installed (pip install deno)")
    env = {**os.environ, "DENO_DIR": str(tmp_path / "deno_dir"), "DENO_NO_UPDATE_CHECK": "1"}

    def run(mode: str, path: Path) -> Any:
        command = [binary, "run", "-A", "--unstable-kv", str(DENO_SCRIPT), mode, str(path)]
        done = subprocess.run(command, env=env, timeout=120, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    yield run


DENO_WRITES: dict[tuple[Any, ...], Any] = {
    ("deno", "str"): "héllo ✓",
    ("deno", "num"): 1.5,
    ("deno", "int"): -42,
    ("deno", "obj"): {"a": [1, "two", None, True], "b": {"c": 3}},
    ("deno", "u64"): KvU64(2**64 - 1),
    ("deno", "bytes"): b"\x00\x01\xff",
    ("deno", "big"): BigInt(12345678901234567890),
    ("deno", "date"): datetime.fromtimestamp(1_700_000_000, UTC),
    ("deno", 7, True): None,
}


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as raw:
        rows = raw.execute("select type, name, sql from sqlite_master order by name").fetchall()
    raw.close()
    return rows


@pytest.mark.deno
async def test_kvshim_reads_what_deno_wrote(tmp_path: Path, run_deno: Any) -> None:
    path = tmp_path / "deno.sqlite3"
    stamp = run_deno("write", path)["versionstamp"]
    async with await kvshim.open_kv(path) as kv:
        entries = [e async for e in kv.list(prefix=[])]
        assert {tuple(e.key): e.value for e in entries} == DENO_WRITES
        assert {e.versionstamp for e in entries} == {stamp}
        mine = await kv.set(["py"], "after")
    assert mine.versionstamp > stamp
    again = run_deno("write", path)["versionstamp"]
    assert again > mine.versionstamp  # versionstamps keep rising across both


@pytest.mark.deno
async def test_deno_reads_what_kvshim_wrote(tmp_path: Path, run_deno: Any) -> None:
    path = tmp_path / "kvshim.sqlite3"
    async with await kvshim.open_kv(path) as kv:
        op = kv.atomic()
        for key, value in DENO_WRITES.items():
            op = op.set(key, value)
        result = await op.commit()
        await kv.enqueue("queued", delay=60_000, keys_if_undelivered=[["dead"]])
    read = run_deno("read", path)
    expected = [
        {"key": ["deno", "big"], "value": {"bigint": "12345678901234567890"}},
        {"key": ["deno", "bytes"], "value": {"bytes": [0, 1, 255]}},
        {"key": ["deno", "date"], "value": {"date": 1_700_000_000_000}},
        {"key": ["deno", "int"], "value": -42},
        {"key": ["deno", "num"], "value": 1.5},
        {"key": ["deno", "obj"], "value": {"a": [1, "two", None, True], "b": {"c": 3}}},
        {"key": ["deno", "str"], "value": "héllo ✓"},
        {"key": ["deno", "u64"], "value": {"u64": str(2**64 - 1)}},
        {"key": ["deno", 7, True], "value": None},
    ]
    assert [{"key": e["key"], "value": e["value"]} for e in read] == expected
    assert {e["versionstamp"] for e in read} == {result.versionstamp}
    deno_path = tmp_path / "deno.sqlite3"
    run_deno("write", deno_path)
    assert _schema(path) == _schema(deno_path)
