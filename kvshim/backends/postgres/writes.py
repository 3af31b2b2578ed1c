"""Atomic writes: one statement per batch of writes, serialised by the database's write lock.

A batch of writes is a single statement, ``SELECT kv_write_batch(...)`` (PL/pgSQL, defined in
``schema``), which calls ``kv_write`` once per write: one round trip, and the lock is held only
while the server works.

Why versionstamps are strictly increasing across every client and never seen out of order:
``kv_write`` (and every other data-changing transaction: expiry sweeps, dead letters) first
takes the schema's transaction-level advisory lock and keeps it until COMMIT, and only then
draws its version from the ``kv_version`` sequence (a write draws a random 1-9 numbers and
keeps the last, as Deno's local backends move by 1-9). Only one such transaction runs between
taking the lock and committing at a time, and PostgreSQL releases a transaction's locks only
after its commit is visible, so

- versions are drawn in lock order, which is commit order: a reader never sees version N+1
  without N, and a later writer always gets a larger number;
- checks and sum/min/max run after the lock is granted, each in a fresh snapshot (statements
  of a VOLATILE function take new snapshots) that contains every earlier commit, so they see
  the latest state: the writes are serializable;
- a failed check returns before drawing a version; an error (sum on a non-U64 value) undoes
  the write (its drawn number stays unused, as Deno's local backend also burns one there);
- a sequence never goes backwards, not even after a crash (it is WAL-logged ahead of use),
  and migrations only ever create it.

A lock plus a sequence, rather than a single counter row updated by every write, because
waiting writers hold snapshots that keep the counter's dead row versions from being pruned:
under contention from several processes every write had to walk an ever longer chain.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from itertools import accumulate

import asyncpg

from kvshim.backends.postgres.schema import quote_ident
from kvshim.errors import KvTypeError
from kvshim.model import AtomicWrite, MutationKind, versionstamp_from_version

_KINDS = {
    MutationKind.SET: 1,
    MutationKind.DELETE: 2,
    MutationKind.SET_VERSIONSTAMPED_KEY: 3,
    MutationKind.SUM: 4,
    MutationKind.MIN: 5,
    MutationKind.MAX: 6,
}
_U64_NAMES = {-4: "sum", -5: "min", -6: "max"}

Extra = Callable[[asyncpg.Connection], Awaitable[None]]
Outcome = bytes | None | KvTypeError
"""A write's versionstamp, ``None`` if a check failed, or the error that undid it."""


class Tables:
    """The SQL a backend runs, with its schema's table names filled in."""

    def __init__(self, schema: str, channel: str) -> None:
        s = quote_ident(schema)
        self.channel = channel
        live = "(expire_at_ms IS NULL OR expire_at_ms > $2)"
        params = ", ".join(f"${n}" for n in range(1, 18))
        self.write = f"SELECT {s}.kv_write_batch({params})"
        self.lock = f"SELECT pg_advisory_xact_lock(hashtext('kvshim.write.{s}'))"
        self.bump = f"SELECT nextval('{s}.kv_version')"
        self.read = (
            "SELECT r.i, d.key, d.value, d.encoding, d.version "
            "FROM unnest($1::bytea[], $3::bytea[], $4::int4[], $5::bool[]) "
            "WITH ORDINALITY AS r(s, e, l, rev, i) CROSS JOIN LATERAL ("
            f"(SELECT key, value, encoding, version FROM {s}.kv_data "
            f"WHERE NOT r.rev AND key >= r.s AND key < r.e AND {live} ORDER BY key LIMIT r.l) "
            "UNION ALL "
            f"(SELECT key, value, encoding, version FROM {s}.kv_data "
            f"WHERE r.rev AND key >= r.s AND key < r.e AND {live} ORDER BY key DESC LIMIT r.l)"
            ") AS d"
        )
        one = (
            f"SELECT 1 AS i, key, value, encoding, version FROM {s}.kv_data "
            f"WHERE key >= $1 AND key < $3 AND {live} ORDER BY key {{}} LIMIT $4"
        )
        self.read_one = one.format("ASC")
        self.read_one_reverse = one.format("DESC")
        self.next_expiry = f"SELECT min(expire_at_ms) FROM {s}.kv_data"
        self.sweep = f"DELETE FROM {s}.kv_data WHERE expire_at_ms <= $1 RETURNING key"
        self.forget_batches = f"DELETE FROM {s}.kv_batches WHERE created_at_ms < $1"
        self.export = (
            f"SELECT key, value, encoding, version, expire_at_ms FROM {s}.kv_data "
            f"WHERE key >= $1 AND key < $3 AND {live} ORDER BY key LIMIT $4"
        )
        self.import_rows = (
            f"INSERT INTO {s}.kv_data (key, value, encoding, version, expire_at_ms) "
            "SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int2[], $4::int8[], $5::int8[]) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "encoding = excluded.encoding, version = excluded.version, "
            "expire_at_ms = excluded.expire_at_ms"
        )
        # setval outside a transaction's control is fine here: it only ever raises the
        # sequence (GREATEST), and it runs under the write lock, so no nextval interleaves.
        self.raise_version = (
            f"SELECT setval('{s}.kv_version', "
            f"GREATEST($1::int8, (SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
            f"FROM {s}.kv_version), 1))"
        )


