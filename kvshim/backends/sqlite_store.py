"""Deno's on-disk KV format, and every read and write on it as synchronous SQLite calls.

The schema, its migrations and ``migration_state`` version 3 are Deno's own (``denokv_sqlite``),
so Deno opens kvshim's files and kvshim opens Deno's. A commit adds a random 1-9 to
``data_version.version`` (an expiry sweep adds 1) inside its ``BEGIN IMMEDIATE`` transaction,
which makes versions strictly increasing across every process sharing the file; the
versionstamp is that version as 8 bytes big-endian plus ``0000``.

Unlike Deno, every read and check hides rows whose ``expiration_ms`` has passed, so an expired
key is gone at once and not only after the next sweep.

These functions run on the SQLite threads of ``kvshim.backends.sqlite`` or on its event loop's
own connection; none of them commits: the caller wraps them in a transaction (a read
transaction, a write transaction of their own, or a savepoint in the writer's batch).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from kvshim.backends._mutate import apply_u64, commit_step, versionstamped_key
from kvshim.errors import BackendError
from kvshim.model import (
    AtomicWrite,
    EncodedValue,
    Enqueue,
    MutationKind,
    RawEntry,
    ReadRange,
    StoredEntry,
    ValueEncoding,
    versionstamp_from_version,
)

SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 5.0

STATEMENT_CREATE_MIGRATION_TABLE = """
create table if not exists migration_state(
  k integer not null primary key,
  version integer not null
)
"""
STATEMENT_GET_MIGRATION_VERSION = "select version from migration_state where k = 0"
STATEMENT_SET_MIGRATION_VERSION = "replace into migration_state (k, version) values(?, ?)"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
create table data_version (
  k integer primary key,
  version integer not null
)""",
        "insert into data_version (k, version) values (0, 0)",
        """
create table kv (
  k blob primary key,
  v blob not null,
  v_encoding integer not null,
  version integer not null
) without rowid""",
    ),
    (
        """
create table queue (
  ts integer not null,
  id text not null,
  data blob not null,
  backoff_schedule text not null,
  keys_if_undelivered blob not null,

  primary key (ts, id)
)""",
        """
create table queue_running(
  deadline integer not null,
  id text not null,
  data blob not null,
  backoff_schedule text not null,
  keys_if_undelivered blob not null,

  primary key (deadline, id)
)""",
    ),
    (
        "alter table data_version add column seq integer not null default 0",
        "alter table kv add column seq integer not null default 0",
        "alter table kv add column expiration_ms integer not null default -1",
        "create index kv_expiration_ms_idx on kv (expiration_ms)",
    ),
)
"""Deno's migrations 1..3, statement by statement (the text matches Deno's schema)."""

