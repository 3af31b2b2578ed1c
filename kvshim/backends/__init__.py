"""Pick and open the backend for a database URL or path."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kvshim.backends import memory, sqlite
from kvshim.backends.base import Backend, QueueMessage
from kvshim.backends.memory import MemoryBackend
from kvshim.errors import BackendError, KvTypeError, KvValueError

__all__ = ["Backend", "QueueMessage", "open_backend"]

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


async def open_backend(url: str, environ: Mapping[str, str]) -> Backend:
    """Open the database that ``url`` names.

    ``":memory:"`` is a fresh private in-memory database; ``memory:NAME`` the in-memory database
    called NAME, shared by the whole process and kept until it exits; ``http(s)://`` a KV
    Connect server; ``postgres(ql)://`` a PostgreSQL database; ``sqlite:PATH`` or any other
    string a SQLite file.
    ``environ`` supplies credentials (``KVSHIM_ACCESS_TOKEN`` / ``DENO_KV_ACCESS_TOKEN``).
    """
    if not isinstance(url, str) or url == "":
        raise KvTypeError("Filename cannot be empty")
    if url == ":memory:":
        return MemoryBackend()
    if url.startswith("memory:"):
        name = url.removeprefix("memory:")
        if not name:
            raise KvTypeError("Memory database name cannot be empty")
        return memory.open_named(name)
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else None
    if scheme is None:
        return await _open_sqlite(url)
    if scheme in ("http", "https"):
        from kvshim.backends.remote import RemoteBackend

        return await RemoteBackend.open(url, environ)
    if scheme in ("postgres", "postgresql"):
        return await _open_postgres(url)
    raise KvValueError(f"Unsupported database URL scheme '{scheme}://' in {url!r}")


async def _open_sqlite(path: str) -> Backend:
    if path.startswith("sqlite:"):
        path = path.removeprefix("sqlite:").removeprefix("//")
        if path == "":
            raise KvTypeError("Filename cannot be empty")
    if path.startswith(":"):
        raise KvTypeError("Filename cannot start with ':' unless prefixed with './'")
    return await sqlite.open_sqlite(path)


async def _open_postgres(url: str) -> Backend:
    try:
        from kvshim.backends import postgres
    except ImportError as exc:  # asyncpg is an optional dependency
        raise BackendError(
            f"PostgreSQL support needs asyncpg: pip install 'kvshim[postgres]' ({exc})"
        ) from exc
    return await postgres.open_url(url)
