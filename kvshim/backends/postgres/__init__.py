"""The PostgreSQL backend: ``postgres://`` and ``postgresql://`` URLs.

``postgresql://user:password@host:5432/dbname?schema=myapp`` stores a KV database in the tables
of schema ``myapp`` (default ``kvshim``) of PostgreSQL database ``dbname``, creating and
migrating them on first open. Several KV databases share one PostgreSQL database through
different schemas. Other query parameters of kvshim's: ``lease_ms`` (how long a dequeued
message is hidden from other listeners without a keep-alive, default 5000) and ``pool_size``
(default 10); everything else (``host=/run/postgresql``, ``sslmode=require``…) goes to the
driver, asyncpg.

The role needs ``CREATE`` on the database to create the schema, or an existing schema it may
create tables in; once migrated, a role with ``SELECT``/``INSERT``/``UPDATE``/``DELETE`` on the
tables (and ``USAGE`` on the schema and its sequence) is enough.

Expiry times are epoch milliseconds from the writing client's clock; reads hide expired
entries by the reading client's clock. Keep app servers' clocks in sync (NTP).
"""

from __future__ import annotations

from kvshim.backends.postgres.backend import PostgresBackend, open_postgres
from kvshim.backends.postgres.config import PgConfig, parse_url

__all__ = ["PgConfig", "PostgresBackend", "open_postgres", "open_url", "parse_url"]


async def open_url(url: str) -> PostgresBackend:
    """Open the KV database that the ``postgres(ql)://`` ``url`` names."""
    return await open_postgres(parse_url(url))