_LIVE = "(expiration_ms < 0 or expiration_ms > ?)"
STATEMENT_DATA_VERSION = "select version from data_version where k = 0"
STATEMENT_BUMP_VERSION = "update data_version set version = version + ? where k = 0"
STATEMENT_RANGE_ASC = (
    "select k, v, v_encoding, version from kv where k >= ? and k < ? and "
    f"{_LIVE} order by k asc limit ?"
)
STATEMENT_RANGE_DESC = (
    "select k, v, v_encoding, version from kv where k >= ? and k < ? and "
    f"{_LIVE} order by k desc limit ?"
)
STATEMENT_POINT_GET = f"select k, v, v_encoding, version from kv where k = ? and {_LIVE}"
STATEMENT_POINT_VERSION = f"select version from kv where k = ? and {_LIVE}"
STATEMENT_POINT_VALUE = f"select v, v_encoding from kv where k = ? and {_LIVE}"
STATEMENT_POINT_SET = (
    "insert into kv (k, v, v_encoding, version, expiration_ms) "
    "values (?, ?, ?, ?, ?) on conflict(k) do update set v = excluded.v, "
    "v_encoding = excluded.v_encoding, version = excluded.version, "
    "expiration_ms = excluded.expiration_ms"
)
STATEMENT_POINT_SET_NO_EXPIRY = (
    "insert into kv (k, v, v_encoding, version, expiration_ms) values (?, ?, ?, ?, -1) "
    "on conflict(k) do update set v = excluded.v, v_encoding = excluded.v_encoding, "
    "version = excluded.version where kv.expiration_ms = -1"
)
"""Stores an entry without expiry unless the key has one (then nothing changes): leaving
``expiration_ms`` out of the update spares rewriting its index, one page less per commit."""
STATEMENT_POINT_DELETE = "delete from kv where k = ?"
STATEMENT_EXPORT_RANGE = (
    "select k, v, v_encoding, version, expiration_ms from kv where k >= ? and k < ? "
    f"and {_LIVE} order by k asc limit ?"
)
STATEMENT_RAISE_VERSION = "update data_version set version = max(version, ?) where k = 0"
STATEMENT_EXPIRED_KEYS = "select k from kv where expiration_ms >= 0 and expiration_ms <= ?"
STATEMENT_DELETE_EXPIRED = "delete from kv where expiration_ms >= 0 and expiration_ms <= ?"
STATEMENT_EARLIEST_EXPIRATION = (
    "select expiration_ms from kv where expiration_ms >= 0 order by expiration_ms limit 1"
)
STATEMENT_QUEUE_ADD = (
    "insert into queue (ts, id, data, backoff_schedule, keys_if_undelivered) values (?, ?, ?, ?, ?)"
)
STATEMENT_QUEUE_NEXT_READY = (
    "select ts, id, data, backoff_schedule, keys_if_undelivered from queue "
    "where ts <= ? order by ts limit 1"
)
STATEMENT_QUEUE_EARLIEST = "select ts from queue order by ts limit 1"
STATEMENT_QUEUE_REMOVE = "delete from queue where ts = ? and id = ?"
STATEMENT_RUNNING_ADD = (
    "insert into queue_running (deadline, id, data, backoff_schedule, keys_if_undelivered) "
    "values (?, ?, ?, ?, ?)"
)
STATEMENT_RUNNING_EXTEND = "update queue_running set deadline = ? where id = ?"
STATEMENT_RUNNING_GET = (
    "select deadline, id, data, backoff_schedule, keys_if_undelivered from queue_running "
    "where id = ?"
)
STATEMENT_RUNNING_REMOVE = "delete from queue_running where id = ?"
STATEMENT_RUNNING_PAST_DEADLINE = (
    "select deadline, id, data, backoff_schedule, keys_if_undelivered from queue_running "
    "where deadline <= ? order by deadline limit 100"
)
STATEMENT_RUNNING_EARLIEST = "select deadline from queue_running order by deadline limit 1"


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A queue message as stored (in ``queue`` or ``queue_running``)."""

    id: str
    payload: bytes
    backoff_schedule: tuple[int, ...]
    keys_if_undelivered: tuple[bytes, ...]


@dataclass(slots=True)
class Changes:
    """What a write transaction did, for the event loop to act on after the commit."""

    keys: list[bytes] = field(default_factory=list)
    """Keys whose entry changed: their watchers are woken."""
    version: int | None = None
    """The version the write committed, if it allocated one."""
    earliest_expiry: int | None = None
    """The earliest ``expiration_ms`` the write stored, to reschedule the sweep."""
    enqueued: bool = False
    """Whether a message became (or will become) deliverable: queue listeners are woken."""


@dataclass(slots=True)  # not frozen: built on every commit, and frozen costs ~3x to build
class WriteResult:
    """The outcome of one atomic write: its versionstamp (``None``: a check failed)."""

    versionstamp: bytes | None
    changes: Changes


@dataclass(frozen=True, slots=True)
class Dequeued:
    """The outcome of a dequeue attempt: a message (or none) and when to look again."""

    message: QueueRow | None
    next_due_ms: int | None
    changes: Changes


# --- opening ---------------------------------------------------------------------------------


def connect(path: str) -> sqlite3.Connection:
    """A connection on ``path`` in autocommit mode (transactions are explicit), WAL,
    ``synchronous=FULL`` (a returned commit survives power loss), and a busy timeout."""
    _check_path(path)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute("pragma journal_mode = wal")
        conn.execute("pragma synchronous = full")
    except sqlite3.Error as exc:
        raise _open_error(path, exc) from exc
    return conn


def _check_path(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(parent):
        raise BackendError(f"unable to open database file: {path}")


def _open_error(path: str, exc: sqlite3.Error) -> BackendError:
    text = str(exc)
    if "unable to open" in text:
        return BackendError(f"unable to open database file: {path}")
    return BackendError(f"{text}: {path}")


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to Deno's version 3 (inside the caller's write transaction)."""
    conn.execute(STATEMENT_CREATE_MIGRATION_TABLE)
    row = conn.execute(STATEMENT_GET_MIGRATION_VERSION).fetchone()
    current = int(row[0]) if row else 0
    if current > SCHEMA_VERSION:
        raise BackendError(
            f"database schema version {current} is newer than supported ({SCHEMA_VERSION})"
        )
    for version, statements in enumerate(MIGRATIONS, start=1):
        if version > current:
            for statement in statements:
                conn.execute(statement)
            conn.execute(STATEMENT_SET_MIGRATION_VERSION, (0, version))