def batch_arguments(tables: Tables, batch: Sequence[AtomicWrite], now: int) -> list[object]:
    """The arguments of one ``kv_write_batch`` call, with a fresh idempotency token: pass the
    same list to every attempt of the batch, so that it applies at most once."""
    return [secrets.randbits(63), *_arguments(tables, batch, now)]


async def write_batch(
    con: asyncpg.Connection,
    tables: Tables,
    args: list[object],
    extra: Extra | None = None,
) -> list[Outcome]:
    """Apply a batch of writes (``batch_arguments``) in order, in one transaction (with
    ``extra``, if given); the outcome of each. Safe to retry with the same ``args``."""
    if extra is None:
        results = await _call(con, tables.write, args)
    else:
        async with con.transaction():
            results = await _call(con, tables.write, args)
            await extra(con)
    return [_outcome(result) for result in results]


def _outcome(result: int | None) -> Outcome:
    if result is None:
        return None
    if result < 0:
        kind = _U64_NAMES[result]
        return KvTypeError(
            f"Failed to perform '{kind}' mutation on a non-U64 value in the database"
        )
    return versionstamp_from_version(result)


async def _call(con: asyncpg.Connection, sql: str, args: list[object]) -> list[int | None]:
    try:
        results: list[int | None] = await con.fetchval(sql, *args)
    except asyncpg.PostgresError as exc:
        code = _U64_ERRORS.get(exc.sqlstate or "")
        if code is None:
            raise
        return [code]  # a lone write's sum/min/max failed and aborted the statement
    return results


_U64_ERRORS = {"KV004": -4, "KV005": -5, "KV006": -6}


def _arguments(tables: Tables, batch: Sequence[AtomicWrite], now: int) -> list[object]:
    checks = [c for w in batch for c in w.checks]
    m = [x for w in batch for x in w.mutations]
    q = [e for w in batch for e in w.enqueues]
    return [
        now,
        tables.channel,
        list(accumulate(len(w.checks) for w in batch)),
        list(accumulate(len(w.mutations) for w in batch)),
        list(accumulate(len(w.enqueues) for w in batch)),
        [c.key for c in checks],
        [_version_of(c.versionstamp) for c in checks],
        [_KINDS[x.kind] for x in m],
        [x.key for x in m],
        [x.value.data if x.value else None for x in m],
        [x.value.encoding if x.value else None for x in m],
        [x.expire_at_ms for x in m],
        [e.payload for e in q],
        [e.deadline_ms for e in q],
        [pack_keys(e.keys_if_undelivered) for e in q],
        [pack_ints(e.backoff_schedule) for e in q],
    ]


def _version_of(versionstamp: bytes | None) -> int | None:
    """The commit version a checked versionstamp names; -1 (matches nothing) for a
    versionstamp this backend never makes."""
    if versionstamp is None:
        return None
    if versionstamp[8:] != b"\x00\x00":
        return -1
    return int.from_bytes(versionstamp[:8], "big")


def pack_keys(keys: tuple[bytes, ...]) -> bytes:
    """Keys as one ``bytea``: each one prefixed by its 2-byte big-endian length."""
    return b"".join(len(k).to_bytes(2, "big") + k for k in keys)


def unpack_keys(packed: bytes) -> tuple[bytes, ...]:
    """The keys ``pack_keys`` packed."""
    keys, at = [], 0
    while at < len(packed):
        size = int.from_bytes(packed[at : at + 2], "big")
        keys.append(packed[at + 2 : at + 2 + size])
        at += 2 + size
    return tuple(keys)


def pack_ints(values: tuple[int, ...]) -> bytes:
    """Non-negative integers (backoff intervals) as 8-byte big-endian words."""
    return b"".join(v.to_bytes(8, "big") for v in values)


def unpack_ints(packed: bytes) -> tuple[int, ...]:
    """The integers ``pack_ints`` packed."""
    return tuple(int.from_bytes(packed[i : i + 8], "big") for i in range(0, len(packed), 8))
