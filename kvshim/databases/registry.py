"""The registry: a small SQLite file recording instances, app assignments, timeline databases
and access tokens.

Every change runs in one ``BEGIN IMMEDIATE`` transaction in WAL mode, so any number of
concurrent ``kvshim db`` processes see a consistent registry and never lose each other's
changes. kvshim never recreates or overwrites a registry it cannot read: it raises
``RegistryError`` and leaves the file as it is.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kvshim.errors import RegistryError

APPLICATION_ID = 0x6B767368  # "kvsh": marks the file as a kvshim registry
BUSY_TIMEOUT_S = 30.0

MIGRATIONS = (
    """
    CREATE TABLE instances (
        name TEXT PRIMARY KEY,
        engine TEXT NOT NULL,
        location TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE assignments (
        app TEXT PRIMARY KEY,
        instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
        assigned_ms INTEGER NOT NULL
    );
    CREATE TABLE databases (
        instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        app TEXT NOT NULL,
        timeline TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (instance, name)
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        instance TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
        database TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX tokens_by_database ON tokens(database);
    """,
)


@dataclass(frozen=True, slots=True)
class Instance:
    """A provisioned database instance: its engine and where its databases live."""

    name: str
    engine: str
    location: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class DatabaseRecord:
    """One timeline database as recorded: ``state`` is ``creating``, ``ready`` or ``error``."""

    instance: str
    name: str
    app: str
    timeline: str
    state: str
    error: str | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An access token as stored (its hash only)."""

    id: str
    instance: str
    database: str
    hash: str
    created_ms: int


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


class Registry:
    """The registry file at ``path``; opened per operation, so it holds no connection."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``, committed on success; creates the registry
        (and its folder) if there is none yet."""
        with self._connect(create=True) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading; an empty registry if none exists yet (nothing is
        created)."""
        with self._connect(create=False) as conn:
            yield conn

    @contextmanager
    def _connect(self, *, create: bool) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._open(create)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        finally:
            conn.close()

    def _open(self, create: bool) -> sqlite3.Connection:
        if not self.path.exists() and not create:
            conn = sqlite3.connect(":memory:", isolation_level=None)
            _migrate(conn, self.path)
            return conn
        if create:
            self._make_folder()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            _check_identity(conn, self.path)
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _make_folder(self) -> None:
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise RegistryError(f"The kvshim data folder {folder} is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"Cannot create the kvshim data folder {folder}: {exc}") from exc

    def _error(self, exc: sqlite3.Error) -> RegistryError:
        text = str(exc)
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return RegistryError(
                f"The database registry {self.path} is corrupt ({text}). kvshim will not "
                "overwrite it: move it aside (keep it for recovery) and provision again, or "
                "put back a good copy"
            )
        return RegistryError(f"Cannot use the database registry {self.path}: {text}")


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    # One statement, so one snapshot: read apart, another process creating the registry could
    # commit in between, and its tables would look like someone else's file.
    app_id, tables = conn.execute(
        "SELECT (SELECT application_id FROM pragma_application_id), "
        "(SELECT count(*) FROM sqlite_master)"
    ).fetchone()
    if app_id == APPLICATION_ID:
        return
    if app_id != 0 or tables:
        raise RegistryError(
            f"{path} is not a kvshim database registry; kvshim will not touch it. Set "
            "KVSHIM_HOME to another folder"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RegistryError(
            f"The database registry {path} was written by a newer kvshim (schema {version}); "
            "upgrade kvshim"
        )
    if version == len(MIGRATIONS):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for script in MIGRATIONS[version:]:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