# --- reads -----------------------------------------------------------------------------------


def read_ranges(
    conn: sqlite3.Connection, ranges: Sequence[ReadRange], now: int
) -> list[list[RawEntry]]:
    """Every range's live entries (call inside one read transaction for one snapshot)."""
    return [read_range(conn, r, now) for r in ranges]


def read_range(conn: sqlite3.Connection, r: ReadRange, now: int) -> list[RawEntry]:
    """One range's live entries (one statement: it reads one snapshot by itself)."""
    if r.limit == 1 and r.end == r.start + b"\x00":  # one key: an equality lookup
        row = conn.execute(STATEMENT_POINT_GET, (r.start, now)).fetchone()
        return [_entry(row)] if row else []
    statement = STATEMENT_RANGE_DESC if r.reverse else STATEMENT_RANGE_ASC
    params = (r.start, r.end, now, r.limit)
    return [_entry(row) for row in conn.execute(statement, params)]


def read_keys(conn: sqlite3.Connection, keys: Sequence[bytes], now: int) -> list[RawEntry | None]:
    """The live entry of each key, ``None`` where missing or expired."""
    out: list[RawEntry | None] = []
    for key in keys:
        row = conn.execute(STATEMENT_POINT_GET, (key, now)).fetchone()
        out.append(_entry(row) if row else None)
    return out


def data_version(conn: sqlite3.Connection) -> int:
    """The version of the last commit to the file, by any process."""
    row = conn.execute(STATEMENT_DATA_VERSION).fetchone()
    return int(row[0]) if row else 0


def earliest_expiry(conn: sqlite3.Connection) -> int | None:
    """The earliest ``expiration_ms`` of any stored row, expired or not."""
    row = conn.execute(STATEMENT_EARLIEST_EXPIRATION).fetchone()
    return int(row[0]) if row else None


def _entry(row: tuple[bytes, bytes, int, int]) -> RawEntry:
    # Blob columns come back as ``bytes`` already (no copy needed).
    key, value, encoding, version = row
    return RawEntry(key, EncodedValue(value, encoding), version.to_bytes(8, "big") + b"\x00\x00")


def _stamp(version: int) -> bytes:
    return versionstamp_from_version(version)


def export_range(
    conn: sqlite3.Connection, start: bytes, end: bytes, limit: int, now: int
) -> list[StoredEntry]:
    """Live entries in ``[start, end)`` with their expiry (``RawAccess.export_entries``)."""
    params = (start, end, now, limit)
    return [
        StoredEntry(
            bytes(k), EncodedValue(bytes(v), enc), _stamp(version), None if exp < 0 else exp
        )
        for k, v, enc, version, exp in conn.execute(STATEMENT_EXPORT_RANGE, params)
    ]


# --- writes ----------------------------------------------------------------------------------


