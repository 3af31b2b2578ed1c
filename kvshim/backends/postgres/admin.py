"""Whole KV databases as PostgreSQL schemas: whether one exists, and dropping one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from kvshim.backends.postgres.config import PgConfig, parse_url
from kvshim.backends.postgres.errors import retrying
from kvshim.backends.postgres.schema import quote_ident
from kvshim.errors import BackendError

T = TypeVar("T")


async def _with_connection(
    config: PgConfig, what: str, operation: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    async def attempt() -> T:
        connection = await asyncpg.connect(config.dsn, timeout=10)
        try:
            return await operation(connection)
        finally:
            await connection.close(timeout=5)

    try:
        return await retrying(attempt, what)
    except BackendError:
        raise
    except Exception as exc:  # e.g. a malformed DSN, refused before any connection
        raise BackendError(f"Cannot open PostgreSQL database {config.redacted}: {exc}") from exc


async def exists(url: str) -> bool:
    """Whether the KV database at ``url`` exists: its schema holds kvshim's tables."""
    config = parse_url(url)
    table = f"{quote_ident(config.schema)}.kv_migrations"

    async def look(con: asyncpg.Connection) -> bool:
        return bool(await con.fetchval("SELECT to_regclass($1) IS NOT NULL", table))

    return await _with_connection(config, "schema lookup", look)


async def drop(url: str) -> bool:
    """Drop the schema of the KV database at ``url`` with everything in it; whether it existed.

    Clients still connected to it get errors from then on; nothing else is touched.
    """
    config = parse_url(url)

    async def drop_schema(con: asyncpg.Connection) -> bool:
        async with con.transaction():
            # the lock migrations take, so a client opening the database right now either
            # finishes creating it first or finds it gone
            await con.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"kvshim:{config.schema}"
            )
            found = await con.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", config.schema
            )
            if found:
                await con.execute(f"DROP SCHEMA {quote_ident(config.schema)} CASCADE")
            return bool(found)

    return await _with_connection(config, "dropping the schema", drop_schema)
