"""The databases a server hosts: which URL each name opens, opened once and shared."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from kvshim.backends import Backend, open_backend, pg_location
from kvshim.errors import KvError, KvValueError, ServeError
from kvshim.server.names import check_name

SQLITE_SUFFIX = ".sqlite3"
IDLE_CLOSE_SECONDS = 300.0
"""A database no request or watch has used for this long is closed (reopened on next use)."""
_ID_NAMESPACE = uuid.UUID("6f6e2a36-5c8e-4d1e-9c39-6b7673686d69")


class Databases:
    """Name -> backend, for one server.

    A name resolves, in order, to an explicitly configured URL (``fixed``), a process-wide
    named in-memory database (when ``memory``), a schema of the PostgreSQL database
    ``postgres`` (``<postgres>?schema=<schema_for(name)>``, see ``kvshim.backends.pg_location``),
    or ``<data_dir>/<name>.sqlite3``. Each is
    opened through ``open_backend`` on first use and closed after ``idle_close`` seconds
    without a request or watch (or at ``close``), so a server hosting many databases keeps
    only the busy ones open.
    """

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        memory: bool = False,
        postgres: str | None = None,
        fixed: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        idle_close: float = IDLE_CLOSE_SECONDS,
    ) -> None:
        self.data_dir = data_dir
        self.idle_close = idle_close
        self._in_use: Counter[str] = Counter()
        self._last_used: dict[str, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._known: set[str] = set()
        self.memory = memory
        self.postgres = pg_location.check_location(postgres) if postgres is not None else None
        self.fixed = dict(fixed or {})
        self._environ: Mapping[str, str] = dict(environ or {})
        self._memory_prefix = f"kvshim-serve-{uuid.uuid4().hex}"
        self._opening: dict[str, asyncio.Task[Backend]] = {}

    def add(self, name: str, url: str) -> None:
        """Serve the database at ``url`` as ``name`` from now on."""
        check_name(name)
        if self.fixed.get(name, url) != url and name in self._opening:
            raise KvValueError(f"Database {name!r} is already open at another URL")
        self.fixed[name] = url

    def url_for(self, name: str) -> str | None:
        """The URL the (validated) ``name`` opens, or ``None`` if this server cannot host it."""
        if name in self.fixed:
            return self.fixed[name]
        if self.memory:
            return f"memory:{self._memory_prefix}/{name}"
        if self.postgres is not None:
            return pg_location.database_url(self.postgres, name)
        if self.data_dir is not None:
            return str(self.data_dir / f"{name}{SQLITE_SUFFIX}")
        return None

    async def exists(self, name: str) -> bool:
        """Whether ``name`` is already a database (opened, configured, on disk or a schema in
        PostgreSQL)."""
        if name in self._known or name in self.fixed:
            return True
        if self.memory:
            return False
        if self.postgres is not None:
            from kvshim.backends.postgres import admin  # asyncpg only when serving PostgreSQL

            found = await admin.exists(pg_location.database_url(self.postgres, name))
            if found:
                self._known.add(name)
            return found
        return self.data_dir is not None and (self.data_dir / f"{name}{SQLITE_SUFFIX}").exists()

    def can_create(self, name: str) -> bool:
        """Whether a new database called ``name`` can be made here."""
        return self.url_for(name) is not None

    async def open(self, name: str) -> Backend:
        """The shared backend of ``name``, opening (and so creating) it on first use."""
        task = self._opening.get(name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            url = self.url_for(name)
            assert url is not None, "check can_create() first"
            if self.data_dir is not None and not self.memory and self.postgres is None:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            task = asyncio.ensure_future(open_backend(url, self._environ))
            self._opening[name] = task
            self._known.add(name)
        return await asyncio.shield(task)

    async def check_fixed(self) -> None:
        """Open every database given by URL once, so that a bad URL or path is an error at
        start-up rather than on first use; ``KvError`` names the database."""
        for name, url in self.fixed.items():
            try:
                async with self.use(name):
                    pass
            except KvError as error:
                raise ServeError(f"Cannot open database {name!r} ({url}): {error}") from None

    @contextlib.asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[Backend]:
        """The backend of ``name`` (opened if needed), kept open while the block runs."""
        self._in_use[name] += 1
        try:
            yield await self.open(name)
        finally:
            self._in_use[name] -= 1
            self._last_used[name] = time.monotonic()
            if self._sweeper is None:
                self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(max(self.idle_close / 4, 0.01))
            await self.close_idle()

    async def close_idle(self) -> None:
        """Close every database unused for ``idle_close`` seconds."""
        cutoff = time.monotonic() - self.idle_close
        for name, last in list(self._last_used.items()):
            if last > cutoff or self._in_use[name] > 0:
                continue
            del self._last_used[name]
            task = self._opening.pop(name, None)
            if task is not None and task.done() and not task.cancelled():
                if task.exception() is None:
                    await task.result().close()

    @staticmethod
    def database_id(name: str) -> uuid.UUID:
        """The stable UUID a database is known by in the metadata exchange."""
        return uuid.uuid5(_ID_NAMESPACE, name)

    async def close(self) -> None:
        """Close every opened backend."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        tasks, self._opening = list(self._opening.values()), {}
        for task in tasks:
            if not task.done():
                task.cancel()
                continue
            if not task.cancelled() and task.exception() is None:
                await task.result().close()
