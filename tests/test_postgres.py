"""The PostgreSQL backend beyond the conformance suite: several clients and processes on one
database, queues across processes, a server restart, and the errors of a bad setup."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import kvshim
from kvshim.errors import BackendError, KvValueError

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "pg_worker.py"
TIMEOUT = 20.0


@pytest.fixture
async def clients(postgres_server: Any) -> AsyncIterator[Any]:
    """``open_(url)``: a handle on ``url``, closed at teardown."""
    opened: list[kvshim.Kv] = []

    async def open_(url: str) -> kvshim.Kv:
        kv = await kvshim.open_kv(url)
        opened.append(kv)
        return kv

    yield open_
    for kv in opened:
        try:
            await kv.close()
        except kvshim.KvClosedError:
            pass


def spawn(command: str, url: str, arg: str = "-") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), command, url, arg], env=env)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes, killed at teardown."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


async def until(kv: kvshim.Kv, key: list[Any], predicate: Any, timeout: float = TIMEOUT) -> Any:
    """Poll ``key`` until ``predicate(value)``; its value."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        value = (await kv.get(key)).value
        if predicate(value):
            return value
        assert loop.time() < give_up, f"timed out waiting on {key}: last value {value!r}"
        await asyncio.sleep(0.05)


# --- writes from several clients ------------------------------------------------------


async def run_increments(url: str, workers: int, each: int) -> None:
    started = [spawn("increment", url, str(each)) for _ in range(workers)]
    try:
        codes = await asyncio.gather(*(asyncio.to_thread(p.wait, 120) for p in started))
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
    assert codes == [0] * workers


async def test_processes_incrementing_optimistically_reach_the_exact_total(
    postgres_server: Any, clients: Any
) -> None:
    url = postgres_server.url()
    kv = await clients(url)  # creates the schema before the workers race to
    await run_increments(url, workers=3, each=60)
    assert (await kv.get(["counter"])).value == 180


@pytest.mark.slow
async def test_four_processes_of_a_thousand_increments(postgres_server: Any, clients: Any) -> None:
    url = postgres_server.url()
    kv = await clients(url)
    await run_increments(url, workers=4, each=1000)
    assert (await kv.get(["counter"])).value == 4000


async def test_versionstamps_increase_across_clients(postgres_server: Any, clients: Any) -> None:
    url = postgres_server.url()
    a, b = await clients(url), await clients(url)
    results = await asyncio.gather(*(kv.set(["k", i], i) for i in range(40) for kv in (a, b)))
    stamps = [r.versionstamp for r in results]
    assert len(set(stamps)) == len(stamps)
    await a.close()
    again = await clients(url)
    assert (await again.set(["after"], 1)).versionstamp > max(stamps)


def _sequence_value(postgres_server: Any, schema: str) -> int:
    out = postgres_server.psql(f"SELECT last_value FROM {schema}.kv_version;")
    return int(next(line for line in out.splitlines() if line.strip().isdigit()))


async def test_failed_check_consumes_no_version(postgres_server: Any, clients: Any) -> None:
    schema = "kv_failed_check"
    kv = await clients(postgres_server.url(schema))
    first = await kv.set(["s"], "text")
    assert _sequence_value(postgres_server, schema) == int(first.versionstamp[:16], 16)
    assert not (await kv.atomic().check(kvshim.AtomicCheck(["s"], None)).commit()).ok
    assert _sequence_value(postgres_server, schema) == int(first.versionstamp[:16], 16)


