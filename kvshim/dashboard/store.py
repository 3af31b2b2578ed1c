"""The explorer's way into a timeline database: find it in the registry, open it as a ``Kv``.

Every read and write goes through the public ``Kv`` API. The one exception is the entry
detail view: the ``Kv`` API has no way to read an entry's expiry or its stored bytes, so those
two facts come from the backend's exact export (``RawAccess``) when it has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from kvshim.backends import Backend, open_backend
from kvshim.backends.base import RawAccess
from kvshim.databases import Databases, DatabaseStatus
from kvshim.errors import DatabaseNotFoundError
from kvshim.keys import Key, encode_key
from kvshim.kv import Kv
from kvshim.model import ValueEncoding


@dataclass(frozen=True, slots=True)
class StoredFacts:
    """What the ``Kv`` API does not tell about an entry: its stored bytes and expiry."""

    encoding: str
    data: bytes
    expire_at_ms: int | None


async def find_database(databases: Databases, instance: str, name: str) -> DatabaseStatus:
    """The timeline database ``name`` of ``instance``; ``DatabaseNotFoundError`` if none."""
    status = await asyncio.to_thread(databases.status, instance, probe=False)
    for database in status.databases:
        if database.name == name:
            return database
    raise DatabaseNotFoundError(f"Instance {instance!r} has no database {name!r}")


@asynccontextmanager
async def opened(
    databases: Databases, instance: str, name: str
) -> AsyncIterator[tuple[Kv, Backend, DatabaseStatus]]:
    """The timeline database as a ``Kv`` (and its backend, for ``stored_facts``), closed
    after use: a handle is never kept, so deleting a database never races an open file."""
    database = await find_database(databases, instance, name)
    backend = await open_backend(database.url, databases.environ)
    kv = Kv(backend)
    try:
        yield kv, backend, database
    finally:
        await kv.close()


async def stored_facts(backend: Backend, key: Key) -> StoredFacts | None:
    """The stored bytes and expiry of ``key``, or ``None`` when the backend cannot tell."""
    if not isinstance(backend, RawAccess):
        return None
    encoded = encode_key(key)
    found = await backend.export_entries(encoded, encoded + b"\x00", 1)
    if not found or found[0].key != encoded:
        return None
    entry = found[0]
    encoding = ValueEncoding(entry.value.encoding).name
    return StoredFacts(encoding, bytes(entry.value.data), entry.expire_at_ms)
