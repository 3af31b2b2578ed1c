"""The registry's SQL: one small function per question or change, on an open connection."""

from __future__ import annotations

import sqlite3

from kvshim.databases.registry import DatabaseRecord, Instance, TokenRecord, now_ms
from kvshim.errors import DatabaseExistsError, DatabaseNotFoundError

STATEMENT_INSTANCE = "SELECT name, engine, location, created_ms FROM instances WHERE name = ?"
STATEMENT_INSTANCES = "SELECT name, engine, location, created_ms FROM instances ORDER BY name"
STATEMENT_DATABASES = (
    "SELECT instance, name, app, timeline, state, error, created_ms FROM databases "
    "WHERE instance = ? ORDER BY app, name"
)
STATEMENT_DATABASE = (
    "SELECT instance, name, app, timeline, state, error, created_ms FROM databases "
    "WHERE instance = ? AND name = ?"
)


def instance(conn: sqlite3.Connection, name: str) -> Instance:
    """The instance called ``name``; ``DatabaseNotFoundError`` if there is none."""
    row = conn.execute(STATEMENT_INSTANCE, (name,)).fetchone()
    if row is None:
        raise DatabaseNotFoundError(
            f"No database instance named {name!r} (see `kvshim db list`; create one with "
            f"`kvshim db provision {name}`)"
        )
    return Instance(*row)


def instances(conn: sqlite3.Connection) -> list[Instance]:
    """Every instance, by name."""
    return [Instance(*row) for row in conn.execute(STATEMENT_INSTANCES)]


def insert_instance(conn: sqlite3.Connection, item: Instance) -> None:
    """Record a new instance; ``DatabaseExistsError`` if its name or location is taken (two
    instances in one place would share database names; ``memory:`` ones are kept apart by the
    instance name)."""
    shared = item.location != "memory:"
    clash = conn.execute(
        "SELECT name FROM instances WHERE name = ? OR (? AND location = ?)",
        (item.name, shared, item.location),
    ).fetchone()
    if clash is not None:
        what = "name" if clash[0] == item.name else f"location {item.location}"
        raise DatabaseExistsError(
            f"A database instance with that {what} already exists: {clash[0]!r}"
        )
    conn.execute(
        "INSERT INTO instances VALUES (?, ?, ?, ?)",
        (item.name, item.engine, item.location, item.created_ms),
    )


def apps_of(conn: sqlite3.Connection, instance_name: str) -> list[str]:
    """The apps assigned to an instance."""
    rows = conn.execute(
        "SELECT app FROM assignments WHERE instance = ? ORDER BY app", (instance_name,)
    )
    return [row[0] for row in rows]


def assigned_instance(conn: sqlite3.Connection, app: str) -> str | None:
    """The instance ``app`` is assigned to, if any."""
    row = conn.execute("SELECT instance FROM assignments WHERE app = ?", (app,)).fetchone()
    return row[0] if row else None


def assign(conn: sqlite3.Connection, app: str, instance_name: str) -> None:
    """Assign ``app`` to an instance."""
    conn.execute("INSERT INTO assignments VALUES (?, ?, ?)", (app, instance_name, now_ms()))


def unassign(conn: sqlite3.Connection, app: str) -> None:
    """Remove ``app``'s assignment."""
    conn.execute("DELETE FROM assignments WHERE app = ?", (app,))


def databases(conn: sqlite3.Connection, instance_name: str) -> list[DatabaseRecord]:
    """The timeline databases of an instance, by app and name."""
    return [DatabaseRecord(*row) for row in conn.execute(STATEMENT_DATABASES, (instance_name,))]


def database(conn: sqlite3.Connection, instance_name: str, name: str) -> DatabaseRecord | None:
    """One timeline database of an instance, if recorded."""
    row = conn.execute(STATEMENT_DATABASE, (instance_name, name)).fetchone()
    return DatabaseRecord(*row) if row else None


def ensure_database(
    conn: sqlite3.Connection, instance_name: str, name: str, app: str, timeline: str
) -> DatabaseRecord:
    """The recorded timeline database, recording it as ``creating`` first if it is new."""
    conn.execute(
        "INSERT OR IGNORE INTO databases VALUES (?, ?, ?, ?, 'creating', NULL, ?)",
        (instance_name, name, app, timeline, now_ms()),
    )
    found = database(conn, instance_name, name)
    assert found is not None
    return found


def set_state(
    conn: sqlite3.Connection, instance_name: str, name: str, state: str, error: str | None
) -> None:
    """Record a timeline database's state (and the reason, for ``error``)."""
    conn.execute(
        "UPDATE databases SET state = ?, error = ? WHERE instance = ? AND name = ?",
        (state, error, instance_name, name),
    )


def forget_database(conn: sqlite3.Connection, instance_name: str, name: str) -> None:
    """Remove a timeline database and its tokens from the registry."""
    conn.execute("DELETE FROM databases WHERE instance = ? AND name = ?", (instance_name, name))
    conn.execute("DELETE FROM tokens WHERE instance = ? AND database = ?", (instance_name, name))


def forget_instance(conn: sqlite3.Connection, instance_name: str) -> None:
    """Remove an instance with its assignments, databases and tokens."""
    conn.execute("DELETE FROM instances WHERE name = ?", (instance_name,))


def insert_token(conn: sqlite3.Connection, token: TokenRecord) -> None:
    """Store a token's hash."""
    conn.execute(
        "INSERT INTO tokens VALUES (?, ?, ?, ?, ?)",
        (token.id, token.instance, token.database, token.hash, token.created_ms),
    )


def tokens(conn: sqlite3.Connection, instance_name: str) -> list[TokenRecord]:
    """Every token of an instance, oldest first."""
    rows = conn.execute(
        "SELECT id, instance, database, hash, created_ms FROM tokens WHERE instance = ? "
        "ORDER BY created_ms, id",
        (instance_name,),
    )
    return [TokenRecord(*row) for row in rows]


def token_hashes(conn: sqlite3.Connection, database_name: str) -> list[str]:
    """The stored hashes of every token for a database name."""
    rows = conn.execute("SELECT hash FROM tokens WHERE database = ?", (database_name,))
    return [row[0] for row in rows]


def delete_token(conn: sqlite3.Connection, instance_name: str, token_id: str) -> bool:
    """Delete a token; whether there was one."""
    cursor = conn.execute(
        "DELETE FROM tokens WHERE instance = ? AND id = ?", (instance_name, token_id)
    )
    return cursor.rowcount > 0