async def test_a_schema_made_by_an_older_kvshim_is_migrated(
    postgres_server: Any, clients: Any
) -> None:
    """A schema with only the first migration (plain +1 versions) gets the random 1-9 step."""
    import asyncpg

    from kvshim.backends.postgres import parse_url, schema

    url = postgres_server.url("kv_older")
    config = parse_url(url)
    con = await asyncpg.connect(config.dsn)
    try:
        quoted = schema.quote_ident(config.schema)
        await con.execute(f"CREATE SCHEMA {quoted}")
        await con.execute(
            f"CREATE TABLE {quoted}.kv_migrations (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await con.execute(schema.MIGRATIONS[0].format(s=quoted))
        await con.execute(f"INSERT INTO {quoted}.kv_migrations (version) VALUES (1)")
    finally:
        await con.close()
    kv = await clients(url)
    stamps = [int((await kv.set(["k"], i)).versionstamp[:16], 16) for i in range(60)]
    steps = {b - a for a, b in zip(stamps, stamps[1:], strict=False)}
    assert steps <= set(range(1, 10)) and len(steps) >= 4
    out = postgres_server.psql("SELECT max(version) FROM kv_older.kv_migrations;")
    assert any(line.strip() == str(len(schema.MIGRATIONS)) for line in out.splitlines())


async def test_failed_mutation_leaves_nothing(postgres_server: Any, clients: Any) -> None:
    kv = await clients(postgres_server.url())
    await kv.set(["s"], "text")
    with pytest.raises(kvshim.KvTypeError, match="non-U64"):
        await kv.atomic().set(["x"], 1).sum(["s"], 1).enqueue("m").commit()
    assert (await kv.get(["x"])).value is None
    received: list[Any] = []
    listener = asyncio.create_task(kv.listen_queue(received.append))
    await asyncio.sleep(0.3)
    await kv.close()
    await asyncio.wait_for(listener, 5)
    assert received == []


async def test_schemas_are_separate_databases(postgres_server: Any, clients: Any) -> None:
    a = await clients(postgres_server.url("kv_sep_a"))
    b = await clients(postgres_server.url("kv_sep_b"))
    await a.set(["k"], "a")
    assert (await b.get(["k"])).value is None
    reopened = await clients(postgres_server.url("kv_sep_a"))
    assert (await reopened.get(["k"])).value == "a"


# --- watch and expiry across clients --------------------------------------------------


async def test_watch_sees_another_clients_writes_within_a_second(
    postgres_server: Any, clients: Any
) -> None:
    url = postgres_server.url()
    watcher, writer = await clients(url), await clients(url)
    stream = watcher.watch([["w"]])
    assert [e.value for e in await anext(stream)] == [None]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await writer.set(["w"], "hello")
    chunk = await asyncio.wait_for(anext(stream), 5)
    assert [e.value for e in chunk] == ["hello"]
    assert loop.time() - start < 1.0
    await stream.aclose()


async def test_any_client_sweeps_expired_entries(postgres_server: Any, clients: Any) -> None:
    url = postgres_server.url()
    kvs = [await clients(url) for _ in range(3)]
    await kvs[0].set(["t"], "v", expire_in=300)
    streams = [kv.watch([["t"]]) for kv in kvs[1:]]
    for stream in streams:
        assert [e.value for e in await anext(stream)] == ["v"]
    for stream in streams:
        assert [e.value for e in await asyncio.wait_for(anext(stream), 3)] == [None]
        await stream.aclose()
    schema = url.rsplit("schema=", 1)[1]
    count = postgres_server.psql(f"SELECT count(*) FROM {schema}.kv_data")
    assert " 0\n" in count


# --- queues across processes ----------------------------------------------------------


async def test_each_message_goes_to_one_listener_among_processes(
    postgres_server: Any, clients: Any, processes: list[Any]
) -> None:
    url = postgres_server.url()
    kv = await clients(url)
    processes.extend(spawn("listen", url) for _ in range(3))
    for i in range(30):
        await kv.enqueue(i)
    for i in range(30):
        await until(kv, ["seen", i], lambda v: v is not None)
    await asyncio.sleep(0.5)  # a duplicate delivery would show by now
    seen = [e async for e in kv.list(prefix=["seen"])]
    assert sorted(e.key[1] for e in seen) == list(range(30))
    assert all(e.value == kvshim.KvU64(1) for e in seen)


async def test_message_is_redelivered_after_its_listener_dies(
    postgres_server: Any, clients: Any, processes: list[Any]
) -> None:
    url = postgres_server.url(lease_ms="600")
    kv = await clients(url)
    processes.append(spawn("hang", url))
    await kv.enqueue("job")
    assert await until(kv, ["started"], lambda v: v is not None) == "job"
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait()
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    listener = asyncio.create_task(kv.listen_queue(received.set_result))
    assert await asyncio.wait_for(received, 5) == "job"
    await kv.close()
    await asyncio.wait_for(listener, 5)


async def test_lease_is_kept_alive_while_the_handler_runs(
    postgres_server: Any, clients: Any
) -> None:
    url = postgres_server.url(lease_ms="300")
    busy, idle = await clients(url), await clients(url)
    done = asyncio.Event()
    stolen: list[Any] = []

    async def slow(value: Any) -> None:
        await asyncio.sleep(1.2)
        done.set()

    tasks = [asyncio.create_task(busy.listen_queue(slow))]
    await busy.enqueue("long")
    await asyncio.sleep(0.1)
    tasks.append(asyncio.create_task(idle.listen_queue(stolen.append)))
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.5)
    assert stolen == []
    await busy.close()
    await idle.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)


# --- restart and errors ---------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[Any]:
    """A private server this test may stop and start."""
    import pg_server

    with pg_server.running_server() as server:
        yield server