def import_entries(conn: sqlite3.Connection, entries: Sequence[StoredEntry]) -> WriteResult:
    """Store entries exactly (``RawAccess.import_entries``); the version counter is raised to
    the largest imported version. A versionstamp's last two bytes are always 0 here."""
    changes = Changes()
    top = 0
    for entry in entries:
        version = int.from_bytes(entry.versionstamp[:8], "big")
        top = max(top, version)
        _set(conn, entry.key, entry.value, version, entry.expire_at_ms)
        changes.keys.append(entry.key)
        if entry.expire_at_ms is not None:
            changes.earliest_expiry = _earlier(changes.earliest_expiry, entry.expire_at_ms)
    conn.execute(STATEMENT_RAISE_VERSION, (top,))
    return WriteResult(None, changes)


def atomic_write(conn: sqlite3.Connection, write: AtomicWrite, now: int) -> WriteResult:
    """Apply ``write`` (inside a savepoint: a ``KvTypeError`` escapes before the caller
    releases it, and the caller rolls the whole write back)."""
    for check in write.checks:
        row = conn.execute(STATEMENT_POINT_VERSION, (check.key, now)).fetchone()
        if (_stamp(row[0]) if row else None) != check.versionstamp:
            return WriteResult(None, Changes())
    version = _bump_version(conn, commit_step())
    versionstamp = _stamp(version)
    changes = Changes(version=version)
    for m in write.mutations:
        key, kind = m.key, m.kind
        if kind is _DELETE:
            conn.execute(STATEMENT_POINT_DELETE, (key,))
        elif kind is _SET or kind is _SET_VERSIONSTAMPED_KEY:
            assert m.value is not None
            if kind is _SET_VERSIONSTAMPED_KEY:
                key = versionstamped_key(key, versionstamp)
            _set(conn, key, m.value, version, m.expire_at_ms)
            if m.expire_at_ms is not None:
                changes.earliest_expiry = _earlier(changes.earliest_expiry, m.expire_at_ms)
        else:
            assert m.value is not None
            row = conn.execute(STATEMENT_POINT_VALUE, (key, now)).fetchone()
            current = EncodedValue(bytes(row[0]), row[1]) if row else None
            _set(conn, key, apply_u64(m.kind, current, m.value), version, None)
        changes.keys.append(key)
    for message in write.enqueues:
        _enqueue(conn, message)
        changes.enqueued = True
    return WriteResult(versionstamp, changes)


# Enum members as module constants: looking one up on its class costs ~60 ns each time.
_DELETE = MutationKind.DELETE
_SET = MutationKind.SET
_SET_VERSIONSTAMPED_KEY = MutationKind.SET_VERSIONSTAMPED_KEY


def _bump_version(conn: sqlite3.Connection, step: int) -> int:
    # An UPDATE, then a SELECT: ``update ... returning`` costs ~12 µs through Python's sqlite3,
    # the two statements ~5 µs (same transaction, so the same row).
    conn.execute(STATEMENT_BUMP_VERSION, (step,))
    return data_version(conn)


def _set(
    conn: sqlite3.Connection, key: bytes, value: EncodedValue, version: int, expire: int | None
) -> None:
    if expire is None:
        params = (key, value.data, int(value.encoding), version)
        if conn.execute(STATEMENT_POINT_SET_NO_EXPIRY, params).rowcount:
            return
    expiration = -1 if expire is None else expire
    conn.execute(STATEMENT_POINT_SET, (key, value.data, int(value.encoding), version, expiration))


def _earlier(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)


def sweep_expired(conn: sqlite3.Connection, now: int) -> tuple[Changes, int | None]:
    """Delete every expired row (one new version if any); the changes and the next expiry."""
    keys = [bytes(row[0]) for row in conn.execute(STATEMENT_EXPIRED_KEYS, (now,))]
    changes = Changes(keys=keys)
    if keys:
        conn.execute(STATEMENT_DELETE_EXPIRED, (now,))
        changes.version = _bump_version(conn, 1)
    return changes, earliest_expiry(conn)


# --- queues ----------------------------------------------------------------------------------


def _enqueue(conn: sqlite3.Connection, message: Enqueue) -> None:
    row = QueueRow(
        str(uuid.uuid4()),
        message.payload,
        message.backoff_schedule,
        message.keys_if_undelivered,
    )
    _queue_add(conn, message.deadline_ms, row)


