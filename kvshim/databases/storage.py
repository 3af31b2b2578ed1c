"""Where an instance's timeline databases live, and how they are created, probed and removed.

An instance's location is one of:

- a folder: one SQLite file per timeline database, ``<folder>/<database>.sqlite3``;
- ``memory:``: process-wide in-memory databases ``memory:kvshim/<instance>/<database>`` (for
  tests and experiments: they vanish when the process exits);
- ``http(s)://HOST:PORT``: a ``kvshim serve`` server, each database at ``<url>/<database>``;
- ``postgres(ql)://USER@HOST/DB``: one PostgreSQL database, each timeline database in its own
  schema named after it (``kvshim.backends.pg_location.schema_for``: ``shop--fix-x`` →
  ``kv_shop__fix_x``), opened as ``<location>?schema=<schema>``. Deleting a
  timeline database drops its schema.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from yarl import URL

from kvshim.backends import Backend, open_backend, pg_location
from kvshim.backends.raw import count_entries, delete_all
from kvshim.databases.registry import Instance
from kvshim.errors import BackendError, KvValueError

LocationKind = Literal["folder", "memory", "server", "postgres"]
SQLITE_SUFFIX = ".sqlite3"
_SIDE_FILES = ("-wal", "-shm", "-journal")


def location_kind(location: str) -> LocationKind:
    """What kind of place ``location`` is; ``KvValueError`` for an unsupported URL."""
    if location.startswith("memory:"):
        return "memory"
    if location.startswith(("http://", "https://")):
        return "server"
    if pg_location.is_postgres_url(location):
        return "postgres"
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise KvValueError(
            f"Unsupported location {location!r}: '{scheme}://' is not supported; use a "
            "folder, memory:, an http(s):// kvshim serve URL or a postgresql:// URL"
        )
    return "folder"


def normalise_location(location: str) -> str:
    """A folder as an absolute path; URLs as given (without a trailing slash)."""
    kind = location_kind(location)
    if kind == "folder":
        return str(Path(location).expanduser().absolute())
    if kind == "postgres":
        return pg_location.check_location(location)
    if kind == "server":
        return _check_server_url(location)
    return location.rstrip("/") if location != "memory:" else location


def _check_server_url(location: str) -> str:
    try:
        url = URL(location)
        valid = bool(url.host) and url.port is not None and not (url.query_string or url.fragment)
    except ValueError:
        valid = False
    if not valid or " " in location:
        raise KvValueError(
            f"Invalid location {location!r}: a kvshim serve URL is http(s)://HOST[:PORT][/PATH], "
            "e.g. http://127.0.0.1:4512"
        )
    return location.rstrip("/")


def database_url(instance: Instance, name: str) -> str:
    """The URL (or path) ``kvshim.open_kv`` opens for a timeline database."""
    kind = location_kind(instance.location)
    if kind == "folder":
        return str(Path(instance.location) / f"{name}{SQLITE_SUFFIX}")
    if kind == "memory":
        return f"memory:kvshim/{instance.name}/{name}"
    if kind == "postgres":
        return pg_location.database_url(instance.location, name)
    return f"{instance.location}/{name}"


def file_of(instance: Instance, name: str) -> Path | None:
    """The SQLite file of a timeline database, for folder instances."""
    if location_kind(instance.location) != "folder":
        return None
    return Path(instance.location) / f"{name}{SQLITE_SUFFIX}"


async def create(
    instance: Instance, name: str, *, existed: bool, environ: Mapping[str, str]
) -> None:
    """Create (or reach) a timeline database. A database that ``existed`` before but whose file
    is gone is not silently recreated empty."""
    path = file_of(instance, name)
    if path is not None:
        folder = path.parent
        if not folder.is_dir():
            raise BackendError(f"The data folder {folder} of instance {instance.name!r} is missing")
        if existed and not path.exists():
            raise BackendError(
                f"The database file {path} is missing; restore it from a backup with "
                f"`kvshim db restore {instance.name} --timeline T FILE`"
            )
    if existed and location_kind(instance.location) == "postgres":
        await _check_schema(instance, name)
    backend = await _open(instance, name, environ)
    await backend.close()


async def probe(instance: Instance, name: str, environ: Mapping[str, str]) -> tuple[int, int]:
    """The key count and total key+value bytes of a timeline database."""
    path = file_of(instance, name)
    if path is not None and not path.exists():
        raise BackendError(f"The database file {path} is missing")
    if location_kind(instance.location) == "postgres":
        await _check_schema(instance, name)
    backend = await _open(instance, name, environ)
    try:
        return await count_entries(backend)
    finally:
        await backend.close()


async def remove(instance: Instance, name: str, environ: Mapping[str, str]) -> None:
    """Delete a timeline database and its data (its file, or every entry)."""
    path = file_of(instance, name)
    if path is not None:
        for candidate in (path, *(Path(f"{path}{suffix}") for suffix in _SIDE_FILES)):
            candidate.unlink(missing_ok=True)
        return
    if location_kind(instance.location) == "postgres":
        await _drop_schema(database_url(instance, name))
        return
    backend = await _open(instance, name, environ)
    try:
        await delete_all(backend)
    finally:
        await backend.close()


async def open_database(instance: Instance, name: str, environ: Mapping[str, str]) -> Backend:
    """An open backend on a timeline database (the caller closes it)."""
    path = file_of(instance, name)
    if path is not None and not path.parent.is_dir():
        raise BackendError(
            f"The data folder {path.parent} of instance {instance.name!r} is missing"
        )
    return await _open(instance, name, environ)


async def _open(instance: Instance, name: str, environ: Mapping[str, str]) -> Backend:
    return await open_backend(database_url(instance, name), environ)


async def _check_schema(instance: Instance, name: str) -> None:
    """Refuse to (re)create a recorded database whose schema is gone, as for a missing file."""
    url = database_url(instance, name)
    if not await _schema_exists(url):
        schema = pg_location.schema_for(name)
        raise BackendError(
            f"The PostgreSQL schema {schema!r} of database {name!r} is missing; restore it "
            f"from a backup with `kvshim db restore {instance.name} --timeline T FILE`"
        )


async def _schema_exists(url: str) -> bool:
    from kvshim.backends.postgres import admin  # only postgres locations need asyncpg

    return await admin.exists(url)


async def _drop_schema(url: str) -> None:
    from kvshim.backends.postgres import admin

    await admin.drop(url)


def make_folder(location: str) -> None:
    """Create a folder instance's data folder."""
    if location_kind(location) == "folder":
        try:
            os.makedirs(location, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the data folder {location}: {exc}") from exc


def remove_folder_if_empty(location: str) -> None:
    """Remove a folder instance's data folder once it holds nothing."""
    if location_kind(location) == "folder":
        try:
            os.rmdir(location)
        except OSError:
            pass