async def test_client_recovers_after_server_restart(own_server: Any, clients: Any) -> None:
    url = own_server.url()
    kv = await clients(url)
    stream = kv.watch([["w"]])
    await anext(stream)
    acknowledged: list[int] = []
    stop = asyncio.Event()

    async def write_forever() -> None:
        i = 0
        while not stop.is_set():
            await kv.set(["n", i], i)
            acknowledged.append(i)
            i += 1

    writer = asyncio.create_task(write_forever())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_server.stop)
    issued_before_stop = len(acknowledged)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(own_server.start)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(writer, TIMEOUT)
    stored = {e.key[1] async for e in kv.list(prefix=["n"])}
    assert stored == set(acknowledged)  # each write exactly once, none lost
    assert max(acknowledged) > issued_before_stop + 1  # writes went on after the restart
    await kv.set(["w"], "after restart")
    chunk = await asyncio.wait_for(anext(stream), 5)
    assert [e.value for e in chunk] == ["after restart"]
    await stream.aclose()


async def test_missing_database_is_a_clear_error(postgres_server: Any) -> None:
    url = postgres_server.url().replace("/postgres?", "/no_such_db?", 1)
    with pytest.raises(BackendError, match="no_such_db"):
        await kvshim.open_kv(url)


async def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="Cannot open PostgreSQL database"):
        await kvshim.open_kv("postgresql://postgres@127.0.0.1:1/postgres")


async def test_invalid_schema_name_is_rejected() -> None:
    with pytest.raises(KvValueError, match="Invalid PostgreSQL schema name"):
        await kvshim.open_kv("postgresql://postgres@127.0.0.1:1/postgres?schema=a-b")


async def test_missing_permission_is_a_clear_error_until_granted(
    postgres_server: Any, clients: Any
) -> None:
    postgres_server.psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kv_app') "
        "THEN CREATE ROLE kv_app LOGIN; END IF; END $$;"
    )
    url = postgres_server.url("kv_granted").replace("postgres:@", "kv_app:@", 1)
    with pytest.raises(BackendError, match="Permission denied"):
        await kvshim.open_kv(url)
    admin = await clients(postgres_server.url("kv_granted"))  # the owner creates the schema
    await admin.set(["k"], "v")
    postgres_server.psql(
        "GRANT USAGE ON SCHEMA kv_granted TO kv_app; "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA kv_granted TO kv_app; "
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA kv_granted TO kv_app;"
    )
    app = await clients(url)
    assert (await app.get(["k"])).value == "v"
    await app.set(["k"], "w")
    assert (await admin.get(["k"])).value == "w"


async def test_a_retried_batch_applies_once(postgres_server: Any) -> None:
    """What a retry after "connection lost during COMMIT" does: the same token, same result."""
    import asyncpg

    from kvshim.backends.postgres import parse_url, writes
    from kvshim.keys import encode_key
    from kvshim.model import AtomicWrite, EncodedValue, Mutation, MutationKind, ValueEncoding

    url = postgres_server.url()
    kv = await kvshim.open_kv(url)  # creates the schema
    config = parse_url(url)
    tables = writes.Tables(config.schema, config.channel)
    one = EncodedValue((1).to_bytes(8, "little"), ValueEncoding.LE64)
    batch = [AtomicWrite(mutations=[Mutation(encode_key(["n"]), MutationKind.SUM, one)])]
    args = writes.batch_arguments(tables, batch, 0)
    con = await asyncpg.connect(config.dsn)
    try:
        first = await writes.write_batch(con, tables, args)
        again = await writes.write_batch(con, tables, args)
        fresh = writes.batch_arguments(tables, batch, 0)
        other = await writes.write_batch(con, tables, fresh)
    finally:
        await con.close()
    assert first == again and other != first
    assert (await kv.get(["n"])).value == kvshim.KvU64(2)
    await kv.close()


async def test_concurrent_writes_keep_their_own_outcomes(
    postgres_server: Any, clients: Any
) -> None:
    """Writes issued together share a transaction; a failing one undoes only itself."""
    kv = await clients(postgres_server.url())
    await kv.set(["s"], "text")
    results = await asyncio.gather(
        kv.atomic().set(["a"], 1).commit(),
        kv.atomic().set(["x"], 1).sum(["s"], 1).commit(),
        kv.atomic().check(kvshim.AtomicCheck(["s"], None)).set(["y"], 1).commit(),
        kv.atomic().set(["b"], 2).enqueue("m").commit(),
        return_exceptions=True,
    )
    assert isinstance(results[1], kvshim.KvTypeError)
    assert "non-U64" in str(results[1])
    assert not results[2].ok
    assert results[3].versionstamp > results[0].versionstamp
    found = await kv.get_many([["a"], ["b"], ["x"], ["y"], ["s"]])
    assert [e.value for e in found] == [1, 2, None, None, "text"]