def _queue_add(conn: sqlite3.Connection, ts: int, row: QueueRow) -> None:
    conn.execute(STATEMENT_QUEUE_ADD, (ts, row.id, row.payload, *_json_columns(row)))


def _json_columns(row: QueueRow) -> tuple[str, str]:
    keys = json.dumps([list(key) for key in row.keys_if_undelivered], separators=(",", ":"))
    return json.dumps(list(row.backoff_schedule), separators=(",", ":")), keys


def _row(columns: tuple[int, str, bytes, str, str | bytes]) -> QueueRow:
    _, id_, data, backoff, keys = columns
    key_lists = json.loads(keys)
    return QueueRow(
        id_,
        bytes(data),
        tuple(int(delay) for delay in json.loads(backoff)),
        tuple(bytes(key) for key in key_lists),
    )


def dequeue(conn: sqlite3.Connection, now: int, lease_ms: int) -> Dequeued:
    """Requeue abandoned messages, then move the next due one to ``queue_running`` with a
    deadline ``lease_ms`` away (its handler's heartbeat extends it)."""
    changes = requeue_abandoned(conn, now)
    found = conn.execute(STATEMENT_QUEUE_NEXT_READY, (now,)).fetchone()
    message = None
    if found is not None:
        message = _row(found)
        conn.execute(STATEMENT_QUEUE_REMOVE, (found[0], message.id))
        conn.execute(
            STATEMENT_RUNNING_ADD, (now + lease_ms, message.id, message.payload, *found[3:])
        )
    return Dequeued(message, _next_due(conn), changes)


def _next_due(conn: sqlite3.Connection) -> int | None:
    due = [
        row[0]
        for s in (STATEMENT_QUEUE_EARLIEST, STATEMENT_RUNNING_EARLIEST)
        if (row := conn.execute(s).fetchone()) is not None
    ]
    return min(due) if due else None


def requeue_abandoned(conn: sqlite3.Connection, now: int) -> Changes:
    """Treat running messages past their deadline (their process died or hung) as failed
    attempts, as Deno's cleanup pass does: retried after the next backoff, or dead-lettered."""
    changes = Changes()
    for columns in conn.execute(STATEMENT_RUNNING_PAST_DEADLINE, (now,)).fetchall():
        conn.execute(STATEMENT_RUNNING_REMOVE, (columns[1],))
        _merge(changes, _failed(conn, _row(columns), now))
    return changes


def extend_lease(conn: sqlite3.Connection, message_id: str, deadline: int) -> bool:
    """Move a running message's deadline to ``deadline``; ``False`` if it is no longer running."""
    return conn.execute(STATEMENT_RUNNING_EXTEND, (deadline, message_id)).rowcount > 0


def finish(conn: sqlite3.Connection, message_id: str, success: bool, now: int) -> Changes:
    """Remove a running message; on failure schedule its retry or write its dead letters."""
    columns = conn.execute(STATEMENT_RUNNING_GET, (message_id,)).fetchone()
    if columns is None:
        return Changes()  # already requeued by a cleanup pass
    conn.execute(STATEMENT_RUNNING_REMOVE, (message_id,))
    return Changes() if success else _failed(conn, _row(columns), now)


def _failed(conn: sqlite3.Connection, row: QueueRow, now: int) -> Changes:
    if row.backoff_schedule:
        delay, *rest = row.backoff_schedule
        _queue_add(
            conn, now + delay, QueueRow(row.id, row.payload, tuple(rest), row.keys_if_undelivered)
        )
        return Changes(enqueued=True)
    if not row.keys_if_undelivered:
        return Changes()
    version = _bump_version(conn, commit_step())
    value = EncodedValue(row.payload, ValueEncoding.V8)
    for key in row.keys_if_undelivered:
        _set(conn, key, value, version, None)
    return Changes(keys=list(row.keys_if_undelivered), version=version)


def _merge(into: Changes, more: Changes) -> None:
    into.keys.extend(more.keys)
    if more.version is not None:
        into.version = more.version
    into.enqueued = into.enqueued or more.enqueued
