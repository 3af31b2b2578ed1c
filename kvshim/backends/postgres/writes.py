"""Atomic writes in one PostgreSQL transaction, serialised by the version counter's row lock.

Why versionstamps are strictly increasing, across every client, and never seen out of order:
each data-changing transaction starts with ``UPDATE kv_version SET version = version + 1``,
which takes the row lock of the single counter row and holds it until COMMIT. Only one such
transaction can be between that UPDATE and its COMMIT at a time, so

- each one reads the counter after the previous holder committed (READ COMMITTED re-reads the
  locked row once the lock is granted) and gets exactly the next number;
- its checks and sum/min/max run after the lock is granted, in a statement snapshot that
  contains every earlier commit, so they see the latest state: the writes are serializable;
- commits become visible in version order, so a reader never sees version N+1 without N;
- a write that fails a check or a mutation rolls back, taking its increment with it, and the
  counter is a durable row committed together with the data, so it survives crashes and
  restarts and is never reset (migrations only ever create it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress

import asyncpg

from kvshim.backends._mutate import apply_u64, versionstamped_key
from kvshim.backends.postgres.errors import CommitUncertain, is_transient
from kvshim.backends.postgres.listener import payload
from kvshim.backends.postgres.schema import quote_ident
from kvshim.model import (
    AtomicWrite,
    EncodedValue,
    Mutation,
    MutationKind,
    versionstamp_from_version,
)

_Stored = tuple[EncodedValue, bytes, int | None]  # value, versionstamp, expire_at_ms
_U64 = (MutationKind.SUM, MutationKind.MIN, MutationKind.MAX)

Extra = Callable[[asyncpg.Connection], Awaitable[None]]


class _CheckFailed(Exception):
    """Rolls the transaction back when a check does not hold."""


class Tables:
    """The SQL a backend runs, with its schema's table names filled in."""

    def __init__(self, schema: str, channel: str) -> None:
        s = quote_ident(schema)
        self.channel = channel
        live = "(expire_at_ms IS NULL OR expire_at_ms > $2)"
        self.bump = f"UPDATE {s}.kv_version SET version = version + 1 RETURNING version"
        self.lookup = (
            f"SELECT key, value, encoding, version FROM {s}.kv_data "
            f"WHERE key = ANY($1::bytea[]) AND {live}"
        )
        self.delete = f"DELETE FROM {s}.kv_data WHERE key = ANY($1::bytea[])"
        self.upsert = (
            f"INSERT INTO {s}.kv_data (key, value, encoding, version, expire_at_ms) "
            "SELECT k, v, e, $4, x FROM unnest($1::bytea[], $2::bytea[], $3::int2[], "
            "$5::int8[]) AS u(k, v, e, x) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
            "encoding = EXCLUDED.encoding, version = EXCLUDED.version, "
            "expire_at_ms = EXCLUDED.expire_at_ms"
        )
        self.enqueue = (
            f"INSERT INTO {s}.kv_queue (payload, deliver_at_ms, keys_if_undelivered, "
            "backoff_schedule) VALUES ($1, $2, $3, $4)"
        )
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
        self.next_expiry = f"SELECT min(expire_at_ms) FROM {s}.kv_data"
        self.sweep = f"DELETE FROM {s}.kv_data WHERE expire_at_ms <= $1 RETURNING key"


async def atomic_write(
    con: asyncpg.Connection,
    tables: Tables,
    write: AtomicWrite,
    now: int,
    extra: Extra | None = None,
) -> bytes | None:
    """Apply ``write`` (and ``extra``, in the same transaction); its versionstamp, or ``None``
    if a check failed. Raises ``CommitUncertain`` if the connection broke during COMMIT."""
    transaction = con.transaction()
    await transaction.start()
    try:
        versionstamp = await _apply(con, tables, write, now, extra)
    except BaseException as exc:
        with suppress(Exception):  # a broken connection cannot roll back; it is discarded
            await transaction.rollback()
        if isinstance(exc, _CheckFailed):
            return None
        raise
    try:
        await transaction.commit()
    except Exception as exc:
        if is_transient(exc):
            raise CommitUncertain from exc
        raise
    return versionstamp


async def _apply(
    con: asyncpg.Connection, tables: Tables, write: AtomicWrite, now: int, extra: Extra | None
) -> bytes:
    version = int(await con.fetchval(tables.bump))
    wanted = [c.key for c in write.checks] + [m.key for m in write.mutations if m.kind in _U64]
    current: dict[bytes, _Stored] = {}
    if wanted:
        for row in await con.fetch(tables.lookup, wanted, now):
            stamp = versionstamp_from_version(row["version"])
            current[row["key"]] = (EncodedValue(row["value"], row["encoding"]), stamp, None)
    for check in write.checks:
        found = current.get(check.key)
        if (found[1] if found else None) != check.versionstamp:
            raise _CheckFailed
    versionstamp = versionstamp_from_version(version)
    staged = stage(write.mutations, versionstamp, current)
    await store(con, tables, staged, version)
    if write.enqueues:
        await con.executemany(
            tables.enqueue,
            [
                (e.payload, e.deadline_ms, list(e.keys_if_undelivered), list(e.backoff_schedule))
                for e in write.enqueues
            ],
        )
    if extra is not None:
        await extra(con)
    expiry = any(s is not None and s[2] is not None for s in staged.values())
    if staged or write.enqueues:
        text = payload(staged, queue=bool(write.enqueues), expiry=expiry)
        await con.execute("SELECT pg_notify($1, $2)", tables.channel, text)
    return versionstamp


def stage(
    mutations: Sequence[Mutation], versionstamp: bytes, current: dict[bytes, _Stored]
) -> dict[bytes, _Stored | None]:
    """The new state of every mutated key, in order; raises ``KvTypeError`` on a bad sum."""
    staged: dict[bytes, _Stored | None] = {}
    for m in mutations:
        if m.kind is MutationKind.SET:
            assert m.value is not None
            staged[m.key] = (m.value, versionstamp, m.expire_at_ms)
        elif m.kind is MutationKind.DELETE:
            staged[m.key] = None
        elif m.kind is MutationKind.SET_VERSIONSTAMPED_KEY:
            assert m.value is not None
            key = versionstamped_key(m.key, versionstamp)
            staged[key] = (m.value, versionstamp, m.expire_at_ms)
        else:
            assert m.value is not None
            before = staged[m.key] if m.key in staged else current.get(m.key)
            value = apply_u64(m.kind, before[0] if before else None, m.value)
            staged[m.key] = (value, versionstamp, None)
    return staged


async def store(
    con: asyncpg.Connection, tables: Tables, staged: dict[bytes, _Stored | None], version: int
) -> None:
    """Write the staged state: deletes, then one upsert of every set key."""
    deleted = [key for key, stored in staged.items() if stored is None]
    kept = [(key, stored) for key, stored in staged.items() if stored is not None]
    if deleted:
        await con.execute(tables.delete, deleted)
    if kept:
        await con.execute(
            tables.upsert,
            [key for key, _ in kept],
            [stored[0].data for _, stored in kept],
            [stored[0].encoding for _, stored in kept],
            version,
            [stored[2] for _, stored in kept],
        )
