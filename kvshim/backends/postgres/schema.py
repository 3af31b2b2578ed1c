"""The tables of a KV database in PostgreSQL, and the migrations that create them.

Everything lives in one schema (``?schema=`` in the URL), so several KV databases share one
PostgreSQL database. ``kv_migrations`` records which entries of ``MIGRATIONS`` have run; a
backend applies the missing ones when it opens, under an advisory lock so that several clients
opening at once do not race. A role that may not create schemas can still use a schema that
someone else created and migrated: an up-to-date schema needs no DDL at all.
"""

from __future__ import annotations

import asyncpg

from kvshim.errors import BackendError

MIGRATIONS: tuple[str, ...] = (
    # 1: entries, the single-row version counter, and the queue.
    """
    CREATE TABLE {s}.kv_version (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        version bigint NOT NULL
    );
    INSERT INTO {s}.kv_version (id, version) VALUES (true, 0);
    CREATE TABLE {s}.kv_data (
        key bytea PRIMARY KEY,
        value bytea NOT NULL,
        encoding smallint NOT NULL,
        version bigint NOT NULL,
        expire_at_ms bigint
    );
    CREATE INDEX kv_data_expiry ON {s}.kv_data (expire_at_ms) WHERE expire_at_ms IS NOT NULL;
    CREATE TABLE {s}.kv_queue (
        id bigserial PRIMARY KEY,
        payload bytea NOT NULL,
        deliver_at_ms bigint NOT NULL,
        keys_if_undelivered bytea[] NOT NULL,
        backoff_schedule bigint[] NOT NULL,
        lease_token bigint
    );
    CREATE INDEX kv_queue_due ON {s}.kv_queue (deliver_at_ms, id);
    """,
)


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


async def migrate(con: asyncpg.Connection, schema: str) -> None:
    """Bring ``schema`` up to the latest migration, creating it if needed."""
    if await _applied(con, schema) == len(MIGRATIONS):
        return
    s = quote_ident(schema)
    async with con.transaction():
        await con.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"kvshim:{schema}")
        exists = await con.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        if not exists:
            await con.execute(f"CREATE SCHEMA {s}")
        await con.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.kv_migrations ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await _applied(con, schema)
        for number in range(done + 1, len(MIGRATIONS) + 1):
            await con.execute(MIGRATIONS[number - 1].format(s=s))
            await con.execute(f"INSERT INTO {s}.kv_migrations (version) VALUES ($1)", number)


async def _applied(con: asyncpg.Connection, schema: str) -> int:
    """How many migrations ``schema`` has had (0 if it has no migrations table)."""
    table = f"{quote_ident(schema)}.kv_migrations"
    if await con.fetchval("SELECT to_regclass($1)", table) is None:
        return 0
    done = int(await con.fetchval(f"SELECT coalesce(max(version), 0) FROM {table}"))
    if done > len(MIGRATIONS):
        raise BackendError(
            f"PostgreSQL schema {schema!r} was migrated by a newer kvshim "
            f"(version {done}, this one knows {len(MIGRATIONS)})"
        )
    return done
