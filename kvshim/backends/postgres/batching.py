"""Group commit: the writes one backend has in flight at the same moment share a transaction.

Every write holds the database's write lock until its COMMIT has been flushed to the WAL, so
one client's concurrent writes would otherwise queue for one flush each. Deno's SQLite backend
batches its commits the same way. Each write still gets its own versionstamp and its own
outcome; only a failure of the whole transaction (the connection) is shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kvshim.backends.postgres.writes import Outcome
from kvshim.errors import KvTypeError
from kvshim.model import AtomicWrite

MAX_BATCH = 64

Flush = Callable[[list[AtomicWrite]], Awaitable[list[Outcome]]]
_Waiting = tuple[AtomicWrite, "asyncio.Future[Outcome]"]


class WriteBatcher:
    """Hands writes to ``flush`` in batches of up to ``MAX_BATCH``, one batch at a time."""

    def __init__(self, flush: Flush) -> None:
        self._flush = flush
        self._pending: list[_Waiting] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, write: AtomicWrite) -> bytes | None:
        """Apply ``write`` with whatever else is waiting; its versionstamp, or ``None`` if a
        check failed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._pending.append((write, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        outcome = await future
        if isinstance(outcome, KvTypeError):
            raise outcome
        return outcome

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._flush_one(batch)
        finally:
            self._drainer = None

    async def _flush_one(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = await self._flush([write for write, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
